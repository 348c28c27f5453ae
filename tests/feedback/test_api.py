"""The feedback API: the generic role, 404-not-403 and paging tests, then creating and inviting."""

from __future__ import annotations

import pytest
from django.test import Client

from kequn.feedback.models import Response
from kequn.feedback.services import build_token, create_survey, invite_customers
from kequn.security.roles import ADMINISTRATOR, ANALYST, AUDITOR, MARKETING, SALES, SERVICE
from tests.api.base import ALL, NONE, OWN, APIResourceTests
from tests.feedback.conftest import BY, make_customer

pytestmark = pytest.mark.django_db


def make_response(customer, score: int = 8) -> Response:
    survey = create_survey(name="NPS", by=BY)
    invitation = invite_customers(survey=survey, customer_ids=[customer.pk], by=BY).created[0]
    return Response.objects.create(
        invitation=invitation, survey=survey, customer=customer, score=score, category="passive"
    )


class TestSurveyResponsesAPI(APIResourceTests):
    url = "/api/v1/survey-responses"
    app_label = "feedback"
    model_name = "response"
    role_access = {
        ADMINISTRATOR: ALL,
        MARKETING: ALL,
        SALES: OWN,
        SERVICE: ALL,
        ANALYST: ALL,
        AUDITOR: NONE,
    }

    def make_object_for(self, customer):
        return make_response(customer)


def test_create_invite_and_report(make_api_client, smtp):
    client = make_api_client("feedback.add_survey", "feedback.view_survey", "feedback.add_invitation",
                             "feedback.view_response", "customers.view_all_customers")  # fmt: skip
    bad = client.send_json("post", "/api/v1/surveys", {"name": "x", "kind": "stars"})
    assert bad.status_code == 422 and "'stars'" in bad.json()["detail"]
    created = client.send_json("post", "/api/v1/surveys", {"name": "门店回访", "kind": "csat"})
    assert created.status_code == 201
    survey_id = created.json()["id"]
    people = [make_customer(f"api{i}@example.com") for i in range(2)]
    missing = client.send_json(
        "post", f"/api/v1/surveys/{survey_id}/invitations", {"customer_ids": [999999]}
    )
    assert missing.status_code == 404
    sent = client.send_json(
        "post", f"/api/v1/surveys/{survey_id}/invitations", {"customer_ids": [p.pk for p in people]}
    ).json()
    assert sent == {"invited": 2, "counts": {"sent": 2}}
    invitation = people[0].survey_invitations.get()
    Client().post(f"/s/{build_token(invitation)}/", {"score": "5"})
    report = client.get(f"/api/v1/surveys/{survey_id}/report").json()
    assert report["summary"]["n"] == 1 and report["summary"]["csat_percent"] == 100.0
    assert report["response_rate"]["rate"] == 50.0
