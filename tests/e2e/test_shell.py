"""The back-office shell in a browser: sign in, switch language, meet a 403 page."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group, User

from kequn.security.roles import MARKETING
from tests.e2e.conftest import shoot

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "shell-Pass-word-42"


def test_marketer_signs_in_switches_language_and_sees_only_their_pages(page):
    user = User.objects.create_user("mia", password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=MARKETING))

    page.goto("/admin/login/")  # no ?next=: Django's default was /accounts/profile/
    page.get_by_label(re.compile("user ?name|用户名", re.I)).fill("mia")
    page.get_by_label(re.compile("password|密码", re.I)).fill(PASSWORD)
    page.locator("form [type=submit]").first.click()
    page.wait_for_url("**/admin/")
    assert page.locator("link[rel=icon]").get_attribute("href") == "/static/kequn/favicon.svg"

    sidebar = page.locator("#nav-sidebar-apps")
    assert sidebar.get_by_role("link", name="Segments").count() == 1
    for hidden in ("Users", "Roles", "API tokens"):
        assert sidebar.get_by_role("link", name=hidden, exact=True).count() == 0
    shoot(page, "shell-dashboard-en")

    with page.expect_navigation():
        page.locator("#language-toggle button", has_text="中文").click()
    assert page.locator("html").get_attribute("lang") == "zh-hans"
    assert page.locator("#nav-sidebar-apps").get_by_role("link", name="分群").count() == 1

    page.goto("/admin/auth/user/")
    assert page.locator("#error-page").get_attribute("data-status") == "403"
    assert "您无权打开此页面" in page.locator("body").inner_text()
    shoot(page, "shell-403-zh")
    page.get_by_role("link", name="返回仪表盘").click()
    page.wait_for_url("**/admin/")
