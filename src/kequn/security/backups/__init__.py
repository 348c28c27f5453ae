"""Encrypted, consistent database backups: create, verify, restore and prune.

One module per job: fileformat (settings, checksums, encryption, the record format), sqlite
and postgresql (taking and loading a snapshot of each kind), services (create, verify,
restore, and the steps other apps register to follow a restore), schedule (list, prune, the
nightly job). The names below are the public surface the command and the job call.

The master key is not in the backup: keep a copy of it somewhere else, or the backup cannot
be restored (see kequn.security.keys).
"""

from kequn.security.backups.fileformat import (
    FORMAT_VERSION,
    BackupContents,
    BackupError,
    TableSum,
    database_kind,
    get_backup_dir,
    get_keep_count,
    read_backup,
    read_header,
)
from kequn.security.backups.postgresql import pg_connect, pg_table_sums
from kequn.security.backups.schedule import (
    list_backups,
    prune_backups,
    record_backup_event,
    run_scheduled_backup,
)
from kequn.security.backups.services import (
    AfterRestoreError,
    create_backup,
    is_database_empty,
    register_after_restore,
    restore_backup,
    run_after_restore,
    verify_backup,
)
from kequn.security.backups.sqlite import sqlite_table_sums

__all__ = [
    "FORMAT_VERSION",
    "AfterRestoreError",
    "BackupContents",
    "BackupError",
    "TableSum",
    "create_backup",
    "database_kind",
    "get_backup_dir",
    "get_keep_count",
    "is_database_empty",
    "list_backups",
    "pg_connect",
    "pg_table_sums",
    "prune_backups",
    "read_backup",
    "read_header",
    "record_backup_event",
    "register_after_restore",
    "restore_backup",
    "run_after_restore",
    "run_scheduled_backup",
    "sqlite_table_sums",
    "verify_backup",
]
