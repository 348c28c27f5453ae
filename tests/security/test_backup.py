"""Backups: create, restore into a fresh database (SQLite file or new PostgreSQL database),
compare row counts and checksums with the original; damaged files fail with one line."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from kequn.customers.models import Customer
from kequn.jobs.services import DEFAULT_SCHEDULES
from kequn.security import backups
from kequn.security.backups import fileformat
from tests.factories import make_customer, make_event, make_order

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def shop(transactional_db):
    """A small committed customer base, with text that must survive byte for byte."""
    customers = [make_customer(f"客户 {i} O'Brien", phone=f"1380013{i:04d}") for i in range(30)]
    for customer in customers[:20]:
        make_order(customer, amount="1299.50")
        make_event(customer)
    return customers


def original_sums(tmp_path: Path) -> dict[str, backups.TableSum]:
    """Checksum the test database as it is now, independently of any backup file."""
    if backups.database_kind() == "sqlite":
        copy = tmp_path / "original.sqlite3"
        connection.ensure_connection()
        target = sqlite3.connect(copy)
        connection.connection.backup(target)
        target.close()
        return backups.sqlite_table_sums(copy)
    conn = backups.pg_connect(settings.DATABASES["default"])
    try:
        with conn.cursor() as cursor:
            return backups.pg_table_sums(cursor)
    finally:
        conn.close()


@pytest.fixture
def fresh_database(tmp_path):
    """Yield (database URL, settings dict) of a new, empty database of the kind under test."""
    db = settings.DATABASES["default"]
    if backups.database_kind() == "sqlite":
        path = tmp_path / "fresh" / "restored.sqlite3"
        yield f"sqlite:///{path}", {**db, "NAME": str(path)}
        return
    name = f"kequn_restore_{uuid.uuid4().hex[:10]}"
    admin = backups.pg_connect(db, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        user = db.get("USER") or "postgres"
        host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
        password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
        yield f"postgresql://{user}{password}@{host}:{port}/{name}", {**db, "NAME": name}
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def kequn(*args: str, database_url: str | None = None, **env: str) -> subprocess.CompletedProcess:
    """Run the real `kequn` command in a new process."""
    environment = {**os.environ, **env}
    if database_url:
        environment["KEQUN_DATABASE_URL"] = database_url
    return subprocess.run(
        ["kequn", *args], capture_output=True, text=True, env=environment, timeout=300
    )


def restored_sums(db: dict) -> dict[str, backups.TableSum]:
    if backups.database_kind(db) == "sqlite":
        return backups.sqlite_table_sums(Path(db["NAME"]))
    conn = backups.pg_connect(db)
    try:
        with conn.cursor() as cursor:
            return backups.pg_table_sums(cursor)
    finally:
        conn.close()


def count_rows(db: dict, table: str) -> int:
    if backups.database_kind(db) == "sqlite":
        con = sqlite3.connect(db["NAME"])
        try:
            return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        finally:
            con.close()
    conn = backups.pg_connect(db)
    try:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


def test_backup_restores_into_a_fresh_database(shop, tmp_path, fresh_database):
    url, fresh = fresh_database
    before = original_sums(tmp_path)
    assert before["customers_customer"].rows == 30

    call_command("backup", "create", "--out", str(tmp_path / "out"))
    (path,) = (tmp_path / "out").glob("*.kqbackup")
    raw = path.read_bytes()
    assert b"O'Brien" not in raw and "客户".encode() not in raw  # encrypted
    assert b"13800130001" not in raw

    header, _ = backups.read_header(path)
    assert header["kind"] == backups.database_kind()
    contents = backups.verify_backup(path)
    manifest = contents.manifest
    assert manifest["format"] == backups.FORMAT_VERSION and manifest["kequn_version"]
    assert manifest["tables"]["customers_customer"]["rows"] == 30
    assert {t: (s.rows, s.checksum) for t, s in before.items()} == {
        t: (v["rows"], v["checksum"]) for t, v in manifest["tables"].items()
    }

    done = kequn("backup", "restore", str(path), database_url=url)
    assert done.returncode == 0, done.stderr
    assert "counts and checksums match the manifest" in done.stdout

    after = restored_sums(fresh)
    # The restore itself is the one new entry of the restored audit trail.
    audit_table = "audit_auditentry"
    assert after.pop(audit_table).rows == before.pop(audit_table).rows + 1
    assert {t: (s.rows, s.checksum) for t, s in after.items()} == {
        t: (s.rows, s.checksum) for t, s in before.items()
    }
    assert count_rows(fresh, "commerce_order") == 20
    assert count_rows(fresh, "events_event") == 20
    assert Customer.objects.count() == 30  # the original is untouched

    # A second restore into the now non-empty database is refused, in one line.
    again = kequn("backup", "restore", str(path), database_url=url)
    assert again.returncode == 2
    assert again.stderr.count("\n") == 1 and "is not empty" in again.stderr
    assert "--force" in again.stderr
    forced = kequn("backup", "restore", "--force", str(path), database_url=url)
    assert forced.returncode == 0, forced.stderr


def test_damaged_backups_fail_verify_with_one_line(shop, tmp_path, monkeypatch):
    monkeypatch.setattr(fileformat, "CHUNK_BYTES", 16 * 1024)  # several chunks from a small base
    path = backups.create_backup(tmp_path)
    ok = kequn("backup", "verify", str(path))
    assert ok.returncode == 0 and "ok" in ok.stdout
    raw = path.read_bytes()
    _, start = backups.read_header(path)

    def damaged(name: str, data: bytes) -> str:
        bad = tmp_path / name
        bad.write_bytes(data)
        result = kequn("backup", "verify", str(bad))
        assert result.returncode == 2, result
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert str(bad) in result.stderr
        return result.stderr

    flipped = bytearray(raw)
    flipped[start + 100] ^= 0x01
    assert "fails authentication" in damaged("flipped.kqbackup", bytes(flipped))

    # Cut exactly at a chunk boundary, so what is left decrypts: only the missing last
    # chunk gives the truncation away.
    first_len = int.from_bytes(raw[start : start + 4], "big")
    boundary = start + 4 + first_len
    assert boundary < len(raw)
    assert "truncated after chunk 1" in damaged("cut.kqbackup", raw[:boundary])
    assert "truncated inside chunk" in damaged("cut-mid.kqbackup", raw[: len(raw) - 10])
    assert "after the last chunk" in damaged("extended.kqbackup", raw + b"x")
    assert "not a Kequn backup" in damaged("other.kqbackup", b"PK\x03\x04" + raw[4:])

    header_edit = raw.replace(b'"created_at": "20', b'"created_at": "19', 1)  # back-dated
    assert "fails authentication" in damaged("header.kqbackup", header_edit)

    other_key = kequn(
        "backup", "verify", str(path), KEQUN_MASTER_KEY="A" * 43 + "="
    )  # a valid but different key
    assert other_key.returncode == 2 and "different master key" in other_key.stderr


def test_backup_create_refuses_unwritable_directory(shop, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CommandError, match="cannot use backup directory"):
        call_command("backup", "create", "--out", str(blocker / "sub"))


def test_scheduled_backup_keeps_the_newest(shop, tmp_path, monkeypatch):
    spec = DEFAULT_SCHEDULES["database-backup"]
    assert spec.task_path == "kequn.security.tasks.nightly_backup_task"
    monkeypatch.setenv("KEQUN_BACKUP_DIR", str(tmp_path / "nightly"))
    monkeypatch.setenv("KEQUN_BACKUP_KEEP", "2")
    from kequn.security.tasks import nightly_backup_task

    results = [nightly_backup_task.call() for _ in range(3)]
    kept = sorted(p.name for p in (tmp_path / "nightly").glob("*.kqbackup"))
    assert len(kept) == 2
    assert results[2]["removed"] == [Path(results[0]["backup"]).name]
    assert Path(results[2]["backup"]).name in kept
    listing = kequn("backup", "list", "--dir", str(tmp_path / "nightly"))
    assert listing.returncode == 0 and listing.stdout.count(".kqbackup") == 2

    monkeypatch.setenv("KEQUN_BACKUP_KEEP", "none")
    with pytest.raises(backups.BackupError, match="KEQUN_BACKUP_KEEP='none'"):
        backups.get_keep_count()


def test_logical_dump_restores_without_pg_dump(shop, tmp_path, fresh_database):
    """PostgreSQL without pg_dump: COPY of every table in one snapshot, then migrations + load."""
    url, fresh = fresh_database
    before = original_sums(tmp_path)
    path = backups.create_backup(tmp_path / "out", method="copy")
    header, _ = backups.read_header(path)
    if backups.database_kind() == "sqlite":
        # SQLite always uses its online backup API; the method only concerns PostgreSQL.
        assert header["method"] == "sqlite-backup-api"
    else:
        assert header["method"] == "copy"
        assert backups.verify_backup(path).manifest["migrations"]
    done = kequn("backup", "restore", str(path), database_url=url)
    assert done.returncode == 0, done.stderr
    after = restored_sums(fresh)
    after.pop("audit_auditentry"), before.pop("audit_auditentry")
    assert {t: (s.rows, s.checksum) for t, s in after.items()} == {
        t: (s.rows, s.checksum) for t, s in before.items()
    }


def test_restoring_an_older_backup_erases_again_whoever_was_erased_since(
    shop, tmp_path, fresh_database, erasure_journal
):
    from kequn.privacy.services import erase_customer
    from kequn.security.actors import system_actor

    url, fresh = fresh_database
    call_command("backup", "create", "--out", str(tmp_path / "out"))
    (path,) = (tmp_path / "out").glob("*.kqbackup")
    erased = shop[0]
    erase_customer(erased, by=system_actor("backup-test"))  # after the backup was taken
    journal_text = erasure_journal.read_text()
    assert "13800130000" not in journal_text and "O'Brien" not in journal_text  # hashes, ids

    done = kequn("backup", "restore", str(path), database_url=url)
    assert done.returncode == 0, done.stderr
    assert "1 erasures re-applied, 1 records erased again, 1 suppressions restored" in done.stdout
    assert count_rows(fresh, "customers_customer") == 29
    assert count_rows(fresh, "privacy_suppression") == 1
    # The suppression works in the restored database: the person is not imported again.
    people = tmp_path / "people.csv"
    people.write_text("name,phone\n回来的人,13800130000\n新客户,13911112222\n", encoding="utf-8")
    imported = kequn("import", "customers", str(people), "--json", database_url=url)
    assert imported.returncode == 0, imported.stderr
    assert count_rows(fresh, "customers_customer") == 30  # only the new customer
    # A replay changes nothing the second time.
    again = kequn("privacy", "replay-erasures", database_url=url)
    assert "0 records erased again, 0 suppressions restored" in again.stdout

    # An edited journal line is refused by name, after the restore.
    erasure_journal.write_text(journal_text.replace('"mac": "', '"mac": "0'))
    forced = kequn("backup", "restore", "--force", str(path), database_url=url)
    assert forced.returncode == 2 and forced.stderr.count("\n") == 1
    assert "line 1: the entry was altered" in forced.stderr
    assert "kequn privacy replay-erasures" in forced.stderr
