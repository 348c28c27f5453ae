"""Data-subject rights: export, correction, erasure with suppression, consent withdrawal, restriction."""

from __future__ import annotations

import base64
import csv
import io
import json
import zipfile
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from kequn.commerce.models import Order
from kequn.customers.models import Address, Consent, Customer, Identity
from kequn.customers.services import (
    IdentityInput,
    add_identity,
    record_consent,
    tag_customers,
    update_customer,
)
from kequn.events.models import AnonymousLink, Event
from kequn.events.services import create_source
from kequn.ingest.merging import merge_customers
from kequn.ingest.models import Merge, QuarantinedRow
from kequn.ingest.runs import import_file
from kequn.privacy import services
from kequn.privacy.models import PrivacyRequest, Suppression
from kequn.privacy.services import export
from kequn.recommend.models import Recommendation
from kequn.scoring.models import CustomerScore
from kequn.security.actors import system_actor
from kequn.security.audit.models import AuditEntry
from kequn.segments.export import iter_member_rows, stream_csv
from kequn.segments.models import SegmentMember
from kequn.segments.services import create_segment, evaluate_segment
from tests.factories import make_customer, make_event, make_order

TEST_ACTOR = system_actor("test")
pytestmark = pytest.mark.django_db

EMAIL = "zhang.wei@example.com"
PHONE = "13800138000"
OTHER_EMAIL = "li.na@example.org"
ACTOR = system_actor("privacy-test")
SHANGHAI = {"match": "all", "conditions": [{"field": "city", "operator": "eq", "value": "上海"}]}


@pytest.fixture(autouse=True)
def in_english():
    """Messages are asserted in English; the default language is Chinese."""
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("dpo", password="x")


@pytest.fixture
def person():
    customer = make_customer("张伟", email=EMAIL, phone=PHONE)
    Address.objects.create(customer=customer, city="上海", line="南京西路 1 号", postcode="200040")
    record_consent(customer, "email", "marketing", True, source="signup", by=system_actor("tests"))
    make_order(customer, amount="1999.00", days_ago=40)
    make_order(customer, amount="59.00", days_ago=3)
    make_event(customer, "Product Viewed")
    return customer


@pytest.fixture
def other():
    customer = make_customer("李娜", email=OTHER_EMAIL, phone="13900139000")
    record_consent(customer, "email", "marketing", True, by=system_actor("tests"))
    make_order(customer, amount="4999.00", days_ago=10)
    make_event(customer, "Cart Viewed")
    return customer


def identity_values() -> set[str]:
    """Return every stored identity value (read back through the model, so decrypted)."""
    return set(Identity.objects.values_list("value", flat=True))


def verified(kind, customer, user, **kwargs):
    request = services.open_request(kind, customer, by=user, **kwargs)
    return services.verify_identity(request, "id_document", by=user)


# ---------------------------------------------------------------- requests and deadlines


