"""Write keys: a revoke takes effect at once on every worker; unstorable numbers are refused."""

from __future__ import annotations

import base64
import json

import pytest
from django.core.cache import cache
from django.core.management import call_command

from kequn.events import collect
from kequn.events.models import Event, Source
from kequn.events.services import (
    SOURCES_GENERATION_KEY,
    create_source,
    hash_write_key,
    revoke_source,
)
from kequn.security.actors import system_actor
from kequn.security.audit.models import AuditEntry

pytestmark = pytest.mark.django_db


def post(client, path: str, body: dict | bytes, key: str):
    auth = base64.b64encode(f"{key}:".encode()).decode()
    data = body if isinstance(body, bytes) else json.dumps(body)
    return client.post(
        path, data, content_type="application/json", HTTP_AUTHORIZATION=f"Basic {auth}"
    )


def track(client, key: str, n: int):
    return post(client, "/v1/track", {"anonymousId": "a", "event": f"E{n}"}, key)


def test_revoke_is_refused_on_the_next_request(client):
    _source, key = create_source(name="web", by=system_actor("tests"))
    assert track(client, key, 1).status_code == 200  # the key is now in the worker's memory
    call_command("source", "revoke", "web")
    response = track(client, key, 2)
    assert response.status_code == 401
    assert list(Event.objects.values_list("name", flat=True)) == ["E1"]
    assert AuditEntry.objects.filter(action="token_revoke").count() == 1


def test_revoke_on_another_worker_reaches_this_one(client):
    """Another worker shares only the cache and the database: its revoke reaches this one."""
    source, key = create_source(name="app", by=system_actor("tests"))
    assert track(client, key, 1).status_code == 200
    # As another process would: change the row without this process's help, announce it.
    Source.objects.filter(pk=source.pk).update(is_active=False)
    assert track(client, key, 2).status_code == 200  # nothing announced: the copy is used
    cache.set(SOURCES_GENERATION_KEY, "changed-elsewhere", None)
    assert track(client, key, 3).status_code == 401


def test_copies_are_used_while_nothing_changes(client, django_assert_num_queries):
    _source, key = create_source(name="site", by=system_actor("tests"))
    track(client, key, 1)
    assert collect._KEY_CACHE[hash_write_key(key)][2].name == "site"
    with django_assert_num_queries(0):
        assert collect._find_source(key).name == "site"


def test_evicted_generation_never_revives_an_old_copy(client):
    source, key = create_source(name="shop", by=system_actor("tests"))
    track(client, key, 1)
    Source.objects.filter(pk=source.pk).update(is_active=False)
    cache.delete(SOURCES_GENERATION_KEY)  # evicted: a new token, not the old one, is set
    assert track(client, key, 2).status_code == 401


def test_revoke_service_audits_and_admin_action_revokes(client, admin_user):
    source, key = create_source(name="pos", by=system_actor("tests"))
    client.force_login(admin_user)
    response = client.post(
        "/admin/events/source/", {"action": "revoke", "_selected_action": [source.pk]}
    )
    assert response.status_code == 302
    assert Source.objects.get(pk=source.pk).is_active is False
    assert track(client, key, 1).status_code == 401
    entry = AuditEntry.objects.get(action="token_revoke")
    assert entry.actor_id == admin_user.pk and entry.detail["source"] == "pos"
    revoke_source(
        source=Source.objects.get(pk=source.pk), by=system_actor("tests")
    )  # again: harmless


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (b'{"anonymousId": "a", "event": "E", "properties": {"price": NaN}}', "NaN"),
        (b'{"anonymousId": "a", "event": "E", "properties": {"x": [1, Infinity]}}', "Infinity"),
        (b'{"anonymousId": "a", "event": "E", "properties": {"x": -Infinity}}', "-Infinity"),
        (b'{"anonymousId": "a", "event": "E", "properties": {"big": 1e400}}', "1e400"),
    ],
)
def test_non_finite_numbers_are_refused_not_dropped(client, raw, named):
    _source, key = create_source(name="web", by=system_actor("tests"))
    response = post(client, "/v1/track", raw, key)
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False and named in body["message"]
    assert not Event.objects.exists()
    batch = b'{"batch": [{"type": "track", "anonymousId": "a", "event": "ok"}, ' + raw[:-1]
    response = post(client, "/v1/batch", batch + b', "type": "track"}]}', key)
    assert response.status_code == 400 and not Event.objects.exists()


@pytest.fixture
def admin_user(db):
    from django.contrib.auth.models import User

    return User.objects.create_superuser("boss", password="x")
