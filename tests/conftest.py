"""Shared fixtures: users with chosen permissions and their API tokens, back-office clients."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.test import Client

from kequn.security.actors import system_actor
from kequn.security.services import create_api_token

# Tests that give the same answer whichever database the suite runs on: pure analytics and
# model choice over tables and files, the channel peers, text analysis. scripts/test.sh runs
# them in the SQLite run only (`-m "not pure"` on PostgreSQL). A test here that touches the
# Django database is an error, so the marker cannot hide a database test.
PURE = (
    "tests/analytics/",
    "tests/recommend/test_choice_validation.py",
    "tests/feedback/test_text.py",
    "tests/ingest/test_cleaning.py",
    "tests/engage/test_mailmerge.py",
    "tests/engage/test_channels_sms.py",
    "tests/engage/test_channels_webhook.py",
    "tests/engage/test_channels_wechat.py",
    "tests/cli/test_serve.py",  # its servers run on their own SQLite data directories
)
DATABASE_FIXTURES = {"db", "transactional_db", "live_server", "django_db_setup", "admin_user"}


def pytest_collection_modifyitems(config, items):
    """Mark the database-independent tests ``pure`` (and refuse one that uses the database).

    Tests marked ``sqlite_only`` use the database, but what they check does not depend on
    which one (each such test says why); the PostgreSQL run leaves them out (deselected,
    not skipped), as it leaves out the pure tests.
    """
    from django.db import connection  # the backend chosen by settings; no connection opened

    root = config.rootpath
    for item in items:
        where = item.path.relative_to(root).as_posix()
        if not where.startswith(PURE):
            continue
        if item.get_closest_marker("django_db") or DATABASE_FIXTURES & set(item.fixturenames):
            raise pytest.UsageError(f"{item.nodeid} uses the database: take it out of PURE")
        item.add_marker(pytest.mark.pure)
    if connection.vendor != "sqlite":
        elsewhere = [item for item in items if item.get_closest_marker("sqlite_only")]
        if elsewhere:
            config.hook.pytest_deselected(items=elsewhere)
            items[:] = [item for item in items if not item.get_closest_marker("sqlite_only")]


def grant(user: User, *perms: str) -> User:
    """Give a user permissions named app_label.codename."""
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return User.objects.get(pk=user.pk)  # drop the permission cache


def client_for(user: User) -> Client:
    """Return a back-office client signed in as the user, showing pages in English."""
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    client.cookies["django_language"] = "en"
    return client


def role_client(role: str) -> Client:
    """Return an English back-office client of a new staff user in the role's group."""
    user = User.objects.create_user(f"{role}-user", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return client_for(user)


def kpi(html: str, name: str) -> str:
    """Return the text of a page's figure marked data-kpi="name" (fail if it is missing)."""
    found = re.search(rf'data-kpi="{name}">([^<]*)<', html)
    assert found, f"no {name} on the page"
    return found.group(1).strip()


class TokenClient(Client):
    """A test client that sends a bearer token and JSON bodies."""

    def __init__(self, token: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.token = token

    def request(self, **request):
        if self.token:
            request.setdefault("HTTP_AUTHORIZATION", f"Bearer {self.token}")
        return super().request(**request)

    def send_json(self, method: str, path: str, data=None):
        return getattr(self, method)(path, data=data, content_type="application/json")


@pytest.fixture
def make_api_client(db):
    """Return a factory: make_api_client(*perms, superuser=False) -> TokenClient."""
    counter = iter(range(1, 10_000))

    def factory(*perms: str, superuser: bool = False) -> TokenClient:
        n = next(counter)
        if superuser:
            user = User.objects.create_superuser(f"admin{n}", password="x")
        else:
            user = grant(User.objects.create_user(f"user{n}", password="x"), *perms)
        _, token = create_api_token(user.username, by=system_actor("tests"))
        client = TokenClient(token)
        client.user = user
        return client

    return factory


def _force_login_with_second_factor(self, user, backend=None):
    """Client.force_login that also passes the second factor administrators must use.

    force_login already skips the password; tests of the real two-step login post the
    login and code forms instead (tests/security/test_auth.py).
    """
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from kequn.security.otp import is_two_factor_required

    _plain_force_login(self, user, backend)
    if is_two_factor_required(user):
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
        device = device or TOTPDevice.objects.create(user=user, name="test", confirmed=True)
        session = self.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()


_plain_force_login = Client.force_login
Client.force_login = _force_login_with_second_factor


@pytest.fixture(autouse=True, scope="session")
def private_cache():
    """Give this test run its own cache in memory.

    The default file cache in the data directory is shared by every process using that
    directory: concurrent runs would read each other's entries and rate-limit counters.
    """
    from django.test import override_settings

    locmem = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "tests"}
    with override_settings(CACHES={"default": locmem}):
        yield


@pytest.fixture(autouse=True)
def audit_head_file(tmp_path, monkeypatch):
    """Give every test its own pinned audit head (a verify pins the head it checked)."""
    path = tmp_path / "audit-head"
    monkeypatch.setenv("KEQUN_AUDIT_HEAD_FILE", str(path))
    return path


@pytest.fixture(autouse=True)
def erasure_journal(tmp_path, monkeypatch):
    """Give every test its own erasure journal (a restore replays the whole journal)."""
    path = tmp_path / "erasures.jsonl"
    monkeypatch.setenv("KEQUN_ERASURE_JOURNAL", str(path))
    return path


@pytest.fixture(autouse=True)
def clear_cache():
    """Start every test with an empty cache (lists cache their filter choices)."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(autouse=True, scope="session")
def allow_audit_purge():
    """Let Django's flush empty the append-only audit table between transactional tests."""
    from kequn.security.audit import guard

    guard.allow_purge(True)
    yield
    guard.allow_purge(False)
