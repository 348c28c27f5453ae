"""The dashboard's feedback panel: NPS and CSAT by month, response rate, complaint topics."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from kequn.dashboard.services import refresh_dashboard
from kequn.feedback.models import Response, Survey
from kequn.feedback.services import build_token, create_survey, invite_customers, record_response
from tests.conftest import client_for, grant, kpi, role_client
from tests.feedback.conftest import BY, make_customer

pytestmark = pytest.mark.django_db


def answer(survey: Survey, customer, score: int, comment: str = "", about: str = "") -> Response:
    invitation = invite_customers(survey=survey, customer_ids=[customer.pk], about=about, by=BY)
    token = build_token(invitation.created[0])
    return record_response(token=token, answers={"score": score, "comment": comment}, by=BY)


@pytest.fixture
def answers():
    """NPS answers this month and last month, CSAT answers, one invitation left unanswered."""
    nps = create_survey(name="NPS", by=BY)
    csat = create_survey(name="CSAT", kind="csat", by=BY)
    people = [make_customer(f"p{i}@example.com", name=f"客户{i}") for i in range(6)]
    for person, score in zip(people, [10, 9, 8, 6, 0, 10], strict=True):
        answer(nps, person, score, "物流太慢，等了两周" if score <= 6 else "")
    answer(csat, people[0], 5)
    answer(csat, people[1], 2, "客服不回复")
    invite_customers(survey=csat, customer_ids=[people[2].pk], by=BY)  # not answered
    # Two answers of last month: one promoter and one detractor (NPS 0 that month).
    earlier = timezone.localtime().replace(day=1) - dt.timedelta(days=3)
    old = [answer(nps, people[i], score, about="earlier") for i, score in ((3, 10), (4, 2))]
    Response.objects.filter(pk__in=[r.pk for r in old]).update(answered_at=earlier)
    Response.objects.filter(comment__contains="物流").update(topic="物流 / 慢")
    Response.objects.filter(comment__contains="客服").update(topic="客服 / 回复")
    refresh_dashboard(by=BY)
    return earlier.strftime("%Y-%m"), timezone.localtime().strftime("%Y-%m")


def test_feedback_panel_shows_nps_csat_months_rate_and_topics(answers):
    last_month, this_month = answers
    html = role_client("analyst").get("/admin/").content.decode()
    assert 'data-chart="feedback"' in html
    # 8 NPS answers: promoters 10, 9, 10, 10 (4); detractors 6, 0, 2 (3): (4 - 3) / 8 = 12.5.
    assert kpi(html, "nps") == "12.5"
    # CSAT: one of two answers is 4 or 5.
    assert kpi(html, "csat") == "50.0 %"
    # 10 of 11 invitations answered.
    assert kpi(html, "response-rate") == "90.9 %"
    months = re.findall(r'data-month="([\d-]+)"', html)
    assert len(months) == 6 and months[-1] == this_month and last_month in months
    row = re.search(rf'data-month="{this_month}">(.*?)</tr>', html, re.S).group(1)
    # This month: 3 promoters, 2 detractors of 6: 16.7; CSAT 50 % of 2.
    assert "16.7" in row and "(n=6)" in row and "50.0 %" in row and "(n=2)" in row
    previous = re.search(rf'data-month="{last_month}">(.*?)</tr>', html, re.S).group(1)
    assert "0.0" in previous and "(n=2)" in previous
    topics = re.search(r'id="kq-feedback-topics">(.*?)</ul>', html, re.S).group(1)
    assert topics.index("物流 / 慢") < topics.index("客服 / 回复")
    assert "(2)" in topics and "物流太慢，等了两周" in topics and "客服不回复" in topics


def test_feedback_panel_needs_survey_permissions(answers):
    # A user who may see the dashboard but not surveys does not see the panel.
    user = User.objects.create_user("viewer", password="x", is_staff=True)
    user = grant(user, "dashboard.view_dashboard")
    html = client_for(user).get("/admin/").content.decode()
    assert 'id="kequn-dashboard"' in html and 'data-chart="feedback"' not in html
    # Marketing runs the surveys and sees it.
    assert 'data-chart="feedback"' in role_client("marketing").get("/admin/").content.decode()
