"""The demo's surveys fill the reports: answers over months, follow-ups, topics."""

from __future__ import annotations

import pytest

from kequn.demo.feedback import create_demo_feedback
from kequn.feedback.models import FollowUp, Response, Survey
from kequn.feedback.selectors import get_response_rate, get_scores_by_month, summarize_scores
from tests.feedback.conftest import BY, make_customer

pytestmark = pytest.mark.django_db


def test_demo_feedback_fills_the_report(admin_client):
    for i in range(120):
        make_customer(f"demo{i}@example.com", name=f"客户{i}")
    line = create_demo_feedback(by=BY, answers=60)
    assert line.startswith("Created 2 demo surveys")
    nps = Survey.objects.get(kind="nps")
    answers = Response.objects.filter(survey=nps)
    assert 10 < answers.count() < 60
    assert len(get_scores_by_month(answers)) >= 3
    assert summarize_scores(answers)["nps"] is not None
    assert 20 < get_response_rate(nps)["rate"] < 60
    assert (
        FollowUp.objects.count()
        == Response.objects.filter(category__in=["detractor", "unhappy"]).count()
    )
    assert create_demo_feedback(by=BY).endswith("keeping them.")
    page = admin_client.get(f"/admin/feedback/survey/{nps.pk}/report/")
    assert page.status_code == 200 and "kequn-nps" in page.content.decode()
