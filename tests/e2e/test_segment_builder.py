"""A marketing user builds a segment in the browser, sees its size and members, and exports it."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from django.contrib.auth.models import Group, User
from playwright.sync_api import expect

from kequn.customers.models import Identity
from kequn.customers.services import record_consent
from kequn.dashboard import list_export, services
from kequn.security.roles import MARKETING
from kequn.segments.models import Segment
from tests.conftest import grant
from tests.dashboard.conftest import build_base
from tests.e2e.conftest import log_in, shoot

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "e2e-Mia-word-42"
PHONE = "+8613900139000"
RULE = {"match": "all", "conditions": [{"field": "city", "operator": "in", "value": ["Shanghai"]}]}


@pytest.fixture
def marketer(transactional_db):
    """The hand-built base, Dong with a phone number and SMS marketing consent (Chen has none),
    and a marketing user (no unmasking)."""
    data = build_base()
    Identity.objects.create(customer=data.d, kind="phone", value=PHONE)
    record_consent(data.d, "sms", "marketing", True)
    services.refresh_dashboard(now=data.now)
    user = User.objects.create_user("mia", password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get_or_create(name=MARKETING)[0])
    # What this walk needs, granted directly so it holds whatever the role's set is today.
    grant(
        user,
        "segments.add_segment",
        "segments.change_segment",
        "segments.view_segment",
        "customers.view_customer",
        list_export.PERMISSION,
    )
    return data


def read_download(download) -> list[dict]:
    text = open(download.path(), encoding="utf-8-sig").read()  # noqa: PTH123, SIM115
    return list(csv.DictReader(io.StringIO(text)))


def test_marketer_builds_saves_previews_and_exports_a_segment(page, marketer):
    log_in(page, "mia", PASSWORD)
    page.context.add_cookies([{"name": "django_language", "value": "en", "url": page.url}])
    page.goto("/admin/segments/segment/add/")

    # Every field the builder needs has a label a screen reader announces.
    for name in ("name", "description", "kind", "rules"):
        control = page.locator(f"[name={name}]")
        expect(control).to_have_count(1)
        assert page.locator(f'label[for="{control.get_attribute("id")}"]').count() == 1

    page.locator("[name=name]").fill("Shanghai customers")
    page.locator("[name=description]").fill("Everyone living in Shanghai")
    rules = page.locator("#id_rules")
    # A rule that is not JSON yet is explained while typing, before anything is saved.
    rules.fill('{"match": "all", "conditions": [')
    live = page.locator("#kequn-live-count")
    expect(live).to_contain_text("Not valid JSON")
    rules.fill(json.dumps(RULE, ensure_ascii=False))
    # The live count answers from the server as the rule is typed: Chen and Dong.
    expect(live).to_have_text(re.compile(r"^2 customers match this rule"))
    shoot(page, "segment-builder")

    page.locator("[name=_continue]").click()
    page.wait_for_url(re.compile(r"/admin/segments/segment/\d+/change/"))
    segment = Segment.objects.get(name="Shanghai customers")
    assert segment.rules == RULE and segment.member_count == 2

    # Its size and its members are on the page.
    size = page.locator(".field-line", has=page.locator("label", has_text=re.compile("^Members")))
    expect(size).to_have_count(1)
    expect(size).to_contain_text("2")
    expect(page.locator("#kequn-size-title")).to_be_visible()
    changes = page.locator("section[aria-labelledby=kequn-size-title] table")
    expect(changes).to_contain_text("Chen")
    expect(changes).to_contain_text("Dong")
    assert "Alice" not in changes.inner_text()
    shoot(page, "segment-saved")

    with page.expect_download() as caught:
        page.get_by_role("link", name="Export CSV").click()
    rows = read_download(caught.value)
    # Both are members, but the marketing role exports only those who consent to marketing.
    assert [r["name"] for r in rows] == ["Dong"]
    dong = rows[0]
    # A marketing user gets the phone number masked.
    assert dong["phone"] == "139****9000" and "13900139000" not in json.dumps(rows)


def test_customer_list_export_button_downloads_the_filtered_rows(page, marketer):
    log_in(page, "mia", PASSWORD)
    page.context.add_cookies([{"name": "django_language", "value": "en", "url": page.url}])
    page.goto("/admin/customers/customer/?province=Shanghai")
    button = page.locator("a[data-export=csv]")
    expect(button).to_be_visible()
    shoot(page, "customer-list-export-buttons")
    with page.expect_download() as caught:
        button.click()
    assert caught.value.suggested_filename.endswith(".csv")
    rows = read_download(caught.value)
    assert sorted(r["name"] for r in rows) == ["Chen", "Dong"]
    assert next(r for r in rows if r["name"] == "Dong")["phone"] == "139****9000"

    # The Excel button carries the same filter.
    with page.expect_download() as caught:
        page.locator("a[data-export=xlsx]").click()
    assert caught.value.suggested_filename.endswith(".xlsx")
    import openpyxl

    with open(caught.value.path(), "rb") as handle:  # noqa: PTH123
        sheet = openpyxl.load_workbook(io.BytesIO(handle.read())).active
    names = sorted(row[1] for row in sheet.iter_rows(min_row=2, values_only=True))
    assert names == ["Chen", "Dong"]
