"""SQLite backups: a consistent image through the online backup API, restored page by page."""

from __future__ import annotations

import sqlite3
import tempfile
from datetime import datetime
from pathlib import Path

from django.db import connection
from tqdm import tqdm

from kequn.security.backups.fileformat import (
    BackupContents,
    TableSum,
    compare_sums,
    digest_rows,
    get_backup_key,
    make_header,
    make_manifest,
    quote_name,
    read_backup,
    read_file_blocks,
    write_backup_file,
)


def sqlite_table_sums(path: Path, progress: bool = False) -> dict[str, TableSum]:
    """Count and checksum every table of a SQLite file, rows in primary-key order."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        cursor = db.cursor()
        tables = [
            r[0]
            for r in cursor.execute(
                "SELECT name FROM sqlite_master WHERE type='table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        sums = {}
        for table in tqdm(tables, desc="checksums", unit="table", disable=not progress):
            info = cursor.execute(f"PRAGMA table_info({quote_name(table)})").fetchall()
            keys = [r[1] for r in sorted(info, key=lambda r: r[5]) if r[5]]
            order = ", ".join(quote_name(k) for k in keys) or ", ".join(
                str(i + 1) for i in range(len(info))
            )
            query = f"SELECT * FROM {quote_name(table)} ORDER BY {order}"  # noqa: S608 -- catalogue names
            sums[table] = digest_rows(cursor, query)
        return sums
    finally:
        db.close()


def create_sqlite_backup(path: Path, db: dict, created: datetime, progress: bool) -> None:
    header = make_header("sqlite", "sqlite-backup-api", get_backup_key(), created)
    with tempfile.TemporaryDirectory(prefix="kequn-backup-", dir=path.parent) as tmp:
        snapshot = Path(tmp) / "db.sqlite3"
        connection.ensure_connection()
        target = sqlite3.connect(snapshot)
        try:
            with tqdm(desc="snapshot", unit="page", disable=not progress) as bar:

                def step(status, remaining, total):
                    bar.total = total
                    bar.n = total - remaining
                    bar.refresh()

                # The online backup API copies a consistent image even while others write.
                connection.connection.backup(target, pages=4096, progress=step)
        finally:
            target.close()
        manifest = make_manifest(header, sqlite_table_sums(snapshot, progress), str(db["NAME"]))
        write_backup_file(path, header, manifest, read_file_blocks(snapshot, progress, "encrypt"))


def restore_sqlite_backup(path: Path, db: dict, progress: bool) -> BackupContents:
    target = Path(str(db["NAME"]))
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kequn-restore-", dir=target.parent) as tmp:
        copy = Path(tmp) / "db.sqlite3"
        with open(copy, "wb") as out:
            contents = read_backup(path, out.write, progress)
        compare_sums(path, contents.manifest["tables"], sqlite_table_sums(copy), "the backup")
        source, dest = sqlite3.connect(copy), sqlite3.connect(target, timeout=30)
        try:
            # Page-by-page copy into the live file: works with WAL and other open connections.
            source.backup(dest)
        finally:
            source.close()
            dest.close()
    compare_sums(path, contents.manifest["tables"], sqlite_table_sums(target), str(target))
    return contents
