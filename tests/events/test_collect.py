"""The Segment-compatible collection API, through the test client and the real Segment library."""

import base64
import json

import pytest
import segment.analytics as analytics
from django.core.management import call_command

from kequn.customers.models import Identity
from kequn.events.models import AnonymousLink, Event, Source
from kequn.events.services import create_source
from kequn.ingest.cleaning import clean_city
from kequn.security.actors import system_actor


@pytest.fixture
def source_key(db):
    _source, key = create_source(name="web", by=system_actor("tests"))
    return key


def post(client, path, data, key, **extra):
    auth = base64.b64encode(f"{key}:".encode()).decode()
    body = data if isinstance(data, bytes) else json.dumps(data)
    return client.post(
        path, body, content_type="application/json", HTTP_AUTHORIZATION=f"Basic {auth}", **extra
    )


def test_key_is_stored_hashed_and_checked(client, source_key):
    assert source_key not in json.dumps(list(Source.objects.values()), default=str)
    ok = post(
        client, "/v1/track", {"anonymousId": "a1", "event": "Viewed", "messageId": "m1"}, source_key
    )
    assert ok.status_code == 200 and ok.json() == {"success": True}
    bad = post(client, "/v1/track", {"anonymousId": "a1", "event": "Viewed"}, "wk_wrong")
    assert bad.status_code == 401
    assert Event.objects.count() == 1


def test_duplicate_message_ids_dropped(client, source_key):
    batch = {
        "batch": [{"type": "track", "anonymousId": "a", "event": "E", "messageId": "same"}] * 3
    }
    assert post(client, "/v1/batch", batch, source_key).status_code == 200
    assert post(client, "/v1/batch", batch, source_key).status_code == 200
    assert Event.objects.filter(message_id="same").count() == 1


def test_size_limits(client, source_key):
    big = {"anonymousId": "a", "event": "Big", "properties": {"x": "y" * 33_000}}
    response = post(client, "/v1/track", big, source_key)
    assert response.status_code == 400 and "32 KB" in response.json()["message"]
    batch = {
        "batch": [
            {"type": "track", "anonymousId": "a", "event": "E", "properties": {"x": "y" * 20_000}}
        ]
        * 30
    }
    response = post(client, "/v1/batch", batch, source_key)
    assert response.status_code == 400 and "500 KB" in response.json()["message"]
    assert post(client, "/v1/track", b"{not json", source_key).status_code == 400
    assert post(client, "/v1/track", {"event": "no ids"}, source_key).status_code == 400
    assert Event.objects.count() == 0


def test_identify_stitches_anonymous_events(client, source_key):
    for i in range(3):
        post(
            client,
            "/v1/page",
            {"anonymousId": "anon-1", "name": f"P{i}", "messageId": f"p{i}"},
            source_key,
        )
    assert Event.objects.filter(customer__isnull=True).count() == 3
    post(
        client, "/v1/identify",
        {"userId": "u-42", "anonymousId": "anon-1", "traits": {"email": "Ada@X.cn", "name": "Ada", "city": "上海"}},
        source_key,
    )  # fmt: skip
    customer = Identity.objects.get(kind="external", system="segment", value="u-42").customer
    assert (customer.name, customer.city) == ("Ada", clean_city("上海"))
    assert Identity.objects.get(kind="email").value == "ada@x.cn"
    assert Event.objects.filter(customer=customer).count() == 4
    post(client, "/v1/track", {"anonymousId": "anon-1", "event": "Later"}, source_key)
    assert Event.objects.get(name="Later").customer_id == customer.pk
    post(client, "/v1/alias", {"userId": "u-42", "previousId": "old-device"}, source_key)
    assert AnonymousLink.objects.get(anonymous_id="old-device").customer_id == customer.pk


def test_source_command_prints_key_once(db, capsys):
    call_command("source", "create", "app")
    key = capsys.readouterr().out.strip()
    assert key.startswith("wk_") and Source.objects.get(name="app").key_prefix == key[:8]


@pytest.mark.django_db(transaction=True)
def test_real_segment_client_against_live_server(live_server):
    _source, key = create_source(name="python", by=system_actor("tests"))
    client = analytics.Client(write_key=key, host=live_server.url, sync_mode=True, max_retries=0)
    errors = []
    client.on_error = lambda error, items: errors.append(error)
    client.track(anonymous_id="dev-1", event="Product Viewed", properties={"sku": "A1"})
    client.identify(
        user_id="u-7", anonymous_id="dev-1", traits={"email": "seg@x.cn", "phone": "138 0013 8000"}
    )
    client.page(user_id="u-7", name="Home")
    client.screen(user_id="u-7", name="Cart")
    client.group(user_id="u-7", group_id="acme", traits={"name": "Acme"})
    client.alias(previous_id="dev-2", user_id="u-7")
    client.flush()
    assert errors == []
    customer = Identity.objects.get(kind="phone", value="+8613800138000").customer
    types = sorted(Event.objects.filter(customer=customer).values_list("type", flat=True))
    assert types == ["alias", "group", "identify", "page", "screen", "track"]
    assert Event.objects.get(type="track").properties == {"sku": "A1"}
