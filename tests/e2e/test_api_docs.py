"""The API schema is valid OpenAPI and the docs page renders it, offline."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth.models import User
from django.test import Client
from openapi_spec_validator import validate

from kequn.api import merge_status_keys
from tests.e2e.conftest import shoot

PASSWORD = "docs-Pass-word-42"


def refuse_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    """Build a JSON object, failing on a key given twice (json.loads keeps the last)."""
    keys = [key for key, _ in pairs]
    duplicated = sorted({key for key in keys if keys.count(key) > 1})
    assert not duplicated, f"duplicated keys {duplicated} in {keys}"
    return dict(pairs)


@pytest.fixture
def staff_client(db) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("docs", password=PASSWORD))
    return client


def test_openapi_schema_is_valid_and_has_no_duplicated_keys(staff_client):
    response = staff_client.get("/api/openapi.json")
    assert response.status_code == 200
    schema = json.loads(response.content.decode(), object_pairs_hook=refuse_duplicate_keys)
    validate(schema)
    export = schema["paths"]["/api/v1/segments/{segment_id}/export"]["get"]["responses"]["200"]
    assert set(export["content"]) == {
        "text/csv",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }
    download = schema["paths"]["/api/v1/privacy-requests/{request_id}/download"]["get"]
    assert "application/zip" in download["responses"]["200"]["content"]
    assert "401" in download["responses"] and "404" in download["responses"]


def test_status_keys_merge_into_one_text_key():
    merged = merge_status_keys(
        {200: {"description": "OK"}, "200": {"description": "The file", "content": {"a": {}}}}
    )
    assert merged == {"200": {"description": "The file", "content": {"a": {}}}}


@pytest.mark.django_db(transaction=True)
def test_docs_page_renders_the_operations_offline(page, live_server):
    User.objects.create_superuser("docs", password=PASSWORD)
    outside: list[str] = []
    page.on(
        "request",
        lambda request: (
            outside.append(request.url) if not request.url.startswith(live_server.url) else None
        ),
    )
    page.goto("/admin/login/?next=/api/docs")
    page.get_by_label(re.compile("user ?name|用户名", re.I)).fill("docs")
    page.get_by_label(re.compile("password|密码", re.I)).fill(PASSWORD)
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from tests.e2e.conftest import current_code

    device = TOTPDevice.objects.create(
        user=User.objects.get(username="docs"), name="docs", confirmed=True
    )
    page.locator("form [type=submit]").first.click()
    page.wait_for_url("**/admin/otp/verify/**")
    page.locator("#otp-verify-form input[name=token]").fill(current_code(device))
    page.locator("#otp-verify-form [type=submit]").click()
    page.wait_for_url("**/api/docs")
    # Swagger UI fetches and parses the whole schema first: slow on a busy CI machine.
    page.locator(".opblock, .errors-wrapper").first.wait_for(timeout=60_000)
    text = page.locator("body").inner_text()
    shoot(page, "api-docs")
    assert "Unable to render this definition" not in text
    assert "Parser error" not in text
    assert page.locator(".opblock").count() > 20
    assert page.get_by_text("/api/v1/segments/{segment_id}/export").count() == 1
    assert page.get_by_text("/api/v1/privacy-requests/{request_id}/download").count() == 1
    # Swagger UI comes from the installed packages, never from a CDN.
    scripts = page.eval_on_selector_all(
        "script[src], link[href]", "els => els.map(e => e.src || e.href)"
    )
    assert scripts and all(url.startswith(live_server.url) for url in scripts)
    assert outside == []
