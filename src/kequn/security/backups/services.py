"""Create, verify and restore backups of the configured database, whichever kind it is."""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.db import connection

from kequn.security.actors import Actor
from kequn.security.backups.fileformat import (
    BackupContents,
    BackupError,
    compare_sums,
    database_kind,
    get_backup_dir,
    make_backup_path,
    read_backup,
    read_header,
)
from kequn.security.backups.postgresql import (
    create_postgresql_backup,
    pg_connect,
    pg_tables,
    restore_postgresql_backup,
)
from kequn.security.backups.sqlite import (
    create_sqlite_backup,
    restore_sqlite_backup,
    sqlite_table_sums,
)


def verify_backup(path: Path, progress: bool = False) -> BackupContents:
    """Decrypt a backup and check it whole; for SQLite also recount every table."""
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"{path}: no such backup file")
    header, _ = read_header(path)
    if header.get("kind") == "sqlite":
        with tempfile.TemporaryDirectory(prefix="kequn-verify-") as tmp:
            copy = Path(tmp) / "db.sqlite3"
            with open(copy, "wb") as out:
                contents = read_backup(path, out.write, progress)
            compare_sums(path, contents.manifest["tables"], sqlite_table_sums(copy), "the backup")
        return contents
    return read_backup(path, None, progress)


def create_backup(
    out_dir: Path | None = None, progress: bool = False, method: str = "auto"
) -> Path:
    """Snapshot the configured database into a new encrypted backup file; return its path.

    For PostgreSQL, method "auto" uses pg_dump when a compatible one is installed and a
    logical COPY dump otherwise; "pg_dump" and "copy" force one of them.
    """
    if method not in {"auto", "pg_dump", "copy"}:
        raise BackupError(f"unknown backup method {method!r}: use auto, pg_dump or copy")
    directory = Path(out_dir) if out_dir else get_backup_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
    except OSError as exc:
        raise BackupError(
            f"cannot use backup directory {directory}: {exc.strerror or exc}; "
            "set KEQUN_BACKUP_DIR or pass --out"
        ) from None
    created = datetime.now(UTC)
    path = make_backup_path(directory, created)
    db = settings.DATABASES["default"]
    kind = database_kind(db)
    if kind == "sqlite":
        create_sqlite_backup(path, db, created, progress)
    else:
        create_postgresql_backup(path, db, created, progress, method)
    return path


# --------------------------------------------------------------------------- restoring


def is_database_empty(db: dict | None = None) -> bool:
    """Tell whether the target database holds no tables yet."""
    db = db or settings.DATABASES["default"]
    if database_kind(db) == "sqlite":
        name = str(db["NAME"])
        if name == ":memory:" or "mode=memory" in name:
            raise BackupError("cannot restore into an in-memory SQLite database")
        path = Path(name)
        if not path.exists() or path.stat().st_size == 0:
            return True
        con = sqlite3.connect(path)
        try:
            return not con.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            ).fetchone()
        finally:
            con.close()
    conn = pg_connect(db)
    try:
        with conn.cursor() as cursor:
            return not pg_tables(cursor)
    finally:
        conn.close()


def restore_backup(
    path: Path, force: bool = False, progress: bool = False, db: dict | None = None
) -> BackupContents:
    """Restore a backup into the configured (empty) database, then check it against the manifest."""
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"{path}: no such backup file")
    db = db or settings.DATABASES["default"]
    header, _ = read_header(path)
    kind = database_kind(db)
    if header.get("kind") != kind:
        raise BackupError(
            f"{path}: is a {header.get('kind')} backup; the configured database is {kind} "
            "(set KEQUN_DATABASE_URL to a database of the same kind)"
        )
    if not is_database_empty(db) and not force:
        raise BackupError(
            f"the database {db['NAME']} is not empty: restore into an empty database, or pass "
            "--force to replace everything in it"
        )
    connection.close()  # Django's own connection must not hold the old database open
    if kind == "sqlite":
        return restore_sqlite_backup(path, db, progress)
    return restore_postgresql_backup(path, db, force, progress)


class AfterRestoreError(Exception):
    """A step that must follow a restore failed; the message says what to run by hand."""


# Steps run after a restore, registered by the apps above that keep state outside the
# database (privacy replays its erasure journal, so erased people do not come back).
_after_restore: list[Callable[..., str]] = []


def register_after_restore(step: Callable[..., str]) -> None:
    """Register a step run after every restore: step(by=actor) returns a line to report or ""."""
    if step not in _after_restore:
        _after_restore.append(step)


def run_after_restore(*, by: Actor | None) -> list[str]:
    """Run the registered after-restore steps in order; return their non-empty report lines."""
    return [line for step in _after_restore if (line := step(by=by))]
