"""An administrator tells server keys from client keys and revokes one in a real browser."""

from __future__ import annotations

import base64

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from kequn.events.models import Source
from kequn.events.services import create_source
from kequn.security.actors import system_actor
from tests.e2e.conftest import add_authenticator, log_in, shoot

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "e2e-Pass-word-42"


def track(page, key: str) -> int:
    auth = base64.b64encode(f"{key}:".encode()).decode()
    response = page.request.post(
        "/v1/track",
        data={"anonymousId": "dev-1", "event": "Viewed"},
        headers={"Authorization": f"Basic {auth}"},
    )
    return response.status


def test_revoke_a_server_key_in_the_back_office(page):
    boss = User.objects.create_superuser("boss", password=PASSWORD)
    _web, client_key = create_source(name="web shop", by=system_actor("tests"))
    _erp, server_key = create_source(
        name="erp sync", key_type=Source.KeyType.SERVER, by=system_actor("tests")
    )
    log_in(page, "boss", PASSWORD, add_authenticator(boss))
    page.context.add_cookies([{"name": "django_language", "value": "en", "url": page.url}])
    assert track(page, server_key) == 200

    page.goto("/admin/events/source/")
    server_row = page.locator("tr", has_text="erp sync")
    expect(server_row).to_contain_text("server")
    expect(page.locator("tr", has_text="web shop")).to_contain_text("client (browser or app)")
    expect(page.get_by_text("wks_", exact=False)).to_have_count(1)  # the prefix only
    shoot(page, "event-sources")

    server_row.locator("input[type=checkbox]").check()
    page.select_option("select[name=action]", "revoke")
    page.locator("button[name=index], button[type=submit][title]").first.click()
    expect(page.get_by_text("1 write key(s) revoked")).to_be_visible()
    assert Source.objects.get(name="erp sync").is_active is False
    # The very next call with the revoked key is refused; the other key still works.
    assert track(page, server_key) == 401
    assert track(page, client_key) == 200
