"""The Content-Security-Policy holds in a real browser: the back office loads with no violation."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from kequn.dashboard import services
from kequn.security.actors import system_actor
from tests.dashboard.conftest import build_base
from tests.e2e.conftest import shoot

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "csp-Pass-word-42"
# Every violation is reported to the page as an event; keep them where the test can read them.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


@pytest.fixture
def base(transactional_db):
    data = build_base()
    services.refresh_dashboard(now=data.now, by=system_actor("tests"))
    boss = User.objects.create_superuser("boss", password=PASSWORD)
    data.device = TOTPDevice.objects.create(user=boss, name="csp", confirmed=True)
    return data


def code(device: TOTPDevice) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def test_back_office_pages_load_without_csp_violations(page, base):
    problems: list[str] = []
    page.context.add_init_script(RECORD_VIOLATIONS)
    page.on(
        "console",
        lambda msg: (
            problems.append(msg.text)
            if msg.type == "error" and re.search("Content Security Policy|Refused to", msg.text)
            else None
        ),
    )
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))

    page.goto("/admin/login/?next=/admin/")
    page.context.add_cookies([{"name": "django_language", "value": "en", "url": page.url}])
    page.reload()
    page.get_by_label(re.compile("user ?name", re.I)).fill("boss")
    page.get_by_label(re.compile("password", re.I)).fill(PASSWORD)
    page.locator("form [type=submit]").first.click()
    page.wait_for_url("**/admin/otp/verify/**")
    page.locator("#otp-verify-form input[name=token]").fill(code(base.device))
    page.locator("#otp-verify-form [type=submit]").click()
    page.wait_for_url("**/admin/")

    visited = [
        "/admin/",
        "/admin/?period=7",
        reverse("dashboard:reports"),
        "/admin/customers/customer/",
        f"/admin/customers/customer/{base.a.pk}/360/",
        f"/admin/customers/customer/{base.a.pk}/change/",
        "/admin/commerce/order/",
        "/admin/otp/setup/",
    ]
    for url in visited:
        page.goto(url)
        page.wait_for_load_state("networkidle")
        violations = page.evaluate("window.__cspViolations")
        problems.extend(f"{url}: {v}" for v in violations)
        # Alpine.js (unfold's menus and tabs) must have started under the policy.
        assert page.evaluate("typeof window.Alpine") == "object", url
    page.goto("/admin/")
    assert page.locator("#kequn-dashboard").is_visible()
    assert page.locator("[data-chart]").count() > 0
    shoot(page, "dashboard-under-csp")
    page.goto("/admin/otp/setup/")
    assert page.locator("#otp-qr svg").is_visible()
    assert problems == []
