"""In a real browser: a dry run that says per row what would happen, then the import's summary."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from playwright.sync_api import expect

from kequn.customers.models import Customer
from kequn.customers.services import IdentityInput, create_customer
from kequn.ingest.models import ImportRun
from kequn.security.actors import system_actor
from tests.e2e.conftest import add_authenticator, log_in, shoot

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "e2e-Pass-word-42"


@pytest.mark.slow
def test_dry_run_then_import_sends_a_shared_phone_to_review(page, tmp_path, settings):
    settings.DATA_DIR = tmp_path
    boss = User.objects.create_superuser("boss", password=PASSWORD)
    device = add_authenticator(boss)
    chen = create_customer(
        {"name": "陈建", "city": "深圳"},
        [IdentityInput("phone", "13800004767")],
        by=system_actor("tests"),
    )
    sample = tmp_path / "customers.csv"
    sample.write_text("手机,姓名,城市\n13800004767,王芳,广州市\n13700000000,新人,Shanghai\n",
                      encoding="utf-8")  # fmt: skip
    page.set_default_timeout(30_000)  # the import pages do real work; CI machines are shared
    log_in(page, "boss", PASSWORD, device)
    page.goto(reverse("admin:ingest_upload"))
    page.select_option("select[name=kind]", "customers")
    page.set_input_files("input[type=file]", str(sample))
    page.locator("form:has(input[type=file]) button[type=submit]").click()
    # The mapping shows field labels (the browser asks for English here).
    expect(page.locator("select[name=field_2] option:checked")).to_have_text("city")
    page.locator("button[value=dry_run]").click()
    rows = page.locator("#dry-run-rows tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("sent to review")
    expect(rows.nth(0)).to_contain_text("陈建")
    expect(rows.nth(1)).to_contain_text("created")
    expect(rows.nth(1)).to_contain_text("上海")
    shoot(page, "import-dry-run")
    assert Customer.objects.count() == 1
    page.locator("button[value=import]").click()
    expect(page.locator("#import-result")).to_be_visible()
    expect(page.locator("#import-counts tr[data-outcome=review]")).to_contain_text("1")
    shoot(page, "import-result")
    page.locator("#import-counts tr[data-outcome=review] a").click()
    expect(page.locator("#result_list")).to_contain_text("陈建")
    expect(page.locator("#result_list")).to_contain_text("王芳")
    chen.refresh_from_db()
    assert chen.name == "陈建"
    # Choosing the file left "Source system" empty (the theme's script once filled in the
    # file name there, making every file a source of its own).
    assert set(ImportRun.objects.values_list("source", flat=True)) == {"import"}
