"""Personal data inside event properties: classified by key and value, encrypted, masked by role."""

from __future__ import annotations

import base64
import json

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection

from kequn.events.models import Event
from kequn.events.personal import classify_key, is_id_number, split_personal
from kequn.events.services import create_source
from kequn.security.actors import system_actor
from kequn.security.audit.models import AuditEntry
from kequn.security.roles import ADMINISTRATOR, ANALYST, MARKETING
from kequn.security.services import create_api_token
from tests.conftest import TokenClient

ID_NUMBER = "11010519491231002X"  # a valid check digit
PROPERTIES = {
    "sku": "SKU-1",
    "price": 19.9,
    "isMobile": True,
    "sentAt": 1732000000000,
    "Email": "A.Li@Example.cn",
    "contact": {"E-Mail": "li.na@example.cn", "Mobile_Phone": "138 0013 8000"},
    "phone_number": 13900139000,
    "note": "call +86 137-0013-7000 or write to zhou@example.cn",
    "buyers": [{"profile": {"deep": {"mail": "x@example.org"}}}],
    "idCard": "1101",
    "ref": f"身份证 {ID_NUMBER}",
    "order": "20261203123456789",
}
CLEAR = ["A.Li@Example.cn", "li.na@example.cn", "138 0013 8000", "13900139000", "0013-7000",
         "zhou@example.cn", "x@example.org", ID_NUMBER, "1101"]  # fmt: skip


def test_keys_are_classified_whatever_their_case_and_separators():
    assert {classify_key(k) for k in ("Email", "E-Mail", "user_email", "EMAIL_ADDRESS")} == {
        "email"
    }
    assert {
        classify_key(k) for k in ("phone_number", "mobile", "MobilePhone", "tel", "手机号")
    } == {"phone"}
    assert classify_key("id_card_number") == classify_key("身份证号") == "id_number"
    assert classify_key("shipping_address") == "address"
    assert {classify_key(k) for k in ("hotel", "sku", "isMobile", "email_opt_in")} <= {
        None,
        "phone",
    }


def test_id_numbers_need_a_valid_check_digit():
    assert is_id_number(ID_NUMBER) and is_id_number(ID_NUMBER.lower())
    assert not is_id_number("110105194912310021")  # wrong check digit
    assert not is_id_number("110105194913310028")  # month 13


def test_split_keeps_analytics_and_takes_out_contact_data():
    cleaned, found = split_personal(PROPERTIES)
    assert {k: cleaned[k] for k in ("sku", "price", "isMobile", "sentAt", "order")} == {
        "sku": "SKU-1", "price": 19.9, "isMobile": True, "sentAt": 1732000000000,
        "order": "20261203123456789",
    }  # fmt: skip
    assert cleaned["contact"] == {"E-Mail": "[email]", "Mobile_Phone": "[phone]"}
    assert cleaned["buyers"][0]["profile"]["deep"]["mail"] == "[email]"
    assert cleaned["idCard"] == "[id number]" and cleaned["ref"] == "身份证 [id number]"
    assert not any(text in json.dumps(cleaned, ensure_ascii=False) for text in CLEAR)
    taken = json.dumps(found, ensure_ascii=False)
    assert ID_NUMBER not in taken and "1101" not in taken  # id numbers are dropped, not kept
    assert split_personal(cleaned) == (cleaned, [])  # splitting again changes nothing
    # Numbers too: an id number sent as a JSON number, a phone under any key.
    assert split_personal({"n": 110105199003071239, "m": 8613800138000, "q": 3}) == (
        {"n": "[id number]", "m": "[phone]", "q": 3},
        [[["m"], ["phone"], 8613800138000]],
    )


@pytest.fixture
def stored(db) -> Event:
    from kequn.customers.models import Customer

    _source, key = create_source(name="web", by=system_actor("tests"))
    auth = base64.b64encode(f"{key}:".encode()).decode()
    customer = Customer.objects.create(name="Li")
    message = {"anonymousId": "d-1", "event": "Checkout", "properties": PROPERTIES}
    from django.test import Client

    response = Client().post(
        "/v1/track", json.dumps(message), content_type="application/json",
        HTTP_AUTHORIZATION=f"Basic {auth}",
    )  # fmt: skip
    assert response.status_code == 200
    event = Event.objects.get()
    Event.objects.filter(pk=event.pk).update(customer=customer)
    return Event.objects.get(pk=event.pk)