def test_deadline_is_end_of_the_fifteenth_day_and_configurable(person):
    received = datetime(2026, 3, 1, 9, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    request = services.open_request("export", person, received_at=received, by=ACTOR)
    local = timezone.localtime(request.deadline, ZoneInfo("Asia/Shanghai"))
    assert (local.date(), local.hour, local.minute) == (date(2026, 3, 16), 23, 59)
    with override_settings(KEQUN_PRIVACY_DEADLINE_DAYS=30):
        gdpr = services.open_request("export", person, received_at=received, by=ACTOR)
    assert timezone.localtime(gdpr.deadline).date() == date(2026, 3, 31)


def test_overdue_requests_are_found_and_closed_ones_are_not(person):
    old = services.open_request(
        "export", person, received_at=timezone.now() - timedelta(days=20), by=ACTOR
    )
    fresh = services.open_request("export", person, by=ACTOR)
    closed = services.open_request(
        "erasure", person, received_at=timezone.now() - timedelta(days=40), by=ACTOR
    )
    services.reject_request(closed, "identity could not be confirmed", by=ACTOR)
    assert old.is_overdue and not fresh.is_overdue and not closed.is_overdue
    assert list(services.get_overdue_requests()) == [old]


def test_identity_must_be_verified_before_execution(person, admin_user):
    request = services.open_request("erasure", person, by=admin_user)
    with pytest.raises(ValidationError, match="verify the requester's identity"):
        services.execute_request(request, by=admin_user)
    assert Customer.objects.filter(pk=person.pk).exists()
    request.refresh_from_db()
    assert request.status == PrivacyRequest.Status.RECEIVED
    services.verify_identity(request, "sms_code", by=admin_user)
    request.refresh_from_db()
    assert request.status == PrivacyRequest.Status.VERIFIED
    assert request.identity_verified_by == admin_user
    services.execute_request(request, by=admin_user)
    assert not Customer.objects.filter(pk=person.pk).exists()


def test_bad_request_input_gets_one_line_errors(person):
    with pytest.raises(ValidationError, match="unknown request type 'forget'"):
        services.open_request("forget", person, by=ACTOR)
    with pytest.raises(ValidationError, match="cannot correct password"):
        services.open_request(
            "correction", person, parameters={"fields": {"password": "x"}}, by=ACTOR
        )
    with pytest.raises(ValidationError, match="unknown consent channel or purpose fax"):
        services.open_request(
            "withdraw_consent", person, parameters={"channels": ["fax"]}, by=ACTOR
        )
    request = services.open_request("export", person, by=ACTOR)
    with pytest.raises(ValidationError, match="unknown identity check"):
        services.verify_identity(request, "trust me", by=ACTOR)
    with pytest.raises(ValidationError, match="give the reason"):
        services.reject_request(request, "  ", by=ACTOR)


def test_request_steps_are_on_the_audit_trail_without_personal_values(person, admin_user):
    request = verified("export", person, admin_user)
    services.execute_request(request, by=admin_user)
    entries = AuditEntry.objects.filter(
        target_type="privacy.privacyrequest", target_id=str(request.pk)
    )
    actions = list(entries.order_by("sequence").values_list("action", flat=True))
    assert actions == ["data_subject_request", "data_subject_request", "export"]
    dumped = json.dumps(list(entries.values("detail")), ensure_ascii=False)
    assert EMAIL not in dumped and "张伟" not in dumped


# ---------------------------------------------------------------- export


def _read_zip(payload: bytes) -> tuple[dict, dict[str, list[dict]]]:
    archive = zipfile.ZipFile(io.BytesIO(payload))
    document = json.loads(archive.read("customer.json"))
    tables = {}
    for name in archive.namelist():
        if name.startswith("csv/"):
            text = archive.read(name).decode("utf-8-sig")
            tables[name[4:-4]] = list(csv.DictReader(io.StringIO(text)))
    return document, tables


def test_export_holds_everything_of_the_person_and_nothing_of_another(person, other):
    # A record merged into the person belongs to the export too.
    twin = make_customer("张伟 (旧)", wechat="wx-zhang")
    make_order(twin, amount="10.00", days_ago=100)
    merge_customers(person, twin, rule="test", by=TEST_ACTOR)
    payload = services.export_customer_data(person, by=ACTOR)
    document, tables = _read_zip(payload)
    expected_tables = {
        "profile", "identities", "addresses", "consents", "tags", "company_links", "orders",
        "order_lines", "events", "anonymous_ids", "scores", "stage_history",
        "segment_memberships", "segment_history", "recommendations", "merge_history",
        "privacy_requests",
        # The second half's apps declare theirs; an export lists every table, empty ones too.
        "campaign_audiences", "messages", "journeys", "journey_history", "tickets",
        "ticket_messages", "ticket_attachments", "inbound_emails", "loyalty_membership",
        "loyalty_ledger", "loyalty_tier_history", "loyalty_coupons", "loyalty_redemptions",
        "loyalty_referrals", "survey_invitations", "survey_responses", "survey_follow_ups",
        "survey_opt_outs", "sales_accounts", "sales_deals", "sales_activities", "sales_tasks",
        "sales_pool_history",
    }  # fmt: skip
    assert set(document["tables"]) == expected_tables == set(tables)
    own_orders = set(
        Order.objects.filter(customer_id__in=[person.pk, twin.pk]).values_list("number", flat=True)
    )
    assert {o["number"] for o in tables["orders"]} == own_orders
    assert len(own_orders) == 3
    assert {o["number"] for o in document["tables"]["orders"]} == own_orders
    assert len(tables["order_lines"]) == 3
    assert [e["name"] for e in tables["events"]] == ["Product Viewed"]
    assert {i["value"] for i in tables["identities"]} == {EMAIL, "+86" + PHONE, "wx-zhang"}
    assert tables["addresses"][0]["line"] == "南京西路 1 号"
    assert tables["consents"][0]["granted"] == "True"
    assert len(tables["merge_history"]) == 1
    raw = payload + b"".join(
        zipfile.ZipFile(io.BytesIO(payload)).read(n)
        for n in zipfile.ZipFile(io.BytesIO(payload)).namelist()
    )
    other_order = Order.objects.get(customer=other).number
    for secret in (OTHER_EMAIL, "13900139000", "李娜", other_order, "Cart Viewed"):
        assert secret.encode() not in raw


def test_export_request_writes_a_private_file_and_completes(
    person, admin_user, tmp_path, monkeypatch
):
    monkeypatch.setattr(export, "get_export_dir", lambda: tmp_path / "privacy-exports")
    request = verified("export", person, admin_user)
    services.execute_request(request, by=admin_user)
    request.refresh_from_db()
    assert request.status == PrivacyRequest.Status.DONE
    path = tmp_path / "privacy-exports" / request.result_file.rsplit("/", 1)[-1]
    assert path.exists() and oct(path.stat().st_mode & 0o777) == "0o600"
    _document, tables = _read_zip(path.read_bytes())
    assert len(tables["orders"]) == 2
    # Erasing the person later deletes the export file too.
    counts = services.erase_customer(person, by=ACTOR)
    assert counts["export_files"] == 1 and not path.exists()
    request.refresh_from_db()
    assert request.result_file == ""


# ---------------------------------------------------------------- correction


def test_correction_goes_through_customer_services_and_forgets_the_new_values(person, admin_user):
    request = verified(
        "correction", person, admin_user, parameters={"fields": {"name": "张伟伟", "city": "北京"}}
    )
    services.execute_request(request, by=admin_user)
    person.refresh_from_db()
    request.refresh_from_db()
    assert (person.name, person.city) == ("张伟伟", "北京")
    assert request.status == PrivacyRequest.Status.DONE
    assert request.parameters == {"fields": ["city", "name"]}
    assert "张伟伟" not in json.dumps(request.result, ensure_ascii=False)


# ---------------------------------------------------------------- erasure


def _customers_csv(tmp_path, rows: list[str]):
    path = tmp_path / "customers.csv"
    path.write_text("name,email,phone,city\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_erasure_removes_the_person_keeps_orders_anonymised_and_suppresses(
    person, other, admin_user, tmp_path
):
    twin = make_customer("张伟 (旧)", wechat="wx-zhang")
    merge_customers(person, twin, rule="test", by=TEST_ACTOR)
    source, key = create_source(name="web", by=system_actor("tests"))
    AnonymousLink.objects.create(anonymous_id="anon-zw", customer=person, source=source)
    Event.objects.create(name="Page Viewed", anonymous_id="anon-zw")
    CustomerScore.objects.create(customer=person, computed_at=timezone.now())
    order_numbers = set(Order.objects.filter(customer=person).values_list("number", flat=True))
    request = verified("erasure", person, admin_user)
    person_id = person.pk
    services.execute_request(request, by=admin_user)

    assert not Customer.objects.filter(pk__in=[person_id, twin.pk]).exists()
    assert not identity_values() & {EMAIL, "+86" + PHONE, "wx-zhang"}
    assert not Address.objects.filter(customer_id=person_id).exists()
    assert not Consent.objects.filter(customer_id=person_id).exists()
    assert not Event.objects.filter(name__in=["Product Viewed", "Page Viewed"]).exists()
    assert not Merge.objects.filter(target_id=person_id).exists()
    assert not CustomerScore.objects.filter(customer_id=person_id).exists()
    kept = Order.objects.filter(number__in=order_numbers)
    assert kept.count() == 2 and set(kept.values_list("customer", flat=True)) == {None}
    assert sum(kept.values_list("total_amount", flat=True)) == Decimal("2058.00")
    # The other customer is untouched.
    assert OTHER_EMAIL in identity_values()
    assert Order.objects.filter(customer=other).count() == 1

    request.refresh_from_db()
    assert request.status == PrivacyRequest.Status.DONE
    assert request.customer is None and request.subject_ref == person_id
    assert Suppression.objects.filter(request=request).count() == 3
    dumped = json.dumps(list(Suppression.objects.values()), default=str)
    for plain in (EMAIL, PHONE, "wx-zhang", "zhang"):
        assert plain not in dumped
    assert services.is_suppressed("email", " ZHANG.WEI@example.com ")
    assert services.is_suppressed("phone", "+86 138 0013 8000")
    assert not services.is_suppressed("email", OTHER_EMAIL)

    # A later import of the same person is quarantined with the reason; others go in.
    path = _customers_csv(
        tmp_path,
        ["张伟,ZHANG.WEI@EXAMPLE.COM,,上海", "王芳,,138 0013 8000,深圳", "赵六,z6@x.cn,,北京"],
    )
    summary = import_file(path, "customers", by=system_actor("tests"))
    assert (summary.inserted, summary.quarantined) == (1, 2)
    assert summary.reasons == {"suppressed": 2}
    rows = QuarantinedRow.objects.filter(reason="suppressed").order_by("row_number")
    assert [r.message for r in rows] == [f"erased on request #{request.pk}"] * 2
    assert [r.field for r in rows] == ["email", "phone"]
    assert EMAIL not in identity_values()
    assert "z6@x.cn" in identity_values()

    # An identify call does not create a profile or identity for them either.
    from django.test import Client

    auth = base64.b64encode(f"{key}:".encode()).decode()
    body = {
        "batch": [
            {"type": "identify", "userId": "u-1", "traits": {"email": EMAIL, "name": "张伟"}},
            {"type": "identify", "userId": "u-2", "traits": {"email": "new@x.cn"}},
        ]
    }
    response = Client().post(
        "/v1/batch", json.dumps(body), content_type="application/json",
        HTTP_AUTHORIZATION=f"Basic {auth}",
    )  # fmt: skip
    assert response.status_code == 200
    assert not identity_values() & {EMAIL, "u-1"}
    assert "new@x.cn" in identity_values()
    assert not Customer.objects.filter(name="张伟").exists()
    assert EMAIL not in json.dumps(list(Event.objects.values_list("properties", flat=True)))


def test_erased_user_id_is_suppressed_for_events(person, admin_user):
    add_identity(
        person, IdentityInput("external", "u-77", system="segment"), by=system_actor("tests")
    )
    services.erase_customer(person, by=ACTOR)
    from kequn.events.services import collect_events

    source, _key = create_source(name="app", by=system_actor("tests"))
    collect_events(source=source, messages=[{"type": "track", "userId": "u-77", "event": "Opened"}])
    assert "u-77" not in identity_values()
    assert not Event.objects.filter(name="Opened").exists()


def test_erasure_removes_quarantined_rows_naming_the_person(person, tmp_path):
    path = _customers_csv(tmp_path, ["张伟,zhang.wei@example.com,not-a-phone,上海"])
    import_file(path, "customers", by=system_actor("tests"))
    assert QuarantinedRow.objects.count() == 1
    counts = services.erase_customer(person, by=ACTOR)
    assert counts["quarantined_rows"] == 1
    assert not QuarantinedRow.objects.exists()


# ---------------------------------------------------------------- consent withdrawal


def test_consent_withdrawal_drops_the_customer_from_a_marketing_export_at_once(
    person, other, admin_user
):
    segment = create_segment("上海客户", SHANGHAI, by=system_actor("test"))
    evaluate_segment(segment, by=system_actor("test"))
    assert SegmentMember.objects.filter(segment=segment).count() == 2
    marketing = {r["id"] for r in iter_member_rows(segment, "marketing")}
    assert marketing == {person.pk, other.pk}
    request = verified("withdraw_consent", person, admin_user, parameters={"channels": ["email"]})
    services.execute_request(request, by=admin_user)
    # No refresh in between: the membership still lists them, the marketing export does not.
    assert SegmentMember.objects.filter(segment=segment, customer=person).exists()
    assert {r["id"] for r in iter_member_rows(segment, "marketing")} == {other.pk}
    assert {r["id"] for r in iter_member_rows(segment, "marketing", "email")} == {other.pk}
    text = "".join(stream_csv(admin_user, segment, "marketing"))
    assert OTHER_EMAIL in text and EMAIL not in text
    # A plain (non-marketing) export still lists them; the history keeps the grant.
    assert {r["id"] for r in iter_member_rows(segment)} == {person.pk, other.pk}
    assert list(
        Consent.objects.filter(customer=person, channel="email").order_by("recorded_at", "id")
        .values_list("granted", flat=True)
    ) == [True, False]  # fmt: skip
    # A later grant wins again.
    record_consent(
        person, "email", "marketing", True, source="re-subscribed", by=system_actor("tests")
    )
    assert {r["id"] for r in iter_member_rows(segment, "marketing")} == {person.pk, other.pk}


def test_marketing_export_over_the_api_honours_consent(person, other, make_api_client):
    record_consent(person, "sms", "marketing", True, by=system_actor("tests"))
    services.withdraw_consent(person, ["email"], by=ACTOR)
    segment = create_segment("all", SHANGHAI, by=system_actor("test"))
    evaluate_segment(segment, by=system_actor("test"))
    client = make_api_client(superuser=True)
    email_only = client.get(f"/api/v1/segments/{segment.pk}/export?purpose=marketing&channel=email")
    assert email_only.status_code == 200
    text = b"".join(email_only.streaming_content).decode("utf-8-sig")
    assert OTHER_EMAIL in text and EMAIL not in text
    any_channel = client.get(f"/api/v1/segments/{segment.pk}/export?purpose=marketing")
    text = b"".join(any_channel.streaming_content).decode("utf-8-sig")
    assert EMAIL in text  # SMS marketing consent is still in force


def test_the_marketing_role_can_only_export_members_who_consent(person, other, client):
    from django.contrib.auth.models import Group, User

    from kequn.security.roles import ANALYST, MARKETING

    services.withdraw_consent(person, ["email", "sms", "phone", "wechat"], by=ACTOR)
    segment = create_segment("all", SHANGHAI, by=system_actor("test"))
    evaluate_segment(segment, by=system_actor("test"))
    url = f"/admin/segments/segment/{segment.pk}/export/csv/"
    names = {}
    for role in (MARKETING, ANALYST):
        user = User.objects.create_user(f"{role}-user", password="x", is_staff=True)
        user.groups.add(Group.objects.get(name=role))
        client.force_login(user)
        # Marketing asks for a plain export; it gets the marketing one all the same.
        response = client.get(url)
        assert response.status_code == 200, (role, response.content[:300])
        rows = csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig")))
        names[role] = {row["id"] for row in rows}
    assert names[MARKETING] == {str(other.pk)}
    assert names[ANALYST] == {str(person.pk), str(other.pk)}
    entry = AuditEntry.objects.filter(action="export").order_by("sequence").first()
    assert entry.detail["purpose"] == "marketing" and entry.detail["rows"] == 1


# ---------------------------------------------------------------- restriction


def test_restricted_customer_is_not_scored_segmented_recommended_exported_or_changed(
    person, other, admin_user
):
    from kequn.recommend.selectors import get_recommendations_for_customer
    from kequn.recommend.services import train_recommendations
    from kequn.scoring.services import refresh_scores

    segment = create_segment("all buyers", SHANGHAI, by=system_actor("test"))
    evaluate_segment(segment, by=system_actor("test"))
    Recommendation.objects.create(
        customer=person, product=Order.objects.filter(customer=other).first().lines.first().product,
        rank=1, score=1.0, source="test",
    )  # fmt: skip
    request = verified("restrict", person, admin_user)
    services.execute_request(request, by=admin_user)
    person.refresh_from_db()
    assert person.processing_restricted
    # Dropped from audiences at once, and not brought back by a refresh.
    assert not SegmentMember.objects.filter(customer=person).exists()
    evaluate_segment(segment, by=system_actor("test"))
    assert set(
        SegmentMember.objects.filter(segment=segment).values_list("customer", flat=True)
    ) == {other.pk}
    refresh_scores(progress=False, by=admin_user)
    assert not CustomerScore.objects.filter(customer=person).exists()
    assert CustomerScore.objects.filter(customer=other).exists()
    train_recommendations(by=system_actor("test"))
    assert not Recommendation.objects.filter(customer=person).exists()
    assert get_recommendations_for_customer(person.pk) == []
    from kequn.segments.export import iter_customer_rows

    assert [r["id"] for r in iter_customer_rows(Customer.objects.all())] == [other.pk]
    # Changes through the customer services are refused with a clear error.
    with pytest.raises(ValidationError, match=r"restricted from processing.*lift the restriction"):
        update_customer(person, {"city": "北京"}, by=system_actor("tests"))
    with pytest.raises(ValidationError, match="restricted"):
        add_identity(person, IdentityInput("email", "second@example.com"), by=system_actor("tests"))
    with pytest.raises(ValidationError, match="restricted"):
        record_consent(person, "sms", "marketing", True, by=system_actor("tests"))
    record_consent(
        person, "sms", "marketing", False, by=system_actor("tests")
    )  # a withdrawal is always taken
    from kequn.customers.models import Tag

    assert (
        tag_customers([person, other], Tag.objects.create(name="VIP"), by=system_actor("tests"))
        == 1
    )
    # A correction waits for the restriction to be lifted; lifting allows changes again.
    correction = verified("correction", person, admin_user, parameters={"fields": {"city": "北京"}})
    with pytest.raises(ValidationError, match="restricted"):
        services.execute_request(correction, by=admin_user)
    services.execute_request(verified("lift_restriction", person, admin_user), by=admin_user)
    person.refresh_from_db()
    assert not person.processing_restricted
    update_customer(person, {"occupation": "工程师"}, by=system_actor("tests"))
    evaluate_segment(segment, by=system_actor("test"))
    assert SegmentMember.objects.filter(segment=segment, customer=person).exists()


def test_segment_sql_excludes_restricted_customers(person, other):
    from django.db import connection

    from kequn.segments.services import compile_member_sql

    services.restrict_processing(person, by=ACTOR)
    sql, params = compile_member_sql(SHANGHAI)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        assert {row[0] for row in cursor.fetchall()} == {other.pk}


# ---------------------------------------------------------------- CLI


def test_cli_export_and_erase(person, admin_user, tmp_path):
    out = tmp_path / "person.zip"
    call_command("privacy", "export", str(person.pk), "--out", str(out), stdout=io.StringIO())
    _document, tables = _read_zip(out.read_bytes())
    assert len(tables["orders"]) == 2
    with pytest.raises(CommandError, match="no data-subject request #999"):
        call_command("privacy", "erase", str(person.pk), "--request", "999")
    request = services.open_request("erasure", person, by=ACTOR)
    with pytest.raises(CommandError, match="verify the requester's identity"):
        call_command("privacy", "erase", str(person.pk), "--request", str(request.pk))
    services.verify_identity(request, "in_person", by=ACTOR)
    stdout = io.StringIO()
    call_command("privacy", "erase", str(person.pk), "--request", str(request.pk), stdout=stdout)
    assert "erased customer" in stdout.getvalue()
    assert not Customer.objects.filter(pk=person.pk).exists()
    with pytest.raises(CommandError, match=f"no customer #{person.pk}"):
        call_command("privacy", "export", str(person.pk), "--out", str(out))


# ---------------------------------------------------------------- API


def test_api_records_verifies_executes_and_downloads(
    person, other, make_api_client, tmp_path, monkeypatch
):
    monkeypatch.setattr(export, "get_export_dir", lambda: tmp_path / "privacy-exports")
    officer = make_api_client(
        "privacy.add_privacyrequest",
        "privacy.view_privacyrequest",
        "privacy.change_privacyrequest",
        "customers.view_all_customers",
    )
    created = officer.send_json(
        "post", "/api/v1/privacy-requests", {"type": "export", "customer_id": person.pk}
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["status"] == "received" and body["customer_id"] == person.pk
    assert not body["is_overdue"] and body["channel"] == "api"
    rid = body["id"]
    early = officer.post(f"/api/v1/privacy-requests/{rid}/execute", HTTP_ACCEPT_LANGUAGE="en")
    assert early.status_code == 422 and "verify the requester" in early.json()["detail"][0]
    verified_ = officer.send_json(
        "post", f"/api/v1/privacy-requests/{rid}/verify", {"method": "email_code"}
    )
    assert verified_.json()["status"] == "verified"
    done = officer.post(f"/api/v1/privacy-requests/{rid}/execute")
    assert done.status_code == 200 and done.json()["status"] == "done"
    assert done.json()["has_result_file"]
    download = officer.get(f"/api/v1/privacy-requests/{rid}/download")
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"
    _document, tables = _read_zip(b"".join(download.streaming_content))
    assert len(tables["orders"]) == 2
    listed = officer.get("/api/v1/privacy-requests?status=done").json()["items"]
    assert [r["id"] for r in listed] == [rid]
    assert officer.get("/api/v1/privacy-requests?overdue=true").json()["items"] == []
    # Bad input: one clear error each, nothing stored.
    count = PrivacyRequest.objects.count()
    for payload, status in [
        ({"type": "forget", "customer_id": person.pk}, 422),
        ({"type": "export", "customer_id": 10**9}, 404),
        ({"type": "correction", "customer_id": person.pk, "parameters": {"fields": {"x": 1}}}, 422),
        ({"type": "correction", "customer_id": person.pk, "parameters": {"x": "y" * 20_000}}, 422),
    ]:
        response = officer.send_json("post", "/api/v1/privacy-requests", payload)
        assert response.status_code == status, response.content
    assert PrivacyRequest.objects.count() == count


def test_api_needs_privacy_permissions(person, make_api_client):
    reader = make_api_client("privacy.view_privacyrequest", "customers.view_all_customers")
    nobody = make_api_client("customers.view_customer")
    own_only = make_api_client("privacy.view_privacyrequest", "privacy.add_privacyrequest")
    request = services.open_request("erasure", person, by=ACTOR)
    assert nobody.get("/api/v1/privacy-requests").status_code == 403
    assert nobody.get(f"/api/v1/privacy-requests/{request.pk}").status_code == 403
    assert reader.get(f"/api/v1/privacy-requests/{request.pk}").status_code == 200
    denied = reader.send_json(
        "post", "/api/v1/privacy-requests", {"type": "erasure", "customer_id": person.pk}
    )
    assert denied.status_code == 403
    assert (
        reader.send_json(
            "post", f"/api/v1/privacy-requests/{request.pk}/verify", {"method": "in_person"}
        ).status_code
        == 403
    )
    assert reader.post(f"/api/v1/privacy-requests/{request.pk}/execute").status_code == 403
    # A user limited to the accounts they own cannot see or file requests about others.
    assert own_only.get(f"/api/v1/privacy-requests/{request.pk}").status_code == 404
    assert own_only.get("/api/v1/privacy-requests").json()["items"] == []
    assert (
        own_only.send_json(
            "post", "/api/v1/privacy-requests", {"type": "export", "customer_id": person.pk}
        ).status_code
        == 404
    )
    person.owner = own_only.user
    person.save(update_fields=["owner"])
    assert own_only.get(f"/api/v1/privacy-requests/{request.pk}").status_code == 200
    assert Customer.objects.filter(pk=person.pk).exists()


# ---------------------------------------------------------------- back office


def test_admin_list_filters_overdue_and_shows_the_badge(person, admin_user, client):
    late = services.open_request(
        "export", person, received_at=timezone.now() - timedelta(days=30), by=ACTOR
    )
    fresh = services.open_request(
        "correction", person, parameters={"fields": {"city": "北京"}}, by=ACTOR
    )
    client.force_login(admin_user)
    page = client.get("/admin/privacy/privacyrequest/?overdue=yes")
    assert page.status_code == 200
    ids = [obj.pk for obj in page.context["cl"].result_list]
    assert ids == [late.pk]
    assert "overdue" in page.content.decode()
    both = client.get("/admin/privacy/privacyrequest/")
    assert {obj.pk for obj in both.context["cl"].result_list} == {late.pk, fresh.pk}
    from kequn.privacy.admin import overdue_badge

    class Request:
        user = admin_user

    assert overdue_badge(Request()) == "1"


def test_admin_verifies_executes_and_rejects(person, other, admin_user, client):
    client.force_login(admin_user)
    add = client.post(
        "/admin/privacy/privacyrequest/add/",
        {"type": "restrict", "customer": person.pk, "channel": "letter",
         "received_at_0": "2026-11-20", "received_at_1": "10:00:00", "parameters": "{}",
         "notes": "letter of 20 Nov"},
    )  # fmt: skip
    assert add.status_code == 302, add.content.decode()[:2000]
    request = PrivacyRequest.objects.get(type="restrict")
    assert request.deadline is not None and request.created_by == admin_user
    change_url = f"/admin/privacy/privacyrequest/{request.pk}/change/"
    assert client.post(f"/admin/privacy/privacyrequest/{request.pk}/execute/").status_code == 302
    request.refresh_from_db()
    assert request.status == PrivacyRequest.Status.RECEIVED  # not verified yet: refused
    form = client.get(change_url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if k in form.fields and v is not None}
    data.update(
        {"identity_method": "id_document", "notes": "seen passport", "rejection_reason": ""}
    )
    saved = client.post(change_url, data)
    assert saved.status_code == 302
    request.refresh_from_db()
    assert request.status == PrivacyRequest.Status.VERIFIED and request.notes == "seen passport"
    assert client.get(f"/admin/privacy/privacyrequest/{request.pk}/execute/").status_code == 200
    client.post(f"/admin/privacy/privacyrequest/{request.pk}/execute/")
    person.refresh_from_db()
    assert person.processing_restricted
    other_request = services.open_request("erasure", other, by=ACTOR)
    client.post(
        f"/admin/privacy/privacyrequest/{other_request.pk}/reject/", {"reason": "not the holder"}
    )
    other_request.refresh_from_db()
    assert other_request.status == PrivacyRequest.Status.REJECTED
    assert other_request.rejection_reason == "not the holder"
    assert Customer.objects.filter(pk=other.pk).exists()


def test_restricted_customer_is_read_only_in_the_back_office(person, admin_user, client):
    client.force_login(admin_user)
    url = f"/admin/customers/customer/{person.pk}/change/"
    services.restrict_processing(person, by=ACTOR)
    page = client.get(url)
    assert page.status_code == 200 and page.context["has_change_permission"] is False
    assert "processing_restricted" in page.context["adminform"].readonly_fields
    assert client.post(url, {"name": "改名", "kind": "person"}).status_code == 403
    person.refresh_from_db()
    assert person.name == "张伟"
