"""Walk the back office in a real browser: log in, dashboard, filters, 360, language, import.

Building a segment is walked in test_segment_builder.py.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from playwright.sync_api import expect

from kequn.dashboard import services
from kequn.security.actors import system_actor
from tests.dashboard.conftest import build_base
from tests.e2e.conftest import add_authenticator, shoot
from tests.e2e.conftest import log_in as log_in_as

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "e2e-Pass-word-42"


@pytest.fixture
def base(transactional_db):
    data = build_base()
    services.refresh_dashboard(now=data.now, by=system_actor("tests"))
    boss = User.objects.create_superuser("boss", password=PASSWORD)
    data.authenticator = add_authenticator(boss)
    return data


@pytest.fixture
def log_in(base):
    """Log the superuser in, passing the second factor an administrator must use."""
    return lambda page: log_in_as(page, "boss", PASSWORD, base.authenticator)


def set_english(page) -> None:
    # The language switcher posts to /i18n/setlang/; the cookie then decides the language.
    page.context.add_cookies([{"name": "django_language", "value": "en", "url": page.url}])


def test_dashboard_filters_keyboard_and_links(page, base, log_in):
    log_in(page)
    set_english(page)
    page.goto("/admin/?period=7")
    dash = page.locator("#kequn-dashboard")
    assert dash.is_visible()
    assert "250.00" in page.locator('[data-kpi="revenue"] .kq-kpi-value').inner_text()
    shoot(page, "dashboard")

    # Every control of the filter form has a label; Tab reaches the period filter.
    for control in page.locator(".kq-filters select").all():
        control_id = control.get_attribute("id")
        assert page.locator(f'label[for="{control_id}"]').count() == 1
    page.locator("body").click(position={"x": 1, "y": 1})
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "kq-period":
            break
    else:
        pytest.fail("Tab never reached the period filter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "kq-channel"
    page.select_option("#kq-channel", label="Web shop")
    page.keyboard.press("Tab")  # on to the Apply button, then submit from the keyboard
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"channel=\d+"))
    assert "200.00" in page.locator('[data-kpi="revenue"] .kq-kpi-value').inner_text()

    # A chart element opens the customer list filtered to the customers behind it.
    page.goto("/admin/?period=7")
    # Places are stored in their canonical short Chinese form (Guangdong is 广东).
    page.locator('[data-chart="provinces"] a', has_text="广东").click()
    page.wait_for_url(re.compile(r"/admin/customers/customer/\?province=(%E5%B9%BF%E4%B8%9C|广东)"))
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1 and "Alice" in rows.first.inner_text()
    shoot(page, "customers-filtered-from-chart")


def test_impossible_filter_and_empty_period(page, base, log_in):
    log_in(page)
    set_english(page)
    page.goto("/admin/?period=4000")
    alert = page.get_by_role("alert").first
    assert "4000" in alert.inner_text()
    shoot(page, "dashboard-bad-filter")


def test_customer_360_and_list_filter(page, base, log_in):
    log_in(page)
    set_english(page)
    page.goto(f"/admin/customers/customer/{base.a.pk}/360/")
    assert page.locator("#customer-360").is_visible()
    shoot(page, "customer-360")
    page.goto("/admin/customers/customer/")
    search = page.locator("#searchbar")
    assert search.count() == 1
    # Unfold names the search box only through its placeholder; that still gives it an
    # accessible name, which is what a screen reader announces.
    expect(search).to_have_accessible_name(re.compile(r"\w"))
    search.fill("Bob")
    search.press("Enter")
    page.wait_for_url(re.compile(r"q=Bob"))
    assert page.locator("#result_list tbody tr").count() == 1
    shoot(page, "customers-search")


def test_switch_between_chinese_and_english(page, base, log_in):
    log_in(page)
    page.goto("/admin/")
    forms = page.locator('form[action="/i18n/setlang/"]')
    assert forms.count() >= 2  # the unfold switcher offers both languages
    page.evaluate(
        """() => document.querySelector('form[action="/i18n/setlang/"] input[value="en"]')
            .closest('form').submit()"""
    )
    # expect() waits: the new page may still be parsing when its <html> already says "en".
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#kequn-dashboard")).to_contain_text("Revenue")
    page.evaluate(
        """() => document.querySelector('form[action="/i18n/setlang/"] input[value="zh-hans"]')
            .closest('form').submit()"""
    )
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    page.wait_for_load_state()
    shoot(page, "dashboard-zh-hans")


def test_import_through_the_upload_page(page, base, log_in, tmp_path, settings):
    upload_url = reverse("admin:ingest_upload")
    settings.DATA_DIR = tmp_path
    sample = tmp_path / "customers.csv"
    sample.write_text("name,email,city\nZhao Lei,zhao@example.com,Hangzhou\n", encoding="utf-8")
    log_in(page)
    set_english(page)
    page.goto(upload_url)
    page.select_option("select[name=kind]", "customers")
    page.set_input_files("input[type=file]", str(sample))
    page.locator("form [type=submit]", has_text="Upload").click()
    page.locator("button[value=import]").click()
    page.wait_for_load_state()
    shoot(page, "import-done")
    from kequn.customers.models import Customer
    from kequn.customers.services import find_customer_by_identity

    # What was imported, not only the name: the email identity and the (canonical) city.
    customer = Customer.objects.get(name="Zhao Lei")
    assert customer.city == "杭州"
    assert find_customer_by_identity("email", "zhao@example.com") == customer
    assert [i.value for i in customer.identities.filter(kind="email")] == ["zhao@example.com"]