def test_stored_rows_hold_no_clear_values(stored):
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM events_event")
        row = json.dumps(cursor.fetchall(), default=str, ensure_ascii=False)
    assert not [text for text in CLEAR if text in row]
    assert "kq1:" in row  # the encrypted column


def role_client(role: str) -> TokenClient:
    user = User.objects.create_user(f"{role}-1", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    _token, token = create_api_token(user.username, by=system_actor("tests"))
    client = TokenClient(token)
    client.user = User.objects.get(pk=user.pk)
    return client


@pytest.mark.parametrize("role", [MARKETING, ANALYST])
def test_api_masks_personal_properties_for_roles_without_the_permission(stored, role):
    response = role_client(role).get(f"/api/v1/events/{stored.pk}")
    assert response.status_code == 200
    shown = response.json()["properties"]
    assert not [text for text in CLEAR if text in json.dumps(shown, ensure_ascii=False)]
    assert shown["contact"] == {"E-Mail": "l***@example.cn", "Mobile_Phone": "138****8000"}
    assert shown["phone_number"] == "139****9000"
    assert shown["note"] == "call 137****7000 or write to z***@example.cn"
    assert shown["sku"] == "SKU-1"


def test_api_shows_them_to_the_administrator(stored):
    response = role_client(ADMINISTRATOR).get("/api/v1/events")
    (shown,) = [item["properties"] for item in response.json()["items"]]
    assert shown["Email"] == "A.Li@Example.cn" and shown["phone_number"] == 13900139000
    assert shown["buyers"][0]["profile"]["deep"]["mail"] == "x@example.org"
    assert shown["idCard"] == "[id number]"  # dropped for everyone
    (view,) = AuditEntry.objects.filter(action="view_personal")
    assert view.target_id == str(stored.customer_id) and view.detail["via"] == "api:events"
    role_client(MARKETING).get("/api/v1/events")  # all masked: nothing to record
    assert AuditEntry.objects.filter(action="view_personal").count() == 1


def test_back_office_masks_them_by_role(stored, client):
    user = User.objects.create_user("mk", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=MARKETING))
    client.force_login(user)
    page = client.get(f"/admin/events/event/{stored.pk}/change/").content.decode()
    assert "l***@example.cn" in page and "138****8000" in page
    assert not [text for text in CLEAR if text in page]
    assert not AuditEntry.objects.filter(action="view_personal").exists()
    client.force_login(User.objects.create_superuser("root", password="x"))
    page = client.get(f"/admin/events/event/{stored.pk}/change/").content.decode()
    assert "li.na@example.cn" in page and "138 0013 8000" in page
    (view,) = AuditEntry.objects.filter(action="view_personal")
    assert view.detail["via"] == "admin:event"


def test_imported_event_files_are_protected_too(tmp_path, db):
    from kequn.ingest.runs import import_file

    path = tmp_path / "events.csv"
    path.write_text(
        "event,occurred_at,anonymous_id,Contact_Mobile,remark,sku\n"
        "Order Completed,2026-11-20 10:00,dev-9,13800138000,write to li.na@example.cn,SKU-7\n",
        encoding="utf-8",
    )
    import_file(path, "events", by=system_actor("tests"))
    event = Event.objects.get(name="Order Completed")
    assert event.properties["sku"] == "SKU-7"
    assert (event.properties["Contact_Mobile"], event.properties["remark"]) == (
        "[phone]",
        "[email]",
    )
    shown = event.get_shown_properties(frozenset({"phone", "email"}))
    assert (shown["Contact_Mobile"], shown["remark"]) == (
        "13800138000",
        "write to li.na@example.cn",
    )


def test_migration_protects_events_stored_before(db):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("kequn.events.migrations.0005_protect_personal_properties")
    old = Event.objects.create(name="Old", anonymous_id="a", properties={"sku": "S"})
    plain = Event.objects.create(name="Plain", anonymous_id="b", properties={"sku": "T"})
    # As stored before the rule: in clear (an update does not run the field's pre_save).
    Event.objects.filter(pk=old.pk).update(
        properties={"sku": "S", "buyer": {"Email": "old@example.cn"}, "id": ID_NUMBER}
    )
    migration.protect_properties(apps, type("Editor", (), {"connection": connection})())
    old.refresh_from_db()
    assert old.properties == {"sku": "S", "buyer": {"Email": "[email]"}, "id": "[id number]"}
    assert old.personal_properties == [[["buyer", "Email"], ["email"], "old@example.cn"]]
    plain.refresh_from_db()
    assert plain.properties == {"sku": "T"} and plain.personal_properties is None
