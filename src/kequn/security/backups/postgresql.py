"""PostgreSQL backups: pg_dump (custom format) or a logical COPY dump of one snapshot."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from tqdm import tqdm

from kequn.security.backups.fileformat import (
    CHUNK_BYTES,
    BackupContents,
    BackupError,
    TableSum,
    compare_sums,
    digest_rows,
    get_backup_key,
    make_header,
    make_manifest,
    quote_name,
    read_backup,
    read_header,
    write_backup_file,
)


def pg_connect(db: dict, **extra):
    """Open a plain psycopg connection (UTC session) to a Django PostgreSQL database."""
    import psycopg  # noqa: PLC0415 -- installed only where PostgreSQL is used

    params = {
        "dbname": db["NAME"],
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
        "options": "-c TimeZone=UTC",
        **extra,
    }
    try:
        return psycopg.connect(**{k: v for k, v in params.items() if v is not None})
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BackupError(f"cannot connect to PostgreSQL database {db['NAME']}: {first}") from None


def pg_tables(cursor) -> list[str]:
    """Return the base tables of the public schema."""
    cursor.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name"
    )
    return [r[0] for r in cursor.fetchall()]


def pg_table_sums(cursor, progress: bool = False) -> dict[str, TableSum]:
    """Count and checksum every public table, rows in primary-key order."""
    sums = {}
    for table in tqdm(pg_tables(cursor), desc="checksums", unit="table", disable=not progress):
        cursor.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary "
            "ORDER BY array_position(i.indkey, a.attnum)",
            [quote_name(table)],
        )
        keys = [r[0] for r in cursor.fetchall()]
        if keys:
            order = ", ".join(quote_name(k) for k in keys)
        else:
            cursor.execute(f"SELECT * FROM {quote_name(table)} LIMIT 0")  # noqa: S608 -- catalogue name
            order = ", ".join(str(i + 1) for i in range(len(cursor.description)))
        query = f"SELECT * FROM {quote_name(table)} ORDER BY {order}"  # noqa: S608 -- catalogue names
        sums[table] = digest_rows(cursor, query)
    return sums


def find_pg_tool(name: str, server_version: int) -> str | None:
    """Return the path of pg_dump/pg_restore if its major version can handle the server."""
    tool = shutil.which(name)
    if not tool:
        return None
    try:
        # The tool was found on PATH by its name; no shell, no input in the arguments.
        out = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=20)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"(\d+)(?:\.\d+)?", out.stdout)
    if not match or int(match.group(1)) < server_version // 10000:
        return None
    return tool


def _pg_env(db: dict) -> dict:
    env = dict(os.environ)
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    return env


def _pg_args(db: dict) -> list[str]:
    args = []
    if db.get("HOST"):
        args += ["-h", str(db["HOST"])]
    if db.get("PORT"):
        args += ["-p", str(db["PORT"])]
    if db.get("USER"):
        args += ["-U", str(db["USER"])]
    return [*args, "-d", str(db["NAME"])]


def create_postgresql_backup(
    path: Path, db: dict, created: datetime, progress: bool, method: str = "auto"
) -> None:
    conn = pg_connect(db)
    try:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        with conn.cursor() as cursor:
            # One snapshot for the checksums and for the dump: they describe the same data.
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot = cursor.fetchone()[0]
            sums = pg_table_sums(cursor, progress)
        tool = None if method == "copy" else find_pg_tool("pg_dump", conn.info.server_version)
        if tool is None and method != "pg_dump":
            header = make_header("postgresql", "copy", get_backup_key(), created)
            manifest = make_manifest(header, sums, str(db["NAME"]))
            with conn.cursor() as cursor:
                cursor.execute("SELECT app || '.' || name FROM django_migrations ORDER BY 1")
                manifest["migrations"] = [r[0] for r in cursor.fetchall()]
            write_backup_file(path, header, manifest, _copy_payload(conn, progress))
            conn.execute("COMMIT")
            return
        if tool is None:
            raise BackupError(
                "pg_dump of the server's major version (or newer) is not on PATH: install "
                "postgresql-client (Debian: apt-get install postgresql-client)"
            )
        header = make_header("postgresql", "pg_dump-custom", get_backup_key(), created)
        manifest = make_manifest(header, sums, str(db["NAME"]))
        command = [tool, "--format=custom", "--no-owner", f"--snapshot={snapshot}", *_pg_args(db)]
        proc = subprocess.Popen(  # noqa: S603 -- pg_dump from PATH, arguments from settings
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_pg_env(db)
        )

        def blocks() -> Iterator[bytes]:
            with tqdm(unit="B", unit_scale=True, desc="pg_dump", disable=not progress) as bar:
                while block := proc.stdout.read(CHUNK_BYTES):
                    bar.update(len(block))
                    yield block
            error = proc.stderr.read().decode(errors="replace").strip()
            if proc.wait() != 0:
                raise BackupError(f"pg_dump failed: {error.splitlines()[-1] if error else '?'}")

        try:
            write_backup_file(path, header, manifest, blocks())
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        conn.execute("COMMIT")
    finally:
        conn.close()


def _pg_columns(cursor, table: str) -> list[str]:
    cursor.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
        "AND table_name = %s ORDER BY ordinal_position",
        [table],
    )
    return [r[0] for r in cursor.fetchall()]


def _copy_payload(conn, progress: bool) -> Iterator[bytes]:
    """Yield every table as COPY binary data, framed: head, length-prefixed blocks, 0."""
    with conn.cursor() as cursor:
        tables = pg_tables(cursor)
        for table in tqdm(tables, desc="copy", unit="table", disable=not progress):
            columns = _pg_columns(cursor, table)
            head = json.dumps({"table": table, "columns": columns}).encode()
            yield struct.pack(">I", len(head)) + head
            names = ", ".join(quote_name(c) for c in columns)
            with cursor.copy(
                f"COPY {quote_name(table)} ({names}) TO STDOUT (FORMAT binary)"
            ) as copy:
                for block in copy:
                    if block:
                        yield struct.pack(">I", len(block)) + bytes(block)
            yield struct.pack(">I", 0)


class CopyLoader:
    """Feed a COPY payload (see _copy_payload) into the tables of an open connection."""

    def __init__(self, conn, path: Path):
        self.cursor = conn.cursor()
        self.path = path
        self.buffer = bytearray()
        self.head: dict | None = None
        self.copy = None
        self.known = set(pg_tables(self.cursor))
        self.loaded: list[str] = []
        self.stack = ExitStack()

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 4:
            (size,) = struct.unpack(">I", self.buffer[:4])
            if len(self.buffer) < 4 + size:
                return
            body = bytes(self.buffer[4 : 4 + size])
            del self.buffer[: 4 + size]
            if self.head is None:
                self._start(json.loads(body))
            elif size == 0:
                self.stack.close()  # ends this table's COPY
                self.loaded.append(self.head["table"])
                self.head, self.copy = None, None
            else:
                self.copy.write(body)

    def _start(self, head: dict) -> None:
        table = head["table"]
        if table not in self.known:
            raise BackupError(
                f"{self.path}: table {table} is not in this Kequn's schema; restore the backup "
                "with the Kequn version that made it"
            )
        names = ", ".join(quote_name(c) for c in head["columns"])
        self.head = head
        self.stack = ExitStack()
        self.copy = self.stack.enter_context(
            self.cursor.copy(f"COPY {quote_name(table)} ({names}) FROM STDIN (FORMAT binary)")
        )

    def abort(self, exc: BaseException) -> None:
        """End an open COPY so the connection can roll back."""
        if self.copy is not None:
            # The original error is the one to report, not a failure to end the COPY.
            with suppress(Exception):
                self.stack.__exit__(type(exc), exc, exc.__traceback__)
            self.copy = None

    def finish(self) -> None:
        if self.head is not None or self.buffer:
            raise BackupError(f"{self.path}: the table data ends in the middle of a table")
        # Identity columns continue after the highest restored id.
        for table in self.loaded:
            for column in _pg_columns(self.cursor, table):
                self.cursor.execute(
                    "SELECT pg_get_serial_sequence(%s, %s)", [quote_name(table), column]
                )
                sequence = self.cursor.fetchone()[0]
                if sequence:
                    self.cursor.execute(
                        f"SELECT setval(%s, COALESCE(MAX({quote_name(column)}), 0) + 1, false) "  # noqa: S608 -- catalogue names
                        f"FROM {quote_name(table)}",
                        [sequence],
                    )


def restore_postgresql_backup(path: Path, db: dict, force: bool, progress: bool) -> BackupContents:
    conn = pg_connect(db, autocommit=True)
    try:
        server_version = conn.info.server_version
        if force:
            # Empty the public schema: the dump's tables come back exactly as they were.
            conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
            conn.execute("CREATE SCHEMA public")
    finally:
        conn.close()
    header, _ = read_header(path)
    if header.get("method") == "copy":
        return _restore_postgresql_copy(path, db, progress)
    tool = find_pg_tool("pg_restore", server_version)
    if tool is None:
        raise BackupError(
            "pg_restore of the server's major version (or newer) is not on PATH: install "
            "postgresql-client (Debian: apt-get install postgresql-client)"
        )
    with tempfile.TemporaryDirectory(prefix="kequn-restore-") as tmp:
        log = Path(tmp) / "pg_restore.log"
        with open(log, "wb") as errors:
            proc = subprocess.Popen(  # noqa: S603 -- pg_restore from PATH, arguments from settings
                [tool, "--no-owner", "--no-privileges", "--exit-on-error", *_pg_args(db)],
                stdin=subprocess.PIPE,
                stderr=errors,
                env=_pg_env(db),
            )
            try:
                contents = read_backup(path, proc.stdin.write, progress)
                proc.stdin.close()
            except BrokenPipeError:
                contents = None  # pg_restore stopped early; its log says why
            except BaseException:
                proc.kill()
                proc.wait()
                raise
            status = proc.wait()
        if status != 0 or contents is None:
            lines = log.read_text(errors="replace").strip().splitlines()
            raise BackupError(f"pg_restore failed: {lines[-1] if lines else status}")
    conn = pg_connect(db)
    try:
        with conn.cursor() as cursor:
            sums = pg_table_sums(cursor, progress)
    finally:
        conn.close()
    compare_sums(path, contents.manifest["tables"], sums, f"database {db['NAME']}")
    return contents


def _restore_postgresql_copy(path: Path, db: dict, progress: bool) -> BackupContents:
    """Create the schema with Django's migrations, then load every table's COPY data."""
    if db is not settings.DATABASES["default"] and db != settings.DATABASES["default"]:
        raise BackupError("a COPY backup can only be restored into the configured database")

    manifest = read_backup(path).manifest  # decrypt once to learn the schema it needs
    wanted = set(manifest.get("migrations", []))
    ours = {f"{app}.{name}" for app, name in MigrationLoader(None).disk_migrations}
    if wanted != ours:
        first = sorted(wanted ^ ours)[0]
        raise BackupError(
            f"{path}: made with another database schema (migration {first} differs from this "
            "Kequn's); restore it with the Kequn version that made it"
        )
    call_command("migrate", verbosity=0, interactive=False)
    connection.close()
    conn = pg_connect(db)
    try:
        with conn.cursor() as cursor:
            # Replica mode skips foreign-key and append-only triggers while the rows go in;
            # the rows were consistent when they were copied out. Triggers that must fire
            # even then (ENABLE ALWAYS: journals of derived data) stand down on
            # kequn.restoring, as the backup holds what they would write.
            cursor.execute("SET session_replication_role = replica")
            cursor.execute("SET kequn.restoring = 'on'")
            tables = pg_tables(cursor)
            if tables:
                cursor.execute(
                    f"TRUNCATE {', '.join(quote_name(t) for t in tables)} RESTART IDENTITY CASCADE"
                )
        loader = CopyLoader(conn, path)
        try:
            contents = read_backup(path, loader.feed, progress)
            loader.finish()
        except BaseException as exc:
            loader.abort(exc)
            raise
        conn.execute("SET session_replication_role = DEFAULT")
        conn.execute("RESET kequn.restoring")
        conn.commit()
        with conn.cursor() as cursor:
            sums = pg_table_sums(cursor, progress)
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()
    compare_sums(path, contents.manifest["tables"], sums, f"database {db['NAME']}")
    return contents
