"""A marketer's four everyday tasks in Chinese, with the marketing role exactly as it ships.

Find the churn-risk customers in 深圳 and make them a segment; import a small CSV with
姓名,手机,邮箱,城市 headers; look at one customer's orders, scores and recommendations;
download the dashboard. Screenshots of every step are kept in test-artifacts/e2e/.
"""

from __future__ import annotations

import io
import re
from decimal import Decimal

import openpyxl
import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from playwright.sync_api import expect

from kequn.commerce.models import Product
from kequn.customers.models import Customer, Identity
from kequn.customers.services import IdentityInput, create_customer
from kequn.dashboard import services
from kequn.recommend.models import Recommendation
from kequn.scoring.models import CustomerScore
from kequn.security.actors import system_actor
from kequn.security.permissions import sync_roles
from kequn.security.roles import MARKETING
from kequn.segments.models import Segment, SegmentMember
from tests.dashboard.conftest import build_base, score
from tests.e2e.conftest import log_in, shoot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
PASSWORD = "e2e-Mei-word-42"


@pytest.fixture
def shop(transactional_db):
    """The hand-built base plus three customers in 深圳 (two at risk) and a marketing user."""
    data = build_base()
    shenzhen = {}
    for n, (name, stage) in enumerate([("周敏", "at_risk"), ("吴磊", "at_risk"), ("郑洁", "new")]):
        customer = create_customer(
            {"name": name, "province": "广东省", "city": "深圳市"},
            [IdentityInput("phone", f"1380013{9200 + n:04d}")],
            by=system_actor("tests"),
        )
        score(customer, lifecycle_stage=stage, churn_risk=0.8 if stage == "at_risk" else 0.1)
        shenzhen[name] = customer
    phone = Product.objects.create(sku="KQ-P1", name="客群手机 P1", price=Decimal("2999.00"))
    Recommendation.objects.create(
        customer=data.a, product=phone, rank=1, score=0.9, source="hybrid_1_0_1"
    )
    services.refresh_dashboard(now=data.now, by=system_actor("tests"))
    sync_roles()
    user = User.objects.create_user("mei", password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=MARKETING))
    return data, shenzhen


def speak_chinese(page) -> None:
    page.context.add_cookies([{"name": "django_language", "value": "zh-hans", "url": page.url}])


def test_a_marketer_does_four_everyday_tasks_in_chinese(page, live_server, shop, tmp_path):
    data, shenzhen = shop
    page.set_default_timeout(30_000)  # the pages do real work; CI machines are shared
    log_in(page, "mei", PASSWORD)
    speak_chinese(page)
    page.goto("/admin/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")

    # 1. The churn-risk customers in 深圳, from the filtered list to a saved segment.
    page.goto("/admin/customers/customer/?city=深圳&score__lifecycle_stage__exact=at_risk")
    listed = page.locator("#result_list tbody tr")
    expect(listed).to_have_count(2)
    shoot(page, "marketer-1-filtered-list")
    page.locator("#kequn-save-as-segment").click()
    page.wait_for_url(re.compile(r"/admin/segments/segment/add/"))
    expect(page.locator("#kequn-live-count")).to_contain_text("2")
    page.locator("[name=name]").fill("深圳流失风险客户")
    shoot(page, "marketer-1-segment-builder")
    page.locator("[name=_continue]").click()
    page.wait_for_url(re.compile(r"/admin/segments/segment/\d+/change/"))
    segment = Segment.objects.get(name="深圳流失风险客户")
    members = set(SegmentMember.objects.filter(segment=segment).values_list("customer", flat=True))
    assert members == {shenzhen["周敏"].pk, shenzhen["吴磊"].pk}
    shoot(page, "marketer-1-segment-saved")

    # 2. A small CSV with Chinese headers: dry run first, then the import.
    sample = tmp_path / "新客户.csv"
    sample.write_text(
        "姓名,手机,邮箱,城市\n"
        "林晓,13900139001,linxiao@example.cn,深圳市\n"
        "何静,13900139002,hejing@example.cn,Shenzhen\n",
        encoding="utf-8",
    )
    page.goto(reverse("admin:ingest_upload"))
    page.select_option("select[name=kind]", "customers")
    page.set_input_files("input[type=file]", str(sample))
    page.locator("form:has(input[type=file]) button[type=submit]").click()
    # The mapping speaks the user's language: field labels, not codes or escaped JSON.
    expect(page.locator("select[name=field_3] option:checked")).to_have_text("城市")
    page.locator("button[value=dry_run]").click()
    rows = page.locator("#dry-run-rows tbody tr")
    expect(rows).to_have_count(2)
    shoot(page, "marketer-2-dry-run")
    assert not Customer.objects.filter(name__in=["林晓", "何静"]).exists()
    page.locator("button[value=import]").click()
    expect(page.locator("#import-result")).to_be_visible()
    expect(page.locator("#import-counts")).not_to_contain_text("{")
    shoot(page, "marketer-2-import-result")
    imported = Customer.objects.filter(name__in=["林晓", "何静"])
    assert sorted(imported.values_list("city", flat=True)) == ["深圳", "深圳"]
    assert Identity.objects.filter(customer__in=imported, kind="email").count() == 2
    # 深圳市 and Shenzhen are one place: Alice, the three above and the two imported.
    page.goto("/admin/customers/customer/?city=Shenzhen")
    expect(page.locator("#result_list tbody tr")).to_have_count(6)

    # 3. One customer's orders, scores and recommendations, with personal data masked.
    page.goto(reverse("admin:customers_customer_360", args=[data.a.pk]))
    header = page.locator("#kequn-360-header")
    expect(header).to_contain_text(data.a.name)
    recommendations = page.locator("#kequn-recommendations")
    expect(recommendations).to_contain_text("客群手机 P1")
    expect(recommendations).not_to_contain_text("hybrid")
    expect(page.locator("body")).to_contain_text("2,999.00")
    shoot(page, "marketer-3-customer-360")
    assert CustomerScore.objects.filter(customer=data.a).exists()

    # 4. The dashboard, downloaded as Excel with the figures the page shows.
    page.goto("/admin/")
    expect(page.locator("h1, h2").first).not_to_contain_text("站点管理")
    shoot(page, "marketer-4-dashboard")
    with page.expect_download() as caught:
        page.get_by_role("link", name="导出为 Excel").click()
    assert caught.value.suggested_filename.endswith(".xlsx")
    with open(caught.value.path(), "rb") as handle:
        book = openpyxl.load_workbook(io.BytesIO(handle.read()))
    cells = [str(c) for sheet in book for row in sheet.iter_rows(values_only=True) for c in row]
    with translation.override("zh-hans"):
        title, revenue = str(_("Kequn dashboard")), str(_("Revenue"))
    assert not title.isascii() and title in cells
    assert any(revenue in c for c in cells), cells[:40]
    assert not any("Traceback" in c for c in cells)
