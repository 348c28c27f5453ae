"""The log is JSON lines with request id, user, view, status and duration, and no personal data."""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.contrib.auth.models import User
from django.test import Client

from kequn.logfilters import JSONFormatter
from kequn.security.actors import system_actor
from kequn.security.services import create_api_token
from tests.factories import make_customer

PEOPLE = [
    ("张伟", "13912345678", "zhang.wei@example.cn"),
    ("李娜", "13698765432", "li.na@example.cn"),
    ("王芳", "+8613511112222", "wang.fang@example.cn"),
]


@pytest.fixture
def log_lines():
    """Capture every log record of the run as the server writes it (JSON lines)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line]
    root.removeHandler(handler)
    root.setLevel(previous)


@pytest.mark.django_db
def test_request_lines_carry_id_user_view_status_duration_and_no_personal_data(log_lines):
    customers = [make_customer(name, phone=phone, email=email) for name, phone, email in PEOPLE]
    admin = User.objects.create_superuser("chief", password="x")
    browser = Client()
    browser.force_login(admin)
    _, token = create_api_token("chief", by=system_actor("tests"))
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    for _name, phone, email in PEOPLE:
        browser.get("/admin/customers/customer/", {"q": phone})
        browser.get("/admin/customers/customer/", {"q": email})
        api.get("/api/v1/customers/lookup", {"kind": "phone", "value": phone})
        api.get("/api/v1/customers/lookup", {"kind": "email", "value": email})
        # Unknown values: a 404 whose message would quote the value.
        api.get("/api/v1/customers/lookup", {"kind": "email", "value": "x" + email})
    for customer in customers:
        browser.get(f"/admin/customers/customer/{customer.pk}/360/")
        browser.get(f"/admin/customers/customer/{customer.pk}/change/")
        api.get(f"/api/v1/customers/{customer.pk}")
    browser.get("/admin/no-such-page/", HTTP_X_REQUEST_ID="proxy-abc-12345")
    lines = log_lines()
    text = json.dumps(lines, ensure_ascii=False)
    for name, phone, email in PEOPLE:
        for value in (phone, phone[-11:], email, "x" + email, name):
            assert value not in text, value
    requests = [line for line in lines if line["logger"] == "kequn.requests"]
    assert len(requests) >= 3 * 5 + 3 * 3
    for line in requests:
        assert {"request_id", "user_id", "view", "status", "duration_ms", "method", "path"} <= set(
            line
        )
        assert "?" not in line["path"]
    statuses = {(line["view"], line["status"]) for line in requests}
    assert ("api-1.0.0:lookup_customer", 200) in statuses or any(
        v.endswith("lookup_customer") and s == 200 for v, s in statuses
    )
    assert any(v.endswith("lookup_customer") and s == 404 for v, s in statuses)
    assert {line["user_id"] for line in requests} == {admin.pk}
    tagged = [line for line in requests if line["request_id"] == "proxy-abc-12345"]
    assert tagged and tagged[0]["status"] == 404


def test_formatter_writes_one_json_object_and_drops_objects():
    record = logging.LogRecord("kequn.x", logging.WARNING, __file__, 1, "hello %s", ("you",), None)
    record.request = object()  # Django attaches the request: its repr may hold a query string
    record.status_code = 404
    line = JSONFormatter().format(record)
    entry = json.loads(line)
    assert entry["message"] == "hello you" and entry["status_code"] == 404
    assert "request" not in entry and "\n" not in line
