"""The back-office shell: where every login path lands."""

from __future__ import annotations

import base64
import html as htmllib
import re

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from kequn.security.roles import ADMINISTRATOR, MARKETING

pytestmark = pytest.mark.django_db
PASSWORD = "Sturdy-pass-42"


def make_user(username: str, role: str) -> User:
    user = User.objects.create_user(username, password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


def code_for(key: bytes) -> str:
    """Compute the current code the way an authenticator app does."""
    return str(totp(key, step=30, t0=0, digits=6)).zfill(6)


def follow_to_end(client: Client, response, limit: int = 6):
    """Follow redirects; return the final response and the paths visited."""
    visited = []
    while response.status_code in (301, 302) and limit:
        visited.append(response["Location"])
        response = client.get(response["Location"])
        limit -= 1
    return response, visited


def hidden_fields(html: str) -> dict[str, str]:
    """Return a page's hidden form fields, unescaped as the browser would send them."""
    found = re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html)
    return {name: htmllib.unescape(value) for name, value in found}


def submit_login_form(client: Client, url: str, username: str):
    """Post the login form as the browser would: to its action, with its hidden fields."""
    page = client.get(url)
    html = page.content.decode()
    fields = hidden_fields(html)
    fields.pop("csrfmiddlewaretoken", None)
    return client.post(url, {**fields, "username": username, "password": PASSWORD})


def test_plain_login_page_lands_on_the_dashboard():
    make_user("mia", MARKETING)
    client = Client()
    response = submit_login_form(client, "/admin/login/", "mia")
    assert response.status_code == 302 and response["Location"] == "/admin/"
    final, visited = follow_to_end(client, response)
    assert final.status_code == 200 and final.request["PATH_INFO"] == "/admin/"
    assert not any("/accounts/profile/" in path for path in visited)


