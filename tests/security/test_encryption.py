"""Encryption of personal data at rest: round trip, integrity, blind indexes, rotation, raw bytes."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.apps import apps as django_apps
from django.core.exceptions import FieldError
from django.core.management import call_command
from django.db import IntegrityError, connection, connections, transaction
from django.db.models import QuerySet
from django.utils import timezone

from kequn.customers.models import Address, Customer, Identity
from kequn.customers.services import find_customer_by_identity
from kequn.ingest.models import QuarantinedRow
from kequn.security.actors import system_actor
from kequn.security.keyring import services
from kequn.security.keyring.models import DataKey
from kequn.security.keyring.services import DecryptionError
from kequn.segments.rules import RuleError, validate_rule
from kequn.segments.services import select_rule_members

AGE_RULE = {"match": "all", "conditions": [{"field": "age", "operator": "gte", "value": 30}]}

EMAIL, PHONE = "li.na@example.cn", "+8613912345678"


def raw(table: str, column: str, pk: int) -> str:
    """Return a column as stored, bypassing the model fields."""
    with connection.cursor() as cur:
        quoted = connection.ops.quote_name(column)
        cur.execute(f"SELECT CAST({quoted} AS TEXT) FROM {table} WHERE id = %s", [pk])
        return cur.fetchone()[0]


def write_raw(table: str, column: str, pk: int, value: str) -> None:
    with connection.cursor() as cur:
        cur.execute(
            f"UPDATE {table} SET {connection.ops.quote_name(column)} = %s WHERE id = %s",
            [value, pk],
        )


@pytest.fixture
def person(db):
    customer = Customer.objects.create(name="李娜")
    Identity.objects.create(customer=customer, kind="email", value=EMAIL)
    Identity.objects.create(customer=customer, kind="phone", value=PHONE)
    Address.objects.create(customer=customer, line="人民路 88 号 3 栋 502 室", postcode="200001")
    return customer


def test_values_are_stored_encrypted_and_read_back_in_every_form(person):
    identity = Identity.objects.get(customer=person, kind="email")
    stored = raw("customers_identity", "value", identity.pk)
    assert stored.startswith("kq1:") and EMAIL not in stored
    address = person.addresses.get()
    assert "人民路" not in raw("customers_address", "line", address.pk)
    assert raw("customers_address", "postcode", address.pk).startswith("kq1:")
    # Model instances, .values(), .values_list() and .only() all see plaintext.
    assert identity.value == EMAIL
    assert set(Identity.objects.values_list("value", flat=True)) == {EMAIL, PHONE}
    assert Address.objects.values("line", "postcode").get() == {
        "line": "人民路 88 号 3 栋 502 室",
        "postcode": "200001",
    }
    assert Address.objects.only("line").get().line.startswith("人民路")
    # The same plaintext encrypts differently each time (random nonce).
    assert services.encrypt("customers.identity.value", EMAIL) != services.encrypt(
        "customers.identity.value", EMAIL
    )


def test_str_of_identities_and_addresses_is_masked(person):
    # str() lands where no role check guards it: the admin history's object_repr, logs.
    texts = [str(i) for i in person.identities.all()] + [str(person.addresses.get())]
    joined = " ".join(texts)
    assert EMAIL not in joined and PHONE not in joined and "人民路" not in joined
    assert "****" in joined
    assert person.addresses.get().get_full_text().startswith("人民路")


def test_empty_values_stay_empty_and_can_be_filtered(db):
    customer = Customer.objects.create(name="x")
    Address.objects.create(customer=customer, city="上海")
    assert raw("customers_address", "line", customer.addresses.get().pk) == ""
    assert Address.objects.filter(line="").count() == 1
    assert Address.objects.exclude(line="").count() == 0


def test_birthday_is_encrypted_and_only_its_year_is_kept_in_clear(db):
    c = Customer.objects.create(name="王芳", birthday=dt.date(1990, 5, 4))
    stored = raw("customers_customer", "birthday", c.pk)
    assert stored.startswith("kq1:") and "1990" not in stored
    c.refresh_from_db()
    assert (c.birthday, c.birth_year) == (dt.date(1990, 5, 4), 1990)
    c.birthday = "1985-02-03"  # as a form or an import may set it
    c.save()
    assert Customer.objects.values_list("birth_year", flat=True).get(pk=c.pk) == 1985
    (bulk,) = Customer.objects.bulk_create([Customer(name="赵", birthday=dt.date(2001, 1, 2))])
    assert Customer.objects.values_list("birth_year", flat=True).get(pk=bulk.pk) == 2001
    with pytest.raises(FieldError, match="encrypted"):
        Customer.objects.filter(birthday__lt=dt.date(2000, 1, 1)).count()
    # Age rules use the year; a rule on the date itself is refused with a pointer.
    members = set(select_rule_members(AGE_RULE).values_list("pk", flat=True))
    assert members == {c.pk} | ({bulk.pk} if timezone.localdate().year - 2001 >= 30 else set())
    with pytest.raises(RuleError, match=r"birthday is stored encrypted.*'age'"):
        validate_rule({"match": "all", "conditions": [
            {"field": "birthday", "operator": "before", "value": "2000-01-01"}]})  # fmt: skip


def test_birthdays_written_before_encryption_are_encrypted_by_the_migration(db):
    c = Customer.objects.create(name="钱", birthday=dt.date(1979, 11, 30))
    write_raw("customers_customer", "birthday", c.pk, "1979-11-30")
    c.refresh_from_db()
    assert c.birthday == dt.date(1979, 11, 30)  # plaintext still reads during the upgrade
    migration = importlib.import_module(
        "kequn.customers.migrations.0008_encrypt_existing_birthdays"
    )
    migration.encrypt_birthdays(django_apps, SimpleNamespace(connection=connection))
    assert raw("customers_customer", "birthday", c.pk).startswith("kq1:")
    c.refresh_from_db()
    assert c.birthday == dt.date(1979, 11, 30)


def test_a_ciphertext_moved_to_another_column_does_not_decrypt(person):
    address = person.addresses.get()
    write_raw(
        "customers_address", "postcode", address.pk, raw("customers_address", "line", address.pk)
    )
    with pytest.raises(DecryptionError, match=r"customers\.address\.postcode"):
        Address.objects.get(pk=address.pk)
    # Same key, other field's associated data: still refused.
    token = services.encrypt("customers.address.line", "x")
    with pytest.raises(DecryptionError):
        services.decrypt("customers.address.postcode", token)


def test_a_tampered_ciphertext_fails_with_a_clear_error(person):
    identity = Identity.objects.get(customer=person, kind="phone")
    stored = raw("customers_identity", "value", identity.pk)
    head, body = stored.rsplit(":", 1)
    flipped = body[:-6] + ("A" if body[-6] != "A" else "B") + body[-5:]
    write_raw("customers_identity", "value", identity.pk, f"{head}:{flipped}")
    with pytest.raises(DecryptionError, match="integrity check"):
        Identity.objects.get(pk=identity.pk)
    write_raw("customers_identity", "value", identity.pk, f"{head}:%%%")
    with pytest.raises(DecryptionError, match="malformed"):
        Identity.objects.get(pk=identity.pk)


def test_wrong_master_key_is_named(person, monkeypatch):
    services.reset_cache()
    monkeypatch.setattr(services, "load_master_key", lambda: b"\0" * 32)
    with pytest.raises(DecryptionError, match="master key"):
        list(Identity.objects.values_list("value", flat=True))
    services.reset_cache()


def test_exact_lookups_go_through_the_blind_index(person):
    identity = Identity.objects.get(value=EMAIL)
    assert identity.value_index == services.blind_index(EMAIL)
    assert EMAIL not in identity.value_index
    assert Identity.objects.filter(value__in=[PHONE, "nobody@x.cn"]).get().kind == "phone"
    assert Identity.objects.with_value(PHONE).get().customer == person
    assert find_customer_by_identity("email", " LI.NA@Example.CN ") == person
    assert find_customer_by_identity("phone", "139 1234 5678") == person
    with pytest.raises(FieldError, match="encrypted"):
        list(Identity.objects.filter(value__startswith="li"))
    with pytest.raises(FieldError, match="encrypted"):
        list(Address.objects.filter(line="人民路"))  # no blind index on addresses


def test_the_unique_constraint_holds_on_the_blind_index(person):
    other = Customer.objects.create(name="y")
    with pytest.raises(IntegrityError), transaction.atomic():
        Identity.objects.create(customer=other, kind="email", value=EMAIL)
    # The same value under another kind is a different identity.
    Identity.objects.create(customer=other, kind="wechat", value=EMAIL)


def test_admin_search_finds_customers_by_email_and_phone(person, admin_client):
    for term in ("Li.Na@example.cn", "13912345678"):
        response = admin_client.get("/admin/customers/customer/", {"q": term})
        assert response.status_code == 200
        assert "李娜" in response.content.decode()
    response = admin_client.get("/admin/customers/identity/", {"q": EMAIL})
    assert EMAIL in response.content.decode()


def test_encrypted_json_payloads(db):
    row = QuarantinedRow.objects.create(
        kind="customers", file_name="a.csv", checksum="c", row_number=2, reason="invalid_email",
        values={"email": "bad@@x.cn", "phone": "13800000000"},
    )  # fmt: skip
    stored = raw("ingest_quarantinedrow", "values", row.pk)
    assert "13800000000" not in stored and "kq1:" in stored
    assert QuarantinedRow.objects.values_list("values", flat=True).get()["phone"] == "13800000000"


@pytest.mark.django_db(transaction=True)
def test_rotation_while_another_connection_reads(db):
    customers = Customer.objects.bulk_create(Customer(name=f"c{i}") for i in range(60))
    expected = {}
    for c in customers:
        value = f"user{c.pk}@example.cn"
        Identity.objects.create(customer=c, kind="email", value=value)
        expected[c.pk] = value
    purpose = "customers.identity.value"
    before = services.get_status(purpose)
    assert before.versions == {before.active: 60}

    errors, reads = [], []
    stop = threading.Event()

    def reader():
        try:
            reader_connection = connections["default"]
            if reader_connection.vendor == "sqlite" and reader_connection.is_in_memory_db():
                # The in-memory test database is shared-cache, which locks whole tables; a
                # file database in WAL mode (what Kequn runs on) lets readers through anyway.
                reader_connection.cursor().execute("PRAGMA read_uncommitted = 1")
            while not stop.is_set():
                rows = dict(Identity.objects.values_list("customer_id", "value"))
                if rows != expected:
                    errors.append("mismatch")
                reads.append(1)
        except Exception as exc:  # any failure to decrypt mid-rotation is the bug
            errors.append(repr(exc))
        finally:
            connections.close_all()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        result = services.rotate_field(
            purpose, batch_size=7, settle_seconds=0, by=system_actor("tests")
        )
    finally:
        stop.set()
        thread.join()
    assert not errors and reads
    assert result.rows == 60 and not result.resumed
    after = services.get_status(purpose)
    assert after.active == before.active + 1
    assert after.versions == {before.active: 0, after.active: 60}
    assert after.pending == 0
    # A re-run finds nothing to do; writers now use the new version.
    assert services.reencrypt_field(purpose) == 0
    new = Identity.objects.create(customer=customers[0], kind="phone", value=PHONE)
    assert raw("customers_identity", "value", new.pk).startswith(f"kq1:{after.active}:")
    # Old versions go once unused; the data stays readable.
    assert services.retire_unused_keys(purpose, by=system_actor("tests")) == [before.active]
    assert not DataKey.objects.filter(purpose=purpose, version=before.active).exists()
    assert (
        dict(Identity.objects.filter(kind="email").values_list("customer_id", "value")) == expected
    )


@pytest.mark.django_db(transaction=True)
def test_an_interrupted_rotation_resumes(db, monkeypatch):
    customers = Customer.objects.bulk_create(Customer(name=f"c{i}") for i in range(30))
    for c in customers:
        Address.objects.create(customer=c, line=f"{c.pk} 号")
    purpose = "customers.address.line"
    calls = []
    real_bulk_update = QuerySet.bulk_update

    def crash_on_third_batch(self, objs, fields, **kw):
        if self.model is Address:
            calls.append(len(objs))
            if len(calls) == 3:
                raise RuntimeError("power cut")
        return real_bulk_update(self, objs, fields, **kw)

    monkeypatch.setattr(QuerySet, "bulk_update", crash_on_third_batch)
    with pytest.raises(RuntimeError, match="power cut"):
        services.rotate_field(purpose, batch_size=5, settle_seconds=0, by=system_actor("tests"))
    monkeypatch.undo()
    status = services.get_status(purpose)
    assert status.pending == 20  # two batches committed before the crash
    result = services.rotate_field(
        purpose, batch_size=5, settle_seconds=0, by=system_actor("tests")
    )
    assert result.resumed and result.version == status.active and result.rows == 20
    assert services.get_status(purpose).pending == 0
    assert sorted(Address.objects.values_list("line", flat=True)) == sorted(
        f"{c.pk} 号" for c in customers
    )


@pytest.mark.django_db(transaction=True)
def test_keys_command(db, capsys):
    Identity.objects.create(customer=Customer.objects.create(name="z"), kind="email", value=EMAIL)
    call_command("keys", "status")
    out = capsys.readouterr().out
    assert "customers.identity.value" in out and "v1*: 1" in out
    with pytest.raises(Exception, match="unknown encrypted field"):
        call_command("keys", "rotate", "--field", "customers.customer.name")


def _known_plaintexts() -> tuple[list[str], list[str], list[str]]:
    emails = list(Identity.objects.filter(kind="email").values_list("value", flat=True))
    phones = list(Identity.objects.filter(kind="phone").values_list("value", flat=True))
    born = Customer.objects.filter(birthday__isnull=False).values_list("birthday", flat=True)
    return emails, phones, [b.isoformat() for b in born]


def _load_everything(tmp_path: Path) -> dict:
    """Demo data, an import (with a quarantined row and a merge) and an identify event."""
    from kequn.demo.generator import generate_demo_data
    from kequn.events.services import collect_events, create_source
    from kequn.ingest.runs import import_file

    generate_demo_data(200, seed=7, progress=False)
    csv = tmp_path / "people.csv"
    csv.write_text(
        "id,name,email,phone,city,address,postcode,birthday\n"
        "a1,周杰,zhou.jie@example.cn,13700001111,上海,淮海中路 100 号,200020,1988年7月21日\n"
        "a2,吴磊,not-an-email,13700002222,北京,长安街 1 号,100000,\n",
        encoding="utf-8",
    )
    import_file(csv, "customers", source="crm", by=system_actor("tests"))
    source, _key = create_source(name="web", by=system_actor("tests"))
    collect_events(source=source, messages=[{
        "type": "identify", "userId": "u-1", "messageId": "m-1",
        "traits": {"email": "identify.me@example.cn", "phone": "13600003333", "plan": "gold"},
    }])  # fmt: skip
    return {
        "extra": ["zhou.jie@example.cn", "13700001111", "1988-07-21", "13700002222", "淮海中路 100 号",
                  "identify.me@example.cn", "13600003333", "not-an-email"],
    }  # fmt: skip


def _assert_absent(haystack: str | bytes, needles: list[str]) -> None:
    found = [n for n in needles if (n.encode() if isinstance(haystack, bytes) else n) in haystack]
    assert not found, f"plaintext found in the database: {found[:5]}"


@pytest.mark.django_db(transaction=True)
def test_no_plaintext_in_any_text_or_json_column(tmp_path):
    loaded = _load_everything(tmp_path)
    emails, phones, birthdays = _known_plaintexts()
    assert len(emails) > 50 and len(phones) > 50 and len(birthdays) > 50
    assert "identify.me@example.cn" in emails  # the identify event did create the identity
    lines = list(Address.objects.exclude(line="").values_list("line", flat=True))
    needles = emails + phones + birthdays + lines[:200] + loaded["extra"]
    dumped = []
    with connection.cursor() as cur:
        for table in connection.introspection.table_names():
            if not table.startswith(("customers_", "ingest_", "events_", "commerce_",
                                     "segments_", "audit_", "privacy_", "scoring_",
                                     "recommend_", "jobs_", "dashboard_", "keyring_")):  # fmt: skip
                continue
            for col in connection.introspection.get_table_description(cur, table):
                name = connection.ops.quote_name(col.name)
                cur.execute(f"SELECT CAST({name} AS TEXT) FROM {table}")
                dumped.extend(str(v) for (v,) in cur.fetchall() if v is not None)
    _assert_absent("\n".join(dumped), needles)


def test_the_sqlite_file_holds_no_plaintext(tmp_path):
    """Build a real SQLite install in a subprocess, then read the database file's bytes."""
    env = {
        **os.environ,
        "KEQUN_DATA_DIR": str(tmp_path / "data"),
        "KEQUN_DATABASE_URL": f"sqlite:///{tmp_path / 'kequn.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "kequn.settings",
    }
    env.pop("KEQUN_MASTER_KEY", None)
    script = f"""
import json, django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from pathlib import Path
from types import SimpleNamespace
from tests.security.test_encryption import _load_everything, _known_plaintexts
from kequn.customers.models import Address
loaded = _load_everything(Path({str(tmp_path)!r}))
emails, phones, birthdays = _known_plaintexts()
lines = list(Address.objects.exclude(line="").values_list("line", flat=True))
from django.db import connection
with connection.cursor() as cur:
    cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
print(json.dumps({{"needles": emails + phones + birthdays + lines + loaded["extra"]}}))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=Path(__file__).parents[2],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    needles = json.loads(done.stdout.strip().splitlines()[-1])["needles"]
    assert len(needles) > 100
    db_file = tmp_path / "kequn.sqlite3"
    data = db_file.read_bytes()
    wal = Path(f"{db_file}-wal")
    if wal.exists():
        data += wal.read_bytes()
    _assert_absent(data, needles)
    # Sanity: the file is a real database with the rows in it (encrypted).
    with sqlite3.connect(db_file) as con:
        count = con.execute("SELECT COUNT(*) FROM customers_identity").fetchone()[0]
        sample = con.execute("SELECT value FROM customers_identity LIMIT 1").fetchone()[0]
    assert count > 100 and sample.startswith("kq1:")
    assert (tmp_path / "data" / "master.key").exists()
