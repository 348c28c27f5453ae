"""Smaller leaks: cached API answers, formulas in `kequn analyze`, a segment's list export
without consent, a correction's birthday, imports that stay "running" after a kill."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from kequn.analytics.cli import main as analyze
from kequn.customers.models import Customer
from kequn.customers.services import create_customer, record_consent
from kequn.ingest.models import ImportRun
from kequn.ingest.runs import import_file
from kequn.ingest.stale import beat, fail_stale_runs, forget
from kequn.privacy.services import open_request
from kequn.security.actors import system_actor
from kequn.security.audit import services as audit
from kequn.security.audit.models import AuditEntry
from kequn.security.roles import ADMINISTRATOR, MARKETING, SERVICE
from kequn.security.services import create_api_token
from kequn.segments.services import create_segment
from tests.conftest import TokenClient

SHANGHAI = {"match": "all", "conditions": [{"field": "city", "operator": "eq", "value": "上海"}]}


def role_user(role: str, name: str) -> User:
    user = User.objects.create_user(name, password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return User.objects.get(pk=user.pk)


def browser(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_api_answers_are_never_stored_by_caches(db):
    user = role_user(ADMINISTRATOR, "boss")
    client = TokenClient(create_api_token(user.username, by=system_actor("tests"))[1])
    create_customer({"name": "张伟"}, by=system_actor("tests"))
    for response in (
        client.get("/api/v1/customers"),
        client.get("/api/v1/customers/987654"),  # 404
        TokenClient("kq_wrong").get("/api/v1/customers"),  # 401
    ):
        assert "no-store" in response["Cache-Control"], response.status_code
    assert "no-store" not in Client().get("/healthz").get("Cache-Control", "")


def test_analyze_writes_customer_ids_that_look_like_formulas_as_text(tmp_path):
    source = tmp_path / "tx.csv"
    source.write_text(
        "customer_id,date,amount\n"
        '"=HYPERLINK(""http://x"",""y"")",2024-01-01,5\n'
        "@SUM(A1),2024-01-02,6\n"
        "-12,2024-02-03,7\n"
        "plain,2024-02-04,8\n"
    )
    out = tmp_path / "out"
    assert analyze([str(source), "--out", str(out), "--quiet", "--now", "2024-06-01"]) == 0
    with (out / "customers.csv").open(encoding="utf-8") as fh:
        ids = {row["customer_id"] for row in csv.DictReader(fh)}
    assert ids == {'\'=HYPERLINK("http://x","y")', "'@SUM(A1)", "-12", "plain"}


@pytest.fixture
def segment_with_consent(db):
    willing = create_customer({"name": "愿意", "city": "上海"}, by=system_actor("tests"))
    unwilling = create_customer({"name": "不愿意", "city": "上海"}, by=system_actor("tests"))
    record_consent(willing, "email", "marketing", True, by=system_actor("tests"))
    segment = create_segment("上海", SHANGHAI, by=system_actor("test"))
    return segment, willing, unwilling


def exported_ids(client: Client, url: str) -> set[int]:
    response = client.get(url)
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode("utf-8").lstrip("\ufeff")
    return {int(row["id"]) for row in csv.DictReader(io.StringIO(body))}


def test_marketings_list_export_of_a_segment_keeps_only_consenting_members(segment_with_consent):
    segment, willing, unwilling = segment_with_consent
    url = reverse(
        "dashboard:export_rows",
        kwargs={"app_label": "customers", "model_name": "customer", "fmt": "csv"},
    )
    url += f"?segment={segment.pk}"
    marketer = browser(role_user(MARKETING, "mia"))
    assert exported_ids(marketer, url) == {willing.pk}
    # Administrators (and analysts, service) may export for other purposes, as from the segment.
    assert exported_ids(browser(role_user(ADMINISTRATOR, "boss")), url) == {
        willing.pk,
        unwilling.pk,
    }


def test_a_corrections_new_birthday_is_encrypted_and_masked_for_service(db):
    person = create_customer({"name": "张伟", "birthday": "1985-01-02"}, by=system_actor("tests"))
    request = open_request(
        "correction", person, parameters={"fields": {"birthday": "1990-05-04"}}, by=None
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT parameters FROM privacy_privacyrequest WHERE id = %s", [request.pk])
        stored = str(cursor.fetchone()[0])
    assert "1990" not in stored and "birthday" not in stored
    agent = role_user(SERVICE, "sam")
    answer = TokenClient(create_api_token(agent.username, by=system_actor("tests"))[1]).get(
        f"/api/v1/privacy-requests/{request.pk}"
    )
    assert answer.status_code == 200
    assert answer.json()["parameters"] == {"fields": {"birthday": "****-05-04"}}
    page = browser(agent).get(reverse("admin:privacy_privacyrequest_change", args=[request.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "1990-05-04" not in text and "****-05-04" in text
    boss = role_user(ADMINISTRATOR, "boss")
    full = TokenClient(create_api_token(boss.username, by=system_actor("tests"))[1]).get(
        f"/api/v1/privacy-requests/{request.pk}"
    )
    assert full.json()["parameters"] == {"fields": {"birthday": "1990-05-04"}}


def test_an_import_is_on_the_audit_trail_from_its_start(db, tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("phone,name\n13800138000,张伟\n13900139000,李娜\n")
    summary = import_file(path, "customers", batch_size=1, by=system_actor("tests"))
    entries = AuditEntry.objects.filter(action=audit.IMPORT, target_id=str(summary.run_id))
    statuses = list(entries.order_by("sequence").values_list("detail__status", flat=True))
    assert statuses == ["running", "finished"]


def test_a_killed_import_is_marked_failed_on_the_next_list_or_import(db, admin_client, tmp_path):
    old = timezone.now() - timedelta(minutes=20)
    dead = ImportRun.objects.create(kind="customers", file_name="big.csv", checksum="0" * 64)
    alive = ImportRun.objects.create(kind="customers", file_name="slow.csv", checksum="1" * 64)
    ImportRun.objects.filter(pk__in=[dead.pk, alive.pk]).update(started_at=old)
    forget(dead.pk)
    beat(alive.pk)  # still working: its heartbeat is fresh
    page = admin_client.get(reverse("admin:ingest_importrun_changelist"))
    assert page.status_code == 200
    dead.refresh_from_db()
    alive.refresh_from_db()
    assert dead.status == ImportRun.Status.FAILED and "no sign of life" in dead.error
    assert alive.status == ImportRun.Status.RUNNING
    entry = AuditEntry.objects.get(action=audit.IMPORT, target_id=str(dead.pk))
    assert entry.detail["status"] == "failed" and entry.detail["stale"] is True
    assert fail_stale_runs() == 0  # once only
    # The next import (or worker pass) does the same once the other run stops beating.
    later = timezone.now() + timedelta(minutes=30)
    assert fail_stale_runs(later) == 1
    forget(alive.pk)
    assert Customer.objects.count() == 0
