"""Segments API: generic resource tests, count endpoint, members, history, export masking."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from kequn.security.actors import system_actor
from kequn.security.roles import ADMINISTRATOR, ANALYST, AUDITOR, MARKETING, SALES, SERVICE
from kequn.segments import services
from kequn.segments.models import Segment
from tests.api.base import ALL, NONE, OWN, APIResourceTests, APIWritableResourceTests
from tests.factories import make_customer

SHANGHAI = {"match": "all", "conditions": [{"field": "city", "operator": "eq", "value": "上海"}]}


class TestSegmentsAPI(APIWritableResourceTests):
    url = "/api/v1/segments"
    app_label = "segments"
    model_name = "segment"
    customer_scoped = False
    role_access = {
        ADMINISTRATOR: ALL,
        MARKETING: ALL,
        SALES: ALL,
        SERVICE: NONE,
        ANALYST: ALL,
        AUDITOR: NONE,
    }
    role_writes = {
        ADMINISTRATOR: ALL,
        MARKETING: ALL,
        SALES: NONE,
        SERVICE: NONE,
        ANALYST: NONE,
        AUDITOR: NONE,
    }

    def make_object(self):
        n = Segment.objects.count() + 1
        return services.create_segment(f"Segment {n}-{id(self)}", SHANGHAI, by=system_actor("test"))

    def create_payload(self):
        return {"name": "Shanghai", "kind": "dynamic", "rules": SHANGHAI}

    def update_payload(self):
        return {"name": "Renamed", "description": "now with a description"}

    def test_invalid_rule_is_422_naming_the_rule(self, make_api_client):
        client = make_api_client(superuser=True)
        bad = {"match": "all", "conditions": [{"field": "citty", "operator": "eq", "value": "x"}]}
        response = client.send_json("post", self.url, {"name": "Bad", "rules": bad})
        assert response.status_code == 422
        assert response.json()["detail"] == ["rules.conditions[0]: unknown field 'citty'"]


class TestSegmentMembersAPI(APIResourceTests):
    app_label = "segments"
    model_name = "segment"

    @property
    def segment(self) -> Segment:
        if not hasattr(self, "_segment"):
            self._segment = services.create_segment(
                "Static", kind="static", customer_ids=[], by=system_actor("test")
            )
        return self._segment

    @property
    def url(self) -> str:
        return f"/api/v1/segments/{self.segment.pk}/members"

    role_access = {
        ADMINISTRATOR: ALL,
        MARKETING: ALL,
        SALES: OWN,
        SERVICE: NONE,
        ANALYST: ALL,
        AUDITOR: NONE,
    }

    def make_object_for(self, customer):
        current = list(self.segment.members.values_list("customer_id", flat=True))
        services.set_static_members(self.segment, [*current, customer.pk], by=system_actor("test"))
        return customer


def test_count_endpoint_counts_and_validates(make_api_client):
    make_customer(city="上海")
    make_customer(city="上海")
    make_customer(city="北京")
    # Counts cover the customers the user may see: here all of them (see test_side_channels).
    client = make_api_client("segments.view_segment", "customers.view_all_customers")
    response = client.send_json("post", "/api/v1/segments/count", {"rules": SHANGHAI})
    assert response.json() == {"count": 2}
    empty = {"match": "any", "conditions": []}
    response = client.send_json("post", "/api/v1/segments/count", {"rules": empty})
    assert response.status_code == 422
    assert "rules: empty group" in response.json()["detail"][0]
    assert (
        make_api_client()
        .send_json("post", "/api/v1/segments/count", {"rules": SHANGHAI})
        .status_code
        == 403
    )


def test_a_name_equal_to_another_once_control_characters_go_is_a_422(make_api_client):
    client = make_api_client(superuser=True)
    rules = {"match": "all", "conditions": [{"field": "city", "operator": "eq", "value": "上海"}]}
    created = client.send_json("post", "/api/v1/segments", {"name": "k\u00dd", "rules": rules})
    assert created.status_code == 201
    again = client.send_json("post", "/api/v1/segments", {"name": "k\u009d\u00dd", "rules": rules})
    assert again.status_code == 422 and "kÝ" in again.json()["detail"][0]
    other = client.send_json("post", "/api/v1/segments", {"name": "other", "rules": rules})
    renamed = client.send_json(
        "patch", f"/api/v1/segments/{other.json()['id']}", {"name": "\u0085k\u00dd"}
    )
    assert renamed.status_code == 422


def test_admin_live_count(admin_client):
    make_customer(city="上海")
    response = admin_client.post(
        "/admin/segments/segment/count/", {"rules": SHANGHAI}, content_type="application/json"
    )
    answer = response.json()
    assert answer["count"] == 1 and [m["place"] for m in answer["sample"]] == ["上海 上海"]
    bad = {"match": "all", "conditions": [{"field": "city", "operator": "gt", "value": 1}]}
    response = admin_client.post(
        "/admin/segments/segment/count/", {"rules": bad}, content_type="application/json"
    )
    assert "rules.conditions[0]: operator 'gt'" in response.json()["errors"][0]


def test_admin_pages_render(admin_client):
    make_customer(city="上海")
    segment = services.create_segment("Shanghai", SHANGHAI, by=system_actor("test"))
    services.refresh_segment(segment, by=system_actor("test"))
    page = admin_client.get(f"/admin/segments/segment/{segment.pk}/change/")
    assert page.status_code == 200
    assert b"<svg" in page.content and b"rule_editor.js" in page.content
    assert admin_client.get("/admin/segments/segment/add/").status_code == 200
    assert admin_client.get("/admin/segments/segment/").status_code == 200
    response = admin_client.post(
        "/admin/segments/segment/add/",
        {
            "name": "Beijing",
            "kind": "dynamic",
            "description": "",
            "rules": '{"match": "all", "conditions": [{"field": "citty", "operator": "eq", "value": "x"}]}',
        },
    )
    assert response.status_code == 200
    assert "unknown field &#x27;citty&#x27;" in response.content.decode()


def test_history_endpoint(make_api_client):
    a = make_customer(city="上海")
    segment = services.create_segment("Shanghai", SHANGHAI, by=system_actor("test"))
    a.city = "北京"
    a.save()
    services.refresh_segment(segment, by=system_actor("test"))
    history = (
        make_api_client("segments.view_segment", "customers.view_all_customers")
        .get(f"/api/v1/segments/{segment.pk}/history")
        .json()
    )
    assert [s["size"] for s in history["sizes"]] == [1, 0]
    assert [c["change"] for c in history["changes"]] == ["left", "entered"]


@pytest.fixture
def exported_segment(db):
    make_customer(name="张伟", city="上海", phone="13800138000", email="zhang@example.com")
    return services.create_segment("Shanghai", SHANGHAI, by=system_actor("test"))


def test_csv_export_masks_personal_fields_for_ordinary_users(make_api_client, exported_segment):
    client = make_api_client(
        "segments.view_segment", "customers.view_all_customers", "segments.export_without_consent"
    )
    response = client.get(f"/api/v1/segments/{exported_segment.pk}/export?format=csv")
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["name"] == "张伟"
    assert row["phone"] == "138****8000"
    assert row["email"] == "z***@example.com"


def test_xlsx_export_is_unmasked_for_superusers(make_api_client, exported_segment):
    client = make_api_client(superuser=True)
    response = client.get(f"/api/v1/segments/{exported_segment.pk}/export?format=xlsx")
    assert response.status_code == 200
    workbook = load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    rows = list(workbook.active.values)
    header, first = rows[0], dict(zip(rows[0], rows[1], strict=True))
    assert "phone" in header
    assert first["phone"] == "+8613800138000"
    assert first["email"] == "zhang@example.com"
