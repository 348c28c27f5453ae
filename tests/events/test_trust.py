"""Identify from a client key adds facts; only a server key may change or link a profile."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.utils import translation

from kequn.customers.models import Customer, Identity
from kequn.events.models import Event, Source
from kequn.events.services import collect_events, create_source
from kequn.ingest.models import MatchCandidate
from kequn.security.actors import system_actor
from kequn.security.audit.models import AuditEntry
from tests.factories import make_customer

pytestmark = pytest.mark.django_db


def post(client, path: str, data: dict, key: str, **extra):
    auth = base64.b64encode(f"{key}:".encode()).decode()
    return client.post(
        path,
        json.dumps(data),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Basic {auth}",
        **extra,
    )


@pytest.fixture
def victim(db) -> Customer:
    customer = make_customer("王芳", city="北京", email="wang.fang@example.cn", phone="13900001111")
    customer.birthday = dt.date(1985, 6, 1)
    customer.save()
    return Customer.objects.get(pk=customer.pk)


def owner_of(user_id: str) -> int:
    return Identity.objects.get(kind="external", system="segment", value=user_id).customer_id


def event_audit(customer_id: int) -> list[dict]:
    entries = AuditEntry.objects.filter(
        target_type="customers.customer", target_id=str(customer_id)
    )
    return [e.detail for e in entries.order_by("sequence") if e.detail.get("via") == "events"]


def test_client_identify_with_someone_elses_email_takes_nothing_over(client, victim):
    _source, key = create_source(name="web", by=system_actor("tests"))
    traits = {"email": "Wang.Fang@example.cn", "phone": "139 0000 1111", "name": "Mallory",
              "birthday": "1999-09-09", "city": "上海"}  # fmt: skip
    response = post(client, "/v1/identify", {"userId": "att-1", "traits": traits}, key)
    assert response.status_code == 200
    victim.refresh_from_db()
    assert (victim.name, victim.birthday, victim.city) == ("王芳", dt.date(1985, 6, 1), "北京")
    attacker = owner_of("att-1")
    assert attacker != victim.pk
    # The claimed email and phone stay with their owner; the caller's profile does not get them.
    assert set(Identity.objects.filter(customer_id=attacker).values_list("kind", flat=True)) == {
        "external"
    }
    # Later events of the caller land on the caller's own profile.
    post(client, "/v1/track", {"userId": "att-1", "event": "Order Viewed"}, key)
    assert Event.objects.get(name="Order Viewed").customer_id == attacker
    # A person may still merge the two if the claim was true.
    pair = MatchCandidate.objects.get()
    assert {pair.left_id, pair.right_id} == {attacker, victim.pk}
    assert pair.status == MatchCandidate.Status.PENDING
    # The claim is kept on the identify event as an unverified trait, encrypted.
    identify = Event.objects.get(type="identify")
    assert identify.properties["unverified"] == {"email": "[email]", "phone": "[phone]"}
    shown = identify.get_shown_properties(frozenset({"email", "phone"}))
    assert shown["unverified"] == {"email": "wang.fang@example.cn", "phone": "+8613900001111"}
    (detail,) = event_audit(attacker)
    assert detail["held_claims"] == ["email", "phone"] and detail["key_type"] == "client"
    assert event_audit(victim.pk) == []


def test_client_identify_only_fills_empty_fields(client, db):
    _source, key = create_source(name="app", by=system_actor("tests"))
    post(client, "/v1/identify", {"userId": "u-1", "traits": {"name": "Ada"}}, key)
    customer_id = owner_of("u-1")
    post(
        client,
        "/v1/identify",
        {"userId": "u-1", "anonymousId": "dev-1",
         "traits": {"name": "Eve", "gender": "female", "email": "ada@example.cn"}},
        key,
    )  # fmt: skip
    customer = Customer.objects.get(pk=customer_id)
    assert (customer.name, customer.gender) == ("Ada", "f")
    assert Identity.objects.get(kind="email", customer=customer).verified is False
    created, changed = event_audit(customer_id)
    assert created["fields"] == ["name"] and created["identities"] == ["external"]
    assert changed == {
        "via": "events", "customer": customer_id, "source": "app",
        "source_id": Source.objects.get(name="app").pk, "key_type": "client",
        "fields": ["gender"], "identities": ["email"], "anonymous_ids": 1, "held_claims": [],
    }  # fmt: skip
    # Names of fields, never their values.
    entries = json.dumps([e.detail for e in AuditEntry.objects.all()], ensure_ascii=False)
    assert "ada@example.cn" not in entries and "Eve" not in entries


def test_server_key_links_by_email_under_the_survivorship_rules(client, victim, monkeypatch):
    Customer.objects.filter(pk=victim.pk).update(
        source_channel="crm", field_sources={"name": "crm", "city": "crm", "birthday": "crm"}
    )
    _source, key = create_source(
        name="crm-sync", key_type=Source.KeyType.SERVER, by=system_actor("tests")
    )
    assert key.startswith("wks_")
    traits = {"email": "wang.fang@example.cn", "name": "王芳", "city": "上海", "gender": "女"}
    assert (
        post(client, "/v1/identify", {"userId": "crm-9", "traits": traits}, key).status_code == 200
    )
    assert owner_of("crm-9") == victim.pk
    victim.refresh_from_db()
    # An unlisted source ranks with the files: it fills gaps but keeps the CRM's city.
    assert (victim.city, victim.gender) == ("北京", "f")
    assert victim.field_sources["gender"] == "events:crm-sync"
    (detail,) = event_audit(victim.pk)
    assert detail["key_type"] == "server" and detail["fields"] == ["gender"]
    assert detail["identities"] == ["external"]
    # Trusted more than the CRM, it corrects the city.
    monkeypatch.setenv("KEQUN_SOURCE_TRUST", "backoffice,events:crm-sync,*,events")
    post(client, "/v1/identify", {"userId": "crm-9", "traits": {"city": "上海"}}, key)
    victim.refresh_from_db()
    assert victim.city != "北京" and "city" in event_audit(victim.pk)[-1]["fields"]
    assert not MatchCandidate.objects.exists()


def test_server_key_does_not_link_a_contradicted_claim(client, victim):
    _source, key = create_source(
        name="erp", key_type=Source.KeyType.SERVER, by=system_actor("tests")
    )
    traits = {"email": "wang.fang@example.cn", "name": "李雷"}
    post(client, "/v1/identify", {"userId": "erp-1", "traits": traits}, key)
    other = owner_of("erp-1")
    assert other != victim.pk and Customer.objects.get(pk=victim.pk).name == "王芳"
    pair = MatchCandidate.objects.get()
    assert {pair.left_id, pair.right_id} == {other, victim.pk}


def test_server_key_corrects_what_a_client_key_claimed(client, db):
    _web, client_key = create_source(name="web", by=system_actor("tests"))
    _backend, server_key = create_source(
        name="backend", key_type=Source.KeyType.SERVER, by=system_actor("tests")
    )
    post(client, "/v1/identify", {"userId": "u-7", "traits": {"name": "Eve"}}, client_key)
    post(client, "/v1/identify", {"userId": "u-7", "traits": {"name": "Eva"}}, server_key)
    customer = Customer.objects.get(pk=owner_of("u-7"))
    assert customer.name == "Eva" and customer.field_sources == {"name": "events:backend"}


def test_server_key_is_refused_from_a_browser(client, db):
    _source, key = create_source(
        name="backend", key_type=Source.KeyType.SERVER, by=system_actor("tests")
    )
    message = {"anonymousId": "a", "event": "Viewed"}
    response = post(client, "/v1/track", message, key, HTTP_ORIGIN="https://shop.example.cn")
    assert response.status_code == 403 and "client key" in response.json()["message"]
    assert post(client, "/v1/track", message, key).status_code == 200


def test_profile_change_and_its_audit_entry_commit_together(victim, monkeypatch):
    source, _key = create_source(name="web", by=system_actor("tests"))
    before = AuditEntry.objects.count()

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Event.objects, "bulk_create", fail)
    with pytest.raises(RuntimeError):
        collect_events(
            source=source,
            messages=[{"type": "identify", "userId": "u-5", "traits": {"name": "Zoe"}}],
        )
    assert not Identity.objects.filter(value="u-5").exists()
    assert AuditEntry.objects.count() == before


def test_source_command_makes_server_keys(capsys, db):
    call_command("source", "create", "erp", "--server")
    key = capsys.readouterr().out.strip()
    assert key.startswith("wks_") and Source.objects.get(name="erp").key_type == "server"
    call_command("source", "list")
    assert "erp\twks_" in capsys.readouterr().out
    with translation.override("en"):
        with pytest.raises(CommandError, match="exists already"):
            call_command("source", "create", "erp")
        with pytest.raises(CommandError, match="control characters"):
            call_command("source", "create", "bad\x07name")


def test_admin_marks_server_keys(client, db):
    create_source(name="site", by=system_actor("tests"))
    create_source(name="warehouse", key_type=Source.KeyType.SERVER, by=system_actor("tests"))
    client.force_login(User.objects.create_superuser("root", password="x"))
    page = client.get("/admin/events/source/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    rows = {name: page[page.index(f">{name}<") :][:3000] for name in ("site", "warehouse")}
    assert "client (browser or app)" in rows["site"]
    assert "client (browser" not in rows["warehouse"] and "server" in rows["warehouse"]
    assert client.get("/admin/events/source/add/").status_code == 403