def test_login_without_next_in_the_form_still_lands_on_the_dashboard():
    # A form posted without the hidden field (an old page, a script) used Django's default.
    make_user("mia", MARKETING)
    client = Client()
    response = client.post("/admin/login/", {"username": "mia", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_login_lands_on_the_page_asked_for():
    make_user("mia", MARKETING)
    client = Client()
    asked = client.get("/admin/customers/customer/?city=%E6%B7%B1%E5%9C%B3")
    assert asked.status_code == 302
    response = submit_login_form(client, asked["Location"], "mia")
    final, _ = follow_to_end(client, response)
    assert final.status_code == 200
    assert final.request["PATH_INFO"] == "/admin/customers/customer/"
    assert final.request["QUERY_STRING"] == "city=%E6%B7%B1%E5%9C%B3"


def test_login_never_leaves_the_site():
    make_user("mia", MARKETING)
    client = Client()
    response = client.post(
        "/admin/login/?next=https://evil.example/",
        {"username": "mia", "password": PASSWORD, "next": "https://evil.example/"},
    )
    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_signed_in_user_following_a_login_link_lands_on_the_page_asked_for():
    make_user("mia", MARKETING)
    client = Client()
    client.post("/admin/login/", {"username": "mia", "password": PASSWORD})
    response = client.get("/admin/login/?next=/admin/segments/segment/")
    assert response.status_code == 302 and response["Location"] == "/admin/segments/segment/"
    elsewhere = client.get("/admin/login/?next=https://evil.example/")
    assert elsewhere.status_code == 302 and elsewhere["Location"] == "/admin/"


def test_administrator_asking_for_the_api_docs_gets_there_after_the_second_factor():
    user = make_user("ada", ADMINISTRATOR)
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client = Client()
    asked = client.get("/api/docs")
    assert asked.status_code == 302
    response = submit_login_form(client, asked["Location"], "ada")
    verify, visited = follow_to_end(client, response)
    assert visited[-1].startswith("/admin/otp/verify/")
    fields = hidden_fields(verify.content.decode())
    fields.pop("csrfmiddlewaretoken", None)
    done = client.post(visited[-1], {**fields, "token": code_for(device.bin_key)})
    assert done.status_code == 302 and done["Location"] == "/api/docs"
    assert client.get("/api/docs").status_code == 200
    assert client.get("/api/openapi.json").status_code == 200


def test_two_factor_setup_continue_lands_on_the_dashboard():
    make_user("ada", ADMINISTRATOR)
    client = Client()
    response = submit_login_form(client, "/admin/login/", "ada")
    setup, visited = follow_to_end(client, response)
    assert visited[-1].startswith("/admin/otp/setup/")
    html = setup.content.decode()
    secret = html.split('id="otp-secret">', 1)[1].split("<", 1)[0].strip()
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    fields = hidden_fields(html)
    done = client.post(visited[-1], {"next": fields["next"], "token": code_for(key)})
    assert done.status_code == 200
    # The codes page's 继续 / Continue button.
    target = re.search(r'<a href="([^"]+)"[^>]*>\s*(Continue|继续)', done.content.decode())
    assert target and target.group(1) == "/admin/"
    assert client.get(target.group(1)).status_code == 200


def test_two_factor_setup_keeps_the_page_asked_for():
    make_user("ada", ADMINISTRATOR)
    client = Client()
    asked = client.get("/admin/segments/segment/?q=a&o=1")
    response = submit_login_form(client, asked["Location"], "ada")
    setup, visited = follow_to_end(client, response)
    html = setup.content.decode()
    secret = html.split('id="otp-secret">', 1)[1].split("<", 1)[0].strip()
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    fields = hidden_fields(html)
    assert fields["next"] == "/admin/segments/segment/?q=a&o=1"
    done = client.post(visited[-1], {"next": fields["next"], "token": code_for(key)})
    target = re.search(r'<a href="([^"]+)"[^>]*>\s*(Continue|继续)', done.content.decode())
    assert target.group(1).replace("&amp;", "&") == "/admin/segments/segment/?q=a&o=1"


def test_code_and_recovery_code_land_on_the_dashboard():
    user = make_user("ada", ADMINISTRATOR)
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    from kequn.security.otp import create_recovery_codes

    recovery = create_recovery_codes(user)[0]
    for token in (code_for(device.bin_key), recovery):
        client = Client()
        response = submit_login_form(client, "/admin/login/", "ada")
        verify, visited = follow_to_end(client, response)
        assert visited[-1].startswith("/admin/otp/verify/")
        html = verify.content.decode()
        fields = hidden_fields(html)
        fields.pop("csrfmiddlewaretoken", None)
        done = client.post(visited[-1], {**fields, "token": token})
        assert done.status_code == 302 and done["Location"] == "/admin/"
        assert client.get("/admin/").status_code == 200
        TOTPDevice.objects.filter(pk=device.pk).update(last_t=-1)  # the code may be reused


def test_verify_without_a_device_keeps_a_next_with_several_parameters():
    make_user("ada", ADMINISTRATOR)
    client = Client()
    client.post("/admin/login/", {"username": "ada", "password": PASSWORD})
    response = client.get("/admin/otp/verify/?next=/admin/segments/segment/%3Fq%3Da%26o%3D1")
    assert response.status_code == 302
    setup = client.get(response["Location"])
    html = setup.content.decode()
    fields = hidden_fields(html)
    assert fields["next"] == "/admin/segments/segment/?q=a&o=1"


def test_routine_403_is_one_log_line_without_traceback(caplog):
    mia = make_user("mia", MARKETING)
    client = Client()
    client.force_login(mia)
    with caplog.at_level("WARNING", logger="django.request"):
        assert client.get("/admin/security/apitoken/").status_code == 403
        assert client.get("/admin/no-such-page/").status_code == 404
    records = [r for r in caplog.records if r.name == "django.request"]
    assert [r.getMessage() for r in records] == [
        "Forbidden (Permission denied): /admin/security/apitoken/",
        "Not Found: /admin/no-such-page/",
    ]
    assert all(r.exc_info is None and r.exc_text is None for r in records)


SIDEBAR_LINK = re.compile(r'<a href="([^"]+)" class="flex h-\[38px\][^"]*?( active)?"')


def sidebar(client: Client, path: str = "/admin/") -> tuple[list[str], list[str]]:
    """Return the sidebar's links and the highlighted ones on a page."""
    page = client.get(path)
    assert page.status_code == 200, path
    found = SIDEBAR_LINK.findall(page.content.decode())
    return [link for link, _ in found], [link for link, active in found if active]


@pytest.mark.slow
def test_every_role_sees_exactly_the_pages_it_can_open():
    from kequn.security.roles import ROLES

    root = User.objects.create_superuser("root", password=PASSWORD)
    everything = Client()
    everything.force_login(root)
    all_links, _ = sidebar(everything)
    assert "/admin/auth/user/" in all_links and len(all_links) > 20
    seen = {}
    for role in ROLES:
        client = Client()
        client.force_login(make_user(f"user-{role}", role))
        links, _ = sidebar(client)
        seen[role] = links
        for link in all_links:
            status = client.get(link).status_code
            if link in links:
                assert status == 200, f"{role} is shown {link} but gets {status}"
            else:
                assert status in (302, 403), f"{role} can open {link} ({status}) but not see it"
    for hidden in ("/admin/auth/user/", "/admin/auth/group/", "/admin/security/apitoken/"):
        assert hidden not in seen[MARKETING]
        assert hidden in seen[ADMINISTRATOR]
    assert "/admin/segments/segment/" in seen[MARKETING]
    # README's Roles: the audit trail, security alerts and campaign reports (read only).
    assert seen["auditor"] == [
        "/admin/",
        "/admin/engage/campaign/",
        "/admin/monitoring/alert/",
        "/admin/audit/auditentry/",
        "/api/docs",
    ]


def test_one_sidebar_item_is_highlighted_at_a_time():
    client = Client()
    client.force_login(User.objects.create_superuser("root", password=PASSWORD))
    for path, expected in [
        ("/admin/", "/admin/"),
        ("/admin/segments/segment/", "/admin/segments/segment/"),
        ("/admin/segments/segment/tag-customers/", "/admin/segments/segment/tag-customers/"),
        ("/admin/ingest/importrun/upload/", "/admin/ingest/importrun/upload/"),
        ("/admin/ingest/importrun/", "/admin/ingest/importrun/"),
        ("/admin/dashboard/reports/", "/admin/dashboard/reports/"),
    ]:
        _, active = sidebar(client, path)
        assert active == [expected], path


def test_privacy_badge_shows_nothing_when_nothing_is_overdue():
    client = Client()
    client.force_login(User.objects.create_superuser("root", password=PASSWORD))
    html = client.get("/admin/").content.decode()
    item = html.split('href="/admin/privacy/privacyrequest/"', 1)[1].split("</a>", 1)[0]
    assert "<span>" in item and "rounded-xs" not in item


ERROR_TEXTS = {
    "en": {
        403: "You cannot open this page",
        404: "Page not found",
        500: "Something went wrong",
        "csrf": "This form has expired",
        "home": "Back to the dashboard",
    },
    "zh-hans": {
        403: "您无权打开此页面",
        404: "页面不存在",
        500: "出错了",
        "csrf": "表单已过期",
        "home": "返回仪表盘",
    },
}


def assert_themed_error(response, status: int, language: str, key=None, inside: bool = True):
    html = response.content.decode()
    assert response.status_code == status
    assert 'id="error-page"' in html
    assert "unfold/css/styles.css" in html  # the back office's theme
    assert ERROR_TEXTS[language][key or status] in html
    assert f'<html lang="{language}"' in html
    # Staff keep their sidebar; others get the plain page with a way to log in.
    assert ('id="nav-sidebar-apps"' in html) is inside
    assert (ERROR_TEXTS[language]["home"] in html) is inside


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_403_and_404_pages_are_themed_and_translated(language):
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(make_user("mia", MARKETING))
    assert_themed_error(client.get("/admin/auth/user/"), 403, language)
    assert_themed_error(client.get("/admin/no-such-page/"), 404, language)
    anonymous = Client(HTTP_ACCEPT_LANGUAGE=language)
    assert_themed_error(anonymous.get("/no-such-page/"), 404, language, inside=False)


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_500_page_is_themed_and_translated(language, settings):
    from django.urls import get_resolver

    assert get_resolver("kequn.urls").resolve_error_handler(500).__name__ == "server_error"
    settings.ROOT_URLCONF = "tests.backoffice.error_urls"
    client = Client(HTTP_ACCEPT_LANGUAGE=language, raise_request_exception=False)
    client.force_login(make_user("mia", MARKETING))
    assert_themed_error(client.get("/admin/boom/"), 500, language)


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_csrf_failure_page_is_themed_and_translated(language):
    client = Client(HTTP_ACCEPT_LANGUAGE=language, enforce_csrf_checks=True)
    response = client.post("/admin/login/", {"username": "x", "password": "y"})
    assert_themed_error(response, 403, language, key="csrf", inside=False)


def test_api_errors_stay_json():
    client = Client()
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404 and response.json()["detail"].startswith("not found")


def test_purchase_date_filters_are_date_pickers():
    client = Client()
    client.force_login(make_user("mia", MARKETING))
    html = client.get("/admin/customers/customer/?purchased_from=2024-01-05").content.decode()
    for name, kind in [
        ("purchased_from", "date"),
        ("purchased_to", "date"),
        ("first_purchase_from", "date"),
        ("first_purchase_month", "month"),
    ]:
        tags = re.findall(rf'<input[^>]*name="{name}"[^>]*>', html)
        boxes = [tag for tag in tags if 'type="hidden"' not in tag]
        assert len(boxes) == 1 and f'type="{kind}"' in boxes[0], tags
    assert re.search(r'<input type="date"[^>]*name="purchased_from"[^>]*value="2024-01-05"', html)


@pytest.mark.parametrize(("accept", "current"), [("zh-hans", "中文"), ("en", "English")])
def test_language_switch_in_the_header(accept, current):
    client = Client(HTTP_ACCEPT_LANGUAGE=accept)
    client.force_login(make_user("mia", MARKETING))
    for path in ("/admin/", "/admin/customers/customer/"):
        html = client.get(path).content.decode()
        header = html.split('id="header-inner"', 1)[1].split("</header>", 1)[0]
        toggle = header.split('id="language-toggle"', 1)[1].split("</div>", 1)[0]
        labels = re.findall(r'<button[^>]*lang="([^"]+)"[^>]*>([^<]+)</button>', toggle)
        assert labels == [("zh-hans", "中文"), ("en", "English")]
        assert f'aria-current="true">{current}<' in toggle
        assert "ZH-HANS" not in html and "简体中文" not in html
    switched = client.post(
        "/i18n/setlang/", {"language": "en", "next": "/admin/customers/customer/"}
    )
    assert switched["Location"] == "/admin/customers/customer/"
    assert "Stores and channels" in client.get("/admin/customers/customer/").content.decode()
    login = Client(HTTP_ACCEPT_LANGUAGE=accept).get("/admin/login/").content.decode()
    assert 'id="language-toggle"' in login


def test_favicon_is_shipped_and_linked():
    client = Client()
    html = client.get("/admin/login/").content.decode()
    assert '<link rel="icon" href="/static/kequn/favicon.svg" type="image/svg+xml"' in html
    icon = client.get("/favicon.ico")
    assert icon.status_code == 301 and icon["Location"] == "/static/kequn/favicon.svg"
    svg = client.get("/static/kequn/favicon.svg")
    assert svg.status_code == 200
    assert b"<svg" in b"".join(svg.streaming_content)


def test_times_are_shown_in_the_business_time_zone(settings):
    import datetime as dt

    from kequn.ingest.models import ImportRun
    from kequn.segments.models import Segment, SegmentSize

    assert settings.TIME_ZONE == "Asia/Shanghai"
    # 20:30 UTC is 04:30 the next day in Shanghai.
    moment = dt.datetime(2024, 1, 1, 20, 30, tzinfo=dt.UTC)
    run = ImportRun.objects.create(kind="customers", file_name="a.csv", started_at=moment)
    assert "2024-01-02 04:30" in str(run)
    segment = Segment.objects.create(name="Shenzhen", rules={"all": []})
    size = SegmentSize.objects.create(segment=segment, measured_at=moment, size=3)
    assert "@ 2024-01-02:" in str(size)

    client = Client()
    client.force_login(User.objects.create_superuser("root", password=PASSWORD))
    html = client.get(f"/admin/segments/segment/{segment.pk}/change/").content.decode()
    # The size chart's points read as the entries and exits listed beside them.
    assert "<title>2024-01-02 04:30: 3</title>" in html
    assert "2024-01-01 20:30" not in html


def test_demo_sample_segments_are_valid_and_created_once(data, admin_user):
    from kequn.demo.services import SAMPLE_SEGMENTS, create_sample_segments
    from kequn.segments.models import Segment

    created = create_sample_segments(by=admin_user)
    assert [s.name for s in created] == [name for name, _, _ in SAMPLE_SEGMENTS]
    assert all(s.created_by == admin_user and s.disabled_at is None for s in created)
    assert create_sample_segments(by=admin_user) == []
    assert Segment.objects.count() == len(SAMPLE_SEGMENTS)
