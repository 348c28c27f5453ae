"""Login hardening: two-factor codes, lockout, session timeouts, CSRF, CSP and rate limits."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.core.cache.backends.filebased import FileBasedCache
from django.core.management import CommandError, call_command
from django.test import Client, override_settings
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from kequn.security.actors import system_actor
from kequn.security.middleware import SEEN_KEY, STARTED_KEY
from kequn.security.roles import ADMINISTRATOR, MARKETING
from kequn.security.services import create_api_token
from tests.conftest import grant

pytestmark = pytest.mark.django_db
PASSWORD = "Sturdy-pass-42"


def english_client() -> Client:
    """A client whose pages come in English, so the tests can read the messages."""
    return Client(HTTP_ACCEPT_LANGUAGE="en")


@pytest.fixture
def client() -> Client:
    return english_client()


def make_user(username: str, role: str | None = None, superuser: bool = False) -> User:
    user = User.objects.create_user(username, password=PASSWORD, is_staff=True)
    if superuser:
        user.is_superuser = True
        user.save()
    if role:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


def code_for(key: bytes, device: TOTPDevice | None = None, drift: int = 0) -> str:
    """Compute the current code the way an authenticator app does."""
    digits = device.digits if device else 6
    return str(totp(key, step=30, t0=0, digits=digits, drift=drift)).zfill(digits)


def start_in_a_fresh_minute() -> None:
    """Wait out the last seconds of a minute: the limits count per fixed one-minute window."""
    left = 60 - time.time() % 60
    if left < 15:
        time.sleep(left + 0.1)


def log_in(client: Client, username: str, password: str = PASSWORD, ip: str = "10.0.0.1"):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR=ip,
    )


def test_administrator_needs_the_code_after_the_password(client):
    user = grant(make_user("ada", ADMINISTRATOR), "customers.view_customer")
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)

    assert log_in(client, "ada").status_code == 302
    # Password alone opens neither the back office nor the session API.
    page = client.get("/admin/")
    assert page.status_code == 302 and page["Location"].startswith("/admin/otp/verify/")
    assert client.get("/admin/customers/customer/").status_code == 302
    api = client.get("/api/v1/customers")
    assert api.status_code == 401

    wrong = client.post("/admin/otp/verify/", {"token": "000000", "next": "/admin/"})
    assert wrong.status_code == 400
    assert "wrong or expired" in wrong.content.decode()
    assert client.get("/admin/").status_code == 302

    # A wrong code makes the next try wait a second (django-otp's doubling back-off).
    early = client.post("/admin/otp/verify/", {"token": code_for(device.bin_key)})
    assert early.status_code == 400 and "Too many wrong codes" in early.content.decode()
    time.sleep(1.1)
    ok = client.post("/admin/otp/verify/", {"token": code_for(device.bin_key), "next": "/admin/"})
    assert ok.status_code == 302 and ok["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert client.get("/api/v1/customers").status_code == 200


def test_superuser_without_device_must_set_one_up(client):
    make_user("root", superuser=True)
    log_in(client, "root")
    page = client.get("/admin/customers/customer/")
    assert page.status_code == 302 and page["Location"].startswith("/admin/otp/setup/")

    setup = client.get(page["Location"])
    html = setup.content.decode()
    assert setup.status_code == 200
    assert "<svg" in html and "http" not in html.split("<svg", 1)[1].split("</svg>")[0].replace(
        "http://www.w3.org", ""
    )  # drawn locally, no external image
    secret = html.split('id="otp-secret">', 1)[1].split("<", 1)[0].strip()
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))

    assert client.post("/admin/otp/setup/", {"token": "123"}).status_code == 400
    time.sleep(1.1)  # the back-off after a wrong code
    done = client.post("/admin/otp/setup/", {"token": code_for(key), "next": "/admin/"})
    assert done.status_code == 200
    codes = done.content.decode().split('id="otp-codes">', 1)[1].split("</ul>")[0]
    recovery = codes.split("<li>")[1].split("</li>")[0]
    assert client.get("/admin/customers/customer/").status_code == 200

    # A recovery code works once in place of the app.
    other = english_client()
    log_in(other, "root")
    assert other.post("/admin/otp/verify/", {"token": recovery}).status_code == 302
    assert other.get("/admin/").status_code == 200
    third = english_client()
    log_in(third, "root")
    assert third.post("/admin/otp/verify/", {"token": recovery}).status_code == 400


def test_staff_of_other_roles_may_skip_two_factor(client):
    make_user("mia", MARKETING)
    log_in(client, "mia")
    assert client.get("/admin/").status_code == 200


def test_otp_reset_removes_devices(client):
    user = make_user("ada", ADMINISTRATOR)
    TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    StaticDevice.objects.create(user=user, name="codes", confirmed=True)
    call_command("otp", "reset", "ada")
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert not StaticDevice.objects.filter(user=user).exists()
    log_in(client, "ada")
    assert client.get("/admin/")["Location"].startswith("/admin/otp/setup/")
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        call_command("otp", "reset", "nobody")


def test_lockout_is_per_user_name_and_address(client):
    make_user("mia", MARKETING)
    make_user("max", MARKETING)
    for _ in range(4):
        failed = log_in(english_client(), "mia", "wrong", ip="10.0.0.1")
        assert failed.status_code == 200  # the login form again, with its error
    assert log_in(english_client(), "mia", "wrong", ip="10.0.0.1").status_code == 429  # the 5th
    locked = log_in(english_client(), "mia", ip="10.0.0.1")  # now even the right password
    assert locked.status_code == 429
    text = locked.content.decode()
    assert "Too many failed logins for this account from your address" in text
    assert int(locked["Retry-After"]) == 15 * 60

    # The same user from elsewhere and another user from the same address still get in.
    assert log_in(english_client(), "mia", ip="10.0.0.2").status_code == 302
    assert log_in(english_client(), "max", ip="10.0.0.1").status_code == 302

    call_command("axes_reset", verbosity=0)
    assert log_in(english_client(), "mia", ip="10.0.0.1").status_code == 302


def test_session_idle_timeout_and_absolute_age(client):
    make_user("mia", MARKETING)
    log_in(client, "mia")
    assert client.get("/admin/").status_code == 200
    session = client.session
    assert session[STARTED_KEY] <= time.time()

    session[SEEN_KEY] = int(time.time()) - 31 * 60
    session.save()
    expired = client.get("/admin/")
    assert expired.status_code == 302 and expired["Location"].startswith("/admin/login/")

    log_in(client, "mia")
    client.get("/admin/")
    session = client.session
    session[STARTED_KEY] = int(time.time()) - 13 * 3600
    session.save()
    assert client.get("/admin/")["Location"].startswith("/admin/login/")

    # Activity slides the idle window forward.
    log_in(client, "mia")
    client.get("/admin/")
    session = client.session
    session[SEEN_KEY] = int(time.time()) - 20 * 60
    session.save()
    assert client.get("/admin/").status_code == 200
    assert client.session[SEEN_KEY] >= int(time.time()) - 5


def test_tampered_session_cookie_logs_out(client):
    make_user("mia", MARKETING)
    log_in(client, "mia")
    assert client.get("/admin/").status_code == 200
    original = client.cookies["sessionid"].value
    client.cookies["sessionid"] = original[:-4] + ("aaaa" if original[-4:] != "aaaa" else "bbbb")
    page = client.get("/admin/")
    assert page.status_code == 302 and page["Location"].startswith("/admin/login/")
    client.cookies["sessionid"] = "garbage<>\"'" * 30
    assert client.get("/admin/").status_code == 302
    assert client.get("/api/v1/customers").status_code == 401


def test_session_cookie_flags_and_hsts(client):
    make_user("mia", MARKETING)
    response = log_in(client, "mia")
    cookie = response.cookies["sessionid"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert int(cookie["max-age"]) == 30 * 60
    with override_settings(SESSION_COOKIE_SECURE=True, SECURE_HSTS_SECONDS=31536000):
        secure = log_in(english_client(), "mia", ip="10.0.0.9")
        assert secure.cookies["sessionid"]["secure"]
        page = english_client().get("/admin/login/", secure=True)
        assert page["Strict-Transport-Security"].startswith("max-age=31536000")


def test_wrong_and_expired_tokens_get_401(make_api_client):
    api = make_api_client("customers.view_customer")
    assert api.get("/api/v1/customers").status_code == 200
    _, expired = create_api_token(
        api.user.username, expires_at=timezone.now() - timedelta(days=1), by=system_actor("tests")
    )
    for token in (expired, "kq_wrong", "not-a-token", "x" * 500):
        response = english_client().get("/api/v1/customers", HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 401
        assert "authentication required" in response.json()["detail"]


def test_csrf_is_checked_on_session_api_writes_and_admin_forms():
    user = make_user("root", superuser=True)
    client = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    body = json.dumps({"name": "Csrf Test"})
    refused = client.post("/api/v1/customers", body, content_type="application/json")
    assert refused.status_code == 403
    refused = client.post("/admin/customers/tag/add/", {"name": "x"})
    assert refused.status_code == 403

    client.get("/admin/")  # sets the CSRF cookie
    csrf = client.cookies["csrftoken"].value
    accepted = client.post(
        "/api/v1/customers", body, content_type="application/json", HTTP_X_CSRFTOKEN=csrf
    )
    assert accepted.status_code == 201, accepted.content

    # Bearer-token clients send no cookies and need no CSRF token.
    _, token = create_api_token("root", by=system_actor("tests"))
    api = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")
    created = api.post(
        "/api/v1/customers",
        json.dumps({"name": "Token Test"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert created.status_code == 201


def test_content_security_policy_header(client):
    policy = client.get("/admin/login/")["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if d.strip())
    assert directives["default-src"] == "'self'"
    assert "'unsafe-inline'" not in directives["script-src"]
    assert directives["frame-ancestors"] == "'none'"
    assert "http" not in policy  # no third-party hosts


@override_settings(KEQUN_API_RATE="3/min", KEQUN_API_IP_RATE="5/min")
def test_api_rate_limits_per_token_and_address(make_api_client):
    start_in_a_fresh_minute()
    api = make_api_client("customers.view_customer")
    statuses = [api.get("/api/v1/customers").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = api.get("/api/v1/customers")
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert limited.json()["detail"].startswith("too many requests: at most 3 per 60 s")
    assert "\n" not in limited.json()["detail"]

    other = make_api_client("customers.view_customer")  # same address: 5 per minute in all
    assert other.get("/api/v1/customers").status_code == 429
    elsewhere = other.get("/api/v1/customers", REMOTE_ADDR="10.9.9.9")
    assert elsewhere.status_code == 200


@override_settings(KEQUN_LOGIN_RATE="2/min")
def test_login_rate_limit_per_address_and_user_name():
    start_in_a_fresh_minute()
    make_user("mia", MARKETING)
    assert log_in(english_client(), "mia", "bad", ip="10.1.1.1").status_code == 200
    assert log_in(english_client(), "nobody", "bad", ip="10.1.1.1").status_code == 200
    blocked = log_in(english_client(), "mia", ip="10.1.1.1")
    assert blocked.status_code == 429 and int(blocked["Retry-After"]) >= 1
    # Another address may still try, until the user name itself has had its share.
    assert log_in(english_client(), "mia", ip="10.1.1.2").status_code == 302
    assert log_in(english_client(), "mia", ip="10.1.1.3").status_code == 429


def test_default_cache_is_shared_by_workers(tmp_path, monkeypatch):
    """The shipped default is a file cache in the data dir: two workers share its counters."""
    import importlib

    import kequn.settings as shipped
    from kequn.security import ratelimit

    monkeypatch.delenv("KEQUN_REDIS_URL", raising=False)
    default = importlib.reload(shipped).CACHES["default"]
    assert default["BACKEND"] == "django.core.cache.backends.filebased.FileBasedCache"
    assert default["LOCATION"] == str(shipped.DATA_DIR / "cache")

    rate = ratelimit.parse_rate("2/min")
    workers = [FileBasedCache(str(tmp_path), {}), FileBasedCache(str(tmp_path), {})]
    waits = []
    for cache in (workers[0], workers[1], workers[0]):
        monkeypatch.setattr(ratelimit, "cache", cache)  # each process's default cache
        waits.append(ratelimit.hit("t", "k", rate, now=1_000_000.0))
    assert waits == [None, None, 20]  # the third hit, counted across workers, is over


def test_parse_rate_errors():
    from kequn.conf import ConfigError
    from kequn.security.ratelimit import parse_rate

    assert parse_rate("600/min").limit == 600 and parse_rate("600/min").seconds == 60
    assert parse_rate("10/5s").seconds == 5
    assert parse_rate("off") is None
    with pytest.raises(ConfigError, match="KEQUN_API_RATE='fast' is not a rate"):
        parse_rate("fast", "KEQUN_API_RATE")
