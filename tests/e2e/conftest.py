"""Browser tests: Playwright driving Debian's chromium against pytest-django's live server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Playwright's sync API keeps an event loop in the test thread; the ORM calls made by the
# fixtures in that thread are still plain synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def browser():
    """Launch Debian's chromium once for the module (never a downloaded browser)."""
    if not CHROMIUM.exists():
        pytest.fail(
            "Browser tests need Debian's chromium at /usr/bin/chromium: "
            "run `apt-get update && apt-get install -y chromium` (see .ci/run).",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    """Return a fresh page whose requests may only reach the live server."""
    context = browser.new_context(base_url=live_server.url, locale="en-US")

    def only_localhost(route):
        url = route.request.url
        if url.startswith(live_server.url) or url.startswith(("data:", "blob:", "about:")):
            route.continue_()
        else:
            route.abort()

    context.route("**/*", only_localhost)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def shoot(page, name: str) -> None:
    """Save a full-page screenshot as a test artefact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def add_authenticator(user) -> object:
    """Give a user a confirmed TOTP device (administrators must pass a second factor)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    return TOTPDevice.objects.create(user=user, name="e2e authenticator", confirmed=True)


def current_code(device) -> str:
    """Return the code the user's authenticator app would show now."""
    from django_otp.oath import TOTP

    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def log_in(page, username: str, password: str, device=None) -> None:
    """Log in through the login page, then the second-factor page when the user has one."""
    import re

    page.goto("/admin/login/?next=/admin/")
    page.get_by_label(re.compile("user ?name|用户名", re.I)).fill(username)
    page.get_by_label(re.compile("password|密码", re.I)).fill(password)
    page.locator("form [type=submit]").first.click()
    if device is not None:
        page.wait_for_url("**/admin/otp/verify/**")
        page.locator("#otp-verify-form input[name=token]").fill(current_code(device))
        page.locator("#otp-verify-form [type=submit]").click()
    page.wait_for_url("**/admin/")
