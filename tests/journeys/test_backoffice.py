"""The back office: the journey list, the drawn flow with counts, enrollments and the 360 panel."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse

from kequn.journeys.models import Journey
from kequn.journeys.services import fire_trigger, run_due
from kequn.security.roles import ANALYST, MARKETING
from tests.factories import make_customer
from tests.journeys.conftest import BY

pytestmark = pytest.mark.django_db

IN_BEIJING = {"match": "all", "conditions": [{"field": "city", "operator": "eq", "value": "北京"}]}
STEPS = [
    {"id": "b", "kind": "branch", "config": {"rule": IN_BEIJING, "yes": "t", "no": "w"}},
    {"id": "t", "kind": "tag", "config": {"tag": "beijing"}},
    {"id": "w", "kind": "wait", "config": {"days": 1}},
]


def role_client(role: str) -> Client:
    user = User.objects.create_user(f"{role}-user", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    client.cookies["django_language"] = "en"
    return client


@pytest.fixture
def walked(make_journey):
    journey = make_journey(STEPS, trigger_kind="first_purchase")
    customers = [make_customer(city="北京"), make_customer(city="上海"), make_customer(city="上海")]
    fire_trigger(kind="first_purchase", customer_ids=[c.pk for c in customers], by=BY)
    run_due(by=BY)
    return journey, customers


def test_flow_page_draws_each_step_with_its_counts(walked):
    journey, _customers = walked
    html = (
        role_client(ANALYST)
        .get(reverse("admin:journeys_journey_change", args=[journey.pk]))
        .content.decode()
    )
    assert 'id="kequn-journey-flow"' in html
    assert html.count('class="kequn-flow-step"') == 3
    # 3 passed the branch (1 yes, 2 no); 2 wait at "w"; 1 was tagged and completed.
    branch = html.split('data-step="b"')[1].split('data-step="t"')[0]
    assert "passed: 3" in branch and 'data-branch="yes">yes: 1' in branch
    assert 'data-branch="no">no: 2' in branch
    assert "here now: 2" in html.split('data-step="w"')[1]
    assert "entered 3" in html and "completed 1" in html


def test_marketing_pauses_from_the_list_and_analysts_cannot(walked):
    journey, _customers = walked
    url = reverse("admin:journeys_journey_changelist")
    data = {"action": "pause_selected", "_selected_action": [journey.pk]}
    assert role_client(ANALYST).post(url, data).status_code in (200, 302, 403)
    journey.refresh_from_db()
    assert journey.status == Journey.Status.ACTIVE
    response = role_client(MARKETING).post(url, data)
    assert response.status_code == 302
    journey.refresh_from_db()
    assert journey.status == Journey.Status.PAUSED


def test_an_invalid_definition_is_refused_in_the_form(admin_client):
    admin_client.cookies["django_language"] = "en"
    response = admin_client.post(
        reverse("admin:journeys_journey_add"),
        {
            "name": "broken",
            "description": "",
            "status": "draft",
            "trigger_kind": "event",
            "trigger_config": '{"event": "Product Viewed"}',
            "reentry": "once",
            "reentry_days": "0",
            "goal": "null",
            "steps": '[{"id": "a", "kind": "wait", "config": {"days": 1}, "next": "zzz"}]',
        },
    )
    assert response.status_code == 200
    assert "goes to &#x27;zzz&#x27;, which is no step&#x27;s id" in response.content.decode()
    assert not Journey.objects.filter(name="broken").exists()


def test_the_360_page_shows_the_customers_journeys(walked, admin_client):
    journey, customers = walked
    admin_client.cookies["django_language"] = "en"
    html = admin_client.get(
        reverse("admin:customers_customer_360", args=[customers[1].pk])
    ).content.decode()
    panel = html.split('id="kequn-customer-journeys"')[1].split("</section>")[0]
    assert journey.name in panel
    assert ("w" in panel and "Waiting" in panel) or "等待" in panel


def test_enrollment_list_and_page_open(walked, admin_client):
    journey, _customers = walked
    listing = admin_client.get(reverse("admin:journeys_enrollment_changelist"))
    assert listing.status_code == 200
    enrollment = journey.enrollments.first()
    page = admin_client.get(reverse("admin:journeys_enrollment_change", args=[enrollment.pk]))
    assert page.status_code == 200
