"""The demo journeys: created once, the win-back filled with a fortnight of history."""

from __future__ import annotations

import pytest
from django.utils import timezone

from kequn.demo.journeys import WIN_BACK, create_demo_journeys
from kequn.journeys.models import Enrollment, Journey
from kequn.scoring.models import CustomerScore
from tests.factories import make_customer, make_order
from tests.journeys.conftest import BY

pytestmark = pytest.mark.django_db


def test_demo_journeys_have_results_and_are_made_once():
    people = [make_customer() for _ in range(6)]
    for person in people:
        CustomerScore.objects.create(
            customer=person, computed_at=timezone.now(), lifecycle_stage="at_risk"
        )
    make_order(people[0], days_ago=3)  # came back: the goal
    line = create_demo_journeys(by=BY)
    assert "6 at-risk customers" in line
    assert Journey.objects.count() == 4
    assert Journey.objects.get(name="生日关怀").status == "paused"
    states = dict(
        Enrollment.objects.filter(journey__name=WIN_BACK).values_list("customer_id", "exit_reason")
    )
    assert states[people[0].pk] == "goal reached"
    assert sum(1 for reason in states.values() if reason == "") == 5  # completed: tagged lost
    assert "already there" in create_demo_journeys(by=BY)
