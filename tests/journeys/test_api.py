"""/api/v1/journeys: the generic resource tests, counts at each step, pause and resume by role."""

from __future__ import annotations

import pytest

from kequn.journeys.models import Journey
from kequn.journeys.services import create_journey, fire_trigger, run_due
from kequn.security.roles import ADMINISTRATOR, ANALYST, AUDITOR, MARKETING, ROLES, SALES, SERVICE
from tests.api.base import ALL, NONE, APIResourceTests, make_role_client
from tests.factories import make_customer
from tests.journeys.conftest import BY

STEPS = [
    {"id": "w", "kind": "wait", "config": {"days": 2}, "next": "t"},
    {"id": "t", "kind": "tag", "config": {"tag": "api"}},
]
_n = iter(range(1, 10_000))


def make_journey(**options):
    options.setdefault("activate", True)
    return create_journey(
        name=f"api journey {next(_n)}", trigger_kind="first_purchase", steps=STEPS, by=BY, **options
    )


class TestJourneysAPI(APIResourceTests):
    url = "/api/v1/journeys"
    app_label = "journeys"
    model_name = "journey"
    customer_scoped = False
    role_access = {
        ADMINISTRATOR: ALL,
        MARKETING: ALL,
        SALES: NONE,
        SERVICE: NONE,
        ANALYST: ALL,
        AUDITOR: NONE,
    }

    def make_object(self):
        return make_journey()


@pytest.mark.django_db
def test_read_shows_counts_at_each_step():
    journey = make_journey()
    fire_trigger(
        kind="first_purchase", customer_ids=[make_customer().pk, make_customer().pk], by=BY
    )
    run_due(by=BY)
    body = make_role_client(ANALYST).get(f"/api/v1/journeys/{journey.pk}").json()
    assert (body["enrolled"], body["open"]) == (2, 2)
    assert body["step_counts"][0] == {
        "id": "w", "kind": "wait", "passed": 0, "here": 2, "errors": 0, "branches": {},
    }  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_pause_and_resume_by_role(role):
    journey = make_journey()
    client = make_role_client(role)
    response = client.post(f"/api/v1/journeys/{journey.pk}/pause")
    if role in (ADMINISTRATOR, MARKETING):
        assert response.status_code == 200, response.content
        assert response.json()["status"] == "paused"
        assert client.post(f"/api/v1/journeys/{journey.pk}/resume").json()["status"] == "active"
    else:
        assert response.status_code == 403
        journey.refresh_from_db()
        assert journey.status == Journey.Status.ACTIVE


@pytest.mark.django_db
def test_pausing_a_draft_is_a_clear_400():
    draft = make_journey(activate=False)
    client = make_role_client(MARKETING)
    response = client.post(f"/api/v1/journeys/{draft.pk}/pause", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert response.json()["detail"] in (
        f"journey {draft.pk} is a draft: activate it first",
        f"旅程 {draft.pk} 还是草稿：请先启动它",
    )
