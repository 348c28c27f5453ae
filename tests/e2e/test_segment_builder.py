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
from kequn.security.actors import system_actor
from kequn.security.roles import MARKETING
from kequn.segments.models import Segment
from tests.conftest import grant
from tests.dashboard.conftest import build_base
from tests.e2e.conftest import log_in, shoot

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "e2e-Mia-word-42"
PHONE = "+8613900139000"
RULE = {"match": "all", "conditions": [{"field": "city", "operator": "in", "value": ["Shanghai"]}]}
CHURN_RISK_IN_SHENZHEN = {
    "match": "all",
    "conditions": [
        {"field": "city", "operator": "eq", "value": "深圳"},
        {"field": "lifecycle_stage", "operator": "in", "value": ["at_risk", "churned"]},
    ],
}


@pytest.fixture
def marketer(transactional_db):
    """The hand-built base, Dong with a phone number and SMS marketing consent (Chen has none),
    and a marketing user (no unmasking)."""
    data = build_base()
    Identity.objects.create(customer=data.d, kind="phone", value=PHONE)
    record_consent(data.d, "sms", "marketing", True, by=system_actor("tests"))
    services.refresh_dashboard(now=data.now, by=system_actor("tests"))
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
    text = open(download.path(), encoding="utf-8-sig").read()  # noqa: SIM115
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
    # Nothing is said before the user does anything: no "null", no error.
    live = page.locator("#kequn-live-count")
    expect(live).to_have_text("Add a condition to see who matches.")
    # Power users type the rule as JSON under "advanced".
    page.locator("#kequn-rule-json summary").click()
    rules = page.locator("#id_rules")
    assert json.loads(rules.input_value()) == {"match": "all", "conditions": []}
    # A rule that is not JSON yet is explained while typing, before anything is saved.
    rules.fill('{"match": "all", "conditions": [')
    expect(page.locator("#kequn-rule-json")).to_contain_text("Not valid JSON")
    rules.fill(json.dumps(RULE, ensure_ascii=False))
    # The live count answers from the server as the rule is typed: Chen and Dong.
    expect(live).to_have_text(re.compile(r"^2 customers match this rule"))
    # The builder redraws the typed rule as a condition in words.
    expect(page.locator("#kequn-rule-builder [data-role=field]")).to_have_value("city")
    shoot(page, "segment-builder")

    page.locator("[name=_continue]").click()
    page.wait_for_url(re.compile(r"/admin/segments/segment/\d+/change/"))
    segment = Segment.objects.get(name="Shanghai customers")
    # Places are stored in one canonical form, the rule's too: "Shanghai" is saved as 上海.
    assert segment.rules["conditions"][0]["value"] == ["上海"] and segment.member_count == 2

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
    page.goto("/admin/customers/customer/?province=上海")  # the stored (canonical) name
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

    with open(caught.value.path(), "rb") as handle:
        sheet = openpyxl.load_workbook(io.BytesIO(handle.read())).active
    names = sorted(row[1] for row in sheet.iter_rows(min_row=2, values_only=True))
    assert names == ["Chen", "Dong"]


@pytest.fixture
def shenzhen(marketer):
    """Customers in 深圳: two at risk, one churned, one active; one at risk in 广州."""
    from django.utils import timezone

    from kequn.customers.services import IdentityInput, create_customer
    from kequn.scoring.models import CustomerScore

    people = {}
    for n, (name, city, stage) in enumerate(
        [
            ("周一", "深圳", "at_risk"),
            ("吴二", "深圳", "at_risk"),
            ("郑三", "深圳", "churned"),
            ("王四", "深圳", "active"),
            ("冯五", "广州", "at_risk"),
        ]
    ):
        customer = create_customer(
            {"name": name, "city": city, "province": "广东"},
            [IdentityInput("phone", f"1380013{9100 + n:04d}")],
            by=system_actor("tests"),
        )
        CustomerScore.objects.create(
            customer=customer, computed_at=timezone.now(), lifecycle_stage=stage
        )
        people[name] = customer
    return people


def test_marketer_clicks_churn_risk_customers_in_shenzhen_in_chinese(page, shenzhen):
    log_in(page, "mia", PASSWORD)
    page.context.add_cookies([{"name": "django_language", "value": "zh-hans", "url": page.url}])
    page.goto("/admin/segments/segment/add/")
    live = page.locator("#kequn-live-count")
    expect(live).to_have_text("添加条件后即可看到符合的客户。")
    assert page.locator(".errornote, .errorlist").count() == 0
    page.locator("[name=name]").fill("深圳流失风险客户")
    builder = page.locator("#kequn-rule-builder")

    # Condition 1: 城市 是 深圳.
    builder.get_by_role("button", name="+ 添加条件", exact=True).click()
    first = builder.locator(".kq-condition").nth(0)
    first.locator("[data-role=field]").select_option(label="城市")
    expect(first.get_by_role("combobox", name="运算符")).to_have_value("eq")
    expect(live).to_have_text("请把条件填写完整，即可看到人数。")
    first.get_by_role("textbox", name="值").fill("深圳")
    # Four here, and Alice of the base, whose city was given as "Shenzhen": one place, one name.
    expect(live).to_have_text("5 位客户符合此规则")

    # Condition 2: 生命周期阶段 是以下之一 有流失风险, 已流失 — picked by label, never a code.
    builder.get_by_role("button", name="+ 添加条件", exact=True).click()
    second = builder.locator(".kq-condition").nth(1)
    second.locator("[data-role=field]").select_option(label="生命周期阶段")
    second.get_by_role("combobox", name="运算符").select_option(label="是以下之一")
    for label in ("有流失风险", "已流失"):
        second.get_by_label(label).check()
    expect(live).to_have_text("3 位客户符合此规则")
    assert "at_risk" not in builder.inner_text()
    # A sample of the members, phone numbers masked.
    sample = page.locator("#kequn-live-sample")
    expect(sample.locator("li")).to_have_count(3)
    expect(sample).to_contain_text("138****91")
    assert "周一" in sample.inner_text() and "王四" not in sample.inner_text()

    # A nested group can be added and removed again.
    builder.get_by_role("button", name="+ 添加条件组").click()
    expect(builder.locator("fieldset fieldset")).to_have_count(1)
    builder.locator("fieldset fieldset").get_by_role("button", name="删除").first.click()
    expect(builder.locator("fieldset fieldset")).to_have_count(0)
    expect(live).to_have_text("3 位客户符合此规则")
    shoot(page, "segment-builder-zh")

    # The JSON view follows the clicks.
    page.locator("#kequn-rule-json summary").click()
    assert json.loads(page.locator("#id_rules").input_value()) == CHURN_RISK_IN_SHENZHEN

    page.locator("[name=_continue]").click()
    page.wait_for_url(re.compile(r"/admin/segments/segment/\d+/change/"))
    segment = Segment.objects.get(name="深圳流失风险客户")
    assert segment.rules == CHURN_RISK_IN_SHENZHEN
    assert segment.member_count == 3

    # Every member, on its own page, masked for this role.
    page.locator("#kequn-all-members").click()
    table = page.locator("#kequn-member-table")
    expect(table.locator("tbody tr")).to_have_count(3)
    expect(table).to_contain_text("周一")
    assert "13800139100" not in table.inner_text()
    shoot(page, "segment-members-zh")
