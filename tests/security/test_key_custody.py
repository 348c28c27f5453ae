"""Key custody: where the master key lives is said plainly, and verifies pin the audit head."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from kequn.conf import get_data_dir
from kequn.security.audit import guard
from kequn.security.audit import services as audit
from kequn.security.audit.models import AuditEntry
from kequn.security.keys import describe_key_custody, get_key_file

pytestmark = pytest.mark.django_db


@pytest.fixture
def key_in_data_dir(monkeypatch):
    """The default installation: no key in the environment, master.key in the data directory."""
    for name in ("KEQUN_MASTER_KEY", "KEQUN_MASTER_KEY_FILE", "KEQUN_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)


def test_keys_status_warns_when_the_key_lies_beside_the_database(key_in_data_dir, capsys):
    call_command("keys", "status")
    out = capsys.readouterr().out
    assert str(get_data_dir() / "master.key") in out
    assert "KEQUN_MASTER_KEY_FILE=" in out and "mv " in out  # how to move it


def test_a_key_file_outside_the_data_dir_or_in_the_environment_is_not_warned_about(
    key_in_data_dir, monkeypatch, tmp_path, capsys
):
    outside = tmp_path / "keys" / "master.key"
    monkeypatch.setenv("KEQUN_MASTER_KEY_FILE", str(outside))
    assert get_key_file() == outside
    call_command("keys", "status")
    out = capsys.readouterr().out
    assert str(outside) in out and "mv " not in out
    monkeypatch.setenv("KEQUN_KEY_FILE", "/ignored")  # the older name yields to the new one
    assert get_key_file() == outside
    monkeypatch.setenv("KEQUN_MASTER_KEY", "A" * 43 + "=")
    assert "KEQUN_MASTER_KEY" in describe_key_custody() and "mv " not in describe_key_custody()


def fill(n: int) -> None:
    for i in range(n):
        audit.record_event(audit.CHANGE, target_type="customers.customer", target_id=str(i))


def test_verify_pins_the_head_and_a_later_verify_catches_a_cut_off_end(audit_head_file, capsys):
    fill(5)
    call_command("audit", "verify")
    assert f"pinned in {audit_head_file}" in capsys.readouterr().out
    sequence, mac = audit_head_file.read_text().strip().split(":")
    assert AuditEntry.objects.get(sequence=int(sequence)).mac == mac
    assert audit_head_file.stat().st_mode & 0o077 == 0  # owner only
    call_command("audit", "verify")  # unchanged chain (plus the verify entry): passes, re-pins
    # Someone with database access cuts the end off: the chain alone still looks intact.
    statements = {"sqlite": guard.SQLITE_DROP, "postgresql": guard.POSTGRES_DROP}
    with connection.cursor() as cursor:
        for sql in statements[connection.vendor]:
            cursor.execute(sql)
        pinned = int(audit_head_file.read_text().split(":")[0])
        cursor.execute(f"DELETE FROM {guard.TABLE} WHERE sequence >= %s", [pinned - 1])
    assert audit.verify_chain().ok
    with pytest.raises(CommandError, match=r"\(deleted\)") as caught:
        call_command("audit", "verify")
    assert str(audit_head_file) in str(
        caught.value
    )  # and says which file to delete after a restore


def test_verify_without_a_head_file_prints_the_head_for_an_external_log(monkeypatch, capsys):
    monkeypatch.delenv("KEQUN_AUDIT_HEAD_FILE")
    monkeypatch.setenv("KEQUN_MASTER_KEY", "A" * 43 + "=")  # nowhere to put the file by default
    fill(2)
    call_command("audit", "verify")
    out = capsys.readouterr().out
    assert "external log" in out and "KEQUN_AUDIT_HEAD_FILE" in out


def test_a_broken_head_file_or_an_unwritable_one_is_a_one_line_error(
    audit_head_file, tmp_path, monkeypatch
):
    fill(1)
    audit_head_file.write_text("garbage\n")
    with pytest.raises(CommandError, match="not SEQUENCE:MAC"):
        call_command("audit", "verify")
    audit_head_file.unlink()
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("KEQUN_AUDIT_HEAD_FILE", str(blocker / "audit-head"))  # parent is a file
    with pytest.raises(CommandError, match="cannot read the audit head file"):
        call_command("audit", "verify")


def test_the_default_head_file_is_beside_the_key_file(monkeypatch, tmp_path):
    from kequn.security.audit.head import get_head_file

    monkeypatch.delenv("KEQUN_AUDIT_HEAD_FILE")
    monkeypatch.delenv("KEQUN_MASTER_KEY", raising=False)
    monkeypatch.setenv("KEQUN_MASTER_KEY_FILE", str(tmp_path / "secure" / "master.key"))
    assert get_head_file() == tmp_path / "secure" / "audit-head"
