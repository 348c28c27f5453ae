"""/api/v1/campaigns: roles, paging and 404s (generic), create, send and report."""

from __future__ import annotations

import pytest

from kequn.customers.services import record_consent
from kequn.engage import services
from kequn.engage.models import Campaign, Message
from kequn.security.actors import system_actor
from kequn.security.roles import ADMINISTRATOR, ANALYST, AUDITOR, MARKETING, SALES, SERVICE
from kequn.segments.models import Segment
from kequn.segments.services import set_static_members
from tests.api.base import ALL, NONE, APIResourceTests, make_role_client
from tests.factories import make_customer

BY = system_actor("tests")
_names = iter(range(1, 10_000))


def make_campaign(customers=()) -> Campaign:
    n = next(_names)
    segment = Segment.objects.create(name=f"API segment {n}", kind=Segment.Kind.STATIC)
    set_static_members(segment, [c.pk for c in customers], by=BY)
    template = services.create_template(
        name=f"API template {n}",
        channel="email",
        subject_zh="你好",
        body_zh="<p>{{ name }}</p>",
        by=BY,
    )
    return services.create_campaign(
        name=f"API campaign {n}", segment=segment, template=template, by=BY
    )


class TestCampaignsAPI(APIResourceTests):
    url = "/api/v1/campaigns"
    app_label = "engage"
    model_name = "campaign"
    customer_scoped = False
    role_access = {
        ADMINISTRATOR: ALL,
        MARKETING: ALL,
        SALES: NONE,
        SERVICE: NONE,
        ANALYST: ALL,
        AUDITOR: ALL,
    }

    def make_object(self):
        return make_campaign()

    def extra_paths(self, obj):
        return [f"{self.url}/{obj.pk}/report"]


@pytest.fixture
def quiet(settings):
    settings.KEQUN_QUIET_HOURS = "off"
    settings.KEQUN_MARKETING_CAPS = "off"
    settings.KEQUN_CONTROL_GROUP_PERCENT = 0
    settings.KEQUN_EMAIL_URL = "smtp://127.0.0.1:2525"
    settings.KEQUN_EMAIL_FROM = "shop@example.com"


def test_marketing_creates_and_sends_analysts_read_the_report(db, quiet):
    people = [make_customer(email=f"api{i}@example.com") for i in range(3)]
    for person in people:
        record_consent(person, "email", "marketing", True, "tests", by=BY)
    segment = Segment.objects.create(name="API audience", kind=Segment.Kind.STATIC)
    set_static_members(segment, [p.pk for p in people], by=BY)
    marketing, analyst = make_role_client(MARKETING), make_role_client(ANALYST)
    payload = {
        "name": "Autumn",
        "segment_id": segment.pk,
        "subject": "秋季",
        "body": "<p>{{ name }}</p>",
        "holdout_percent": 0,
    }

    assert analyst.send_json("post", "/api/v1/campaigns", payload).status_code == 403
    created = marketing.send_json("post", "/api/v1/campaigns", payload)
    assert created.status_code == 201, created.content
    campaign_id = created.json()["id"]
    assert analyst.post(f"/api/v1/campaigns/{campaign_id}/send").status_code == 403
    sent = marketing.post(f"/api/v1/campaigns/{campaign_id}/send")
    assert sent.status_code == 202, sent.content
    assert sent.json()["audience"] == 3
    assert Message.objects.filter(campaign_id=campaign_id, status="queued").count() == 3

    report = analyst.get(f"/api/v1/campaigns/{campaign_id}/report")
    assert report.status_code == 200
    body = report.json()
    assert body["audience"] == 3 and body["messages"]["queued"] == 3
    assert "conversion_uplift" in body


def test_an_unknown_merge_field_is_a_422_naming_it(db, quiet):
    segment = Segment.objects.create(name="Bad merge", kind=Segment.Kind.STATIC)
    client = make_role_client(MARKETING)
    response = client.send_json(
        "post",
        "/api/v1/campaigns",
        {"name": "Bad", "segment_id": segment.pk, "body": "<p>{{ shoe_size }}</p>"},
    )
    assert response.status_code in (400, 422), response.content
    assert "shoe_size" in response.content.decode()
    assert not Campaign.objects.exists()
