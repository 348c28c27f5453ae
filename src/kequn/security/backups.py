"""Encrypted, consistent database backups: create, verify, restore and prune.

A backup file (`kequn-YYYYmmdd-HHMMSS.kqbackup`) holds:
  MAGIC | header length (4 bytes) | header (JSON, readable, authenticated) | chunks
Each chunk is AES-256-GCM with the key derive_key("backup"); its nonce is the file's random
prefix plus the chunk number, and its associated data binds the header, the chunk number and
a last-chunk flag, so a reordered, altered, truncated or extended file fails to decrypt.

Inside, the plaintext is a sequence of records (kind byte, length, bytes): the manifest
(format version, database kind, creation time, Kequn version, row count and checksum of every
table), then the database payload in blocks, then a trailer with the payload's size and
SHA-256. The payload is a SQLite file made with the online backup API, or a pg_dump archive
(custom format) taken from the same snapshot the checksums were computed on.

The master key is not in the backup: keep a copy of it somewhere else, or the backup cannot
be restored (see kequn.security.keys).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import shutil
import sqlite3
import struct
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.db import connection
from tqdm import tqdm

from kequn.security.keys import derive_key

MAGIC = b"KEQUNBK\x01"
FORMAT_VERSION = 1
CHUNK_BYTES = 1 << 20
MAX_HEADER_BYTES = 64 * 1024
SUFFIX = ".kqbackup"
NAME_PATTERN = re.compile(r"^kequn-\d{8}-\d{6}(-\d+)?\.kqbackup$")
REC_MANIFEST, REC_DATA, REC_TRAILER = b"M", b"D", b"E"


class BackupError(Exception):
    """A backup cannot be made, read or restored; the message names the file and the fix."""


# --------------------------------------------------------------------------- settings


def get_backup_dir() -> Path:
    """Return KEQUN_BACKUP_DIR, or backups/ in the data directory."""
    value = os.environ.get("KEQUN_BACKUP_DIR")
    if value:
        return Path(value).expanduser().resolve()
    from kequn.conf import get_data_dir

    return get_data_dir() / "backups"


def get_keep_count() -> int:
    """Return KEQUN_BACKUP_KEEP (how many scheduled backups to keep, default 7)."""
    text = os.environ.get("KEQUN_BACKUP_KEEP", "7")
    if not text.strip().isdigit() or int(text) < 1:
        raise BackupError(f"KEQUN_BACKUP_KEEP={text!r} must be a whole number of 1 or more")
    return int(text)


def _key() -> bytes:
    return derive_key("backup")


def _key_id(key: bytes) -> str:
    return hmac.new(key, b"kequn-backup-key-id", hashlib.sha256).hexdigest()[:16]


def database_kind(db: dict | None = None) -> str:
    """Return "sqlite" or "postgresql" for a Django database settings dict."""
    engine = (db or settings.DATABASES["default"])["ENGINE"]
    if engine.endswith("sqlite3"):
        return "sqlite"
    if "postgresql" in engine:
        return "postgresql"
    raise BackupError(f"backups support SQLite and PostgreSQL, not {engine}")


# --------------------------------------------------------------------------- checksums


@dataclass
class TableSum:
    rows: int
    checksum: str


def _digest_rows(cursor, query: str) -> TableSum:
    cursor.execute(query)
    digest, count = hashlib.sha256(), 0
    while rows := cursor.fetchmany(2000):
        for row in rows:
            digest.update(repr(tuple(row)).encode())
            digest.update(b"\n")
        count += len(rows)
    return TableSum(count, digest.hexdigest())


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


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
            info = cursor.execute(f"PRAGMA table_info({_quote(table)})").fetchall()
            keys = [r[1] for r in sorted(info, key=lambda r: r[5]) if r[5]]
            order = ", ".join(_quote(k) for k in keys) or ", ".join(
                str(i + 1) for i in range(len(info))
            )
            sums[table] = _digest_rows(cursor, f"SELECT * FROM {_quote(table)} ORDER BY {order}")
        return sums
    finally:
        db.close()


def pg_connect(db: dict, **extra):
    """Open a plain psycopg connection (UTC session) to a Django PostgreSQL database."""
    import psycopg

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
            [_quote(table)],
        )
        keys = [r[0] for r in cursor.fetchall()]
        if keys:
            order = ", ".join(_quote(k) for k in keys)
        else:
            cursor.execute(f"SELECT * FROM {_quote(table)} LIMIT 0")
            order = ", ".join(str(i + 1) for i in range(len(cursor.description)))
        sums[table] = _digest_rows(cursor, f"SELECT * FROM {_quote(table)} ORDER BY {order}")
    return sums


# --------------------------------------------------------------------------- encryption


class EncryptingWriter:
    """Write plaintext records; encrypt them in chunks into the backup file."""

    def __init__(self, out: IO[bytes], header: dict, key: bytes):
        self.out = out
        self.header_bytes = json.dumps(header, sort_keys=True).encode()
        self.prefix = bytes.fromhex(header["nonce"])
        self.header_digest = hashlib.sha256(self.header_bytes).digest()
        self.aead = AESGCM(key)
        self.buffer = bytearray()
        self.counter = 0
        out.write(MAGIC + struct.pack(">I", len(self.header_bytes)) + self.header_bytes)

    def record(self, kind: bytes, payload: bytes) -> None:
        self.buffer += kind + struct.pack(">I", len(payload)) + payload
        while len(self.buffer) >= CHUNK_BYTES:
            self._seal(bytes(self.buffer[:CHUNK_BYTES]), last=False)
            del self.buffer[:CHUNK_BYTES]

    def close(self) -> None:
        self._seal(bytes(self.buffer), last=True)
        self.buffer.clear()

    def _seal(self, plain: bytes, last: bool) -> None:
        nonce = self.prefix + struct.pack(">I", self.counter)
        aad = self.header_digest + struct.pack(">Q?", self.counter, last)
        sealed = self.aead.encrypt(nonce, plain, aad)
        self.out.write(struct.pack(">I", len(sealed)) + sealed)
        self.counter += 1


def read_header(path: Path) -> tuple[dict, int]:
    """Return a backup file's readable header and where its chunks start."""
    try:
        with open(path, "rb") as fh:
            start = fh.read(len(MAGIC) + 4)
            if len(start) < len(MAGIC) + 4 or start[: len(MAGIC)] != MAGIC:
                raise BackupError(f"{path}: not a Kequn backup file (wrong magic bytes)")
            (size,) = struct.unpack(">I", start[len(MAGIC) :])
            if size > MAX_HEADER_BYTES:
                raise BackupError(f"{path}: damaged header (length {size})")
            raw = fh.read(size)
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        header = json.loads(raw)
        header["_raw"] = raw
        if header.get("format") != FORMAT_VERSION:
            raise BackupError(
                f"{path}: backup format {header.get('format')!r} is not supported by this "
                f"Kequn (format {FORMAT_VERSION}); restore it with the version that made it"
            )
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        raise BackupError(f"{path}: damaged header (not JSON)") from None
    return header, len(MAGIC) + 4 + size


def _decrypted_chunks(path: Path, key: bytes, progress: bool) -> Iterator[bytes]:
    header, offset = read_header(path)
    if header.get("key_id") != _key_id(key):
        raise BackupError(
            f"{path}: made with a different master key; set KEQUN_MASTER_KEY or KEQUN_KEY_FILE "
            "to the key of the installation that made it"
        )
    aead = AESGCM(key)
    prefix = bytes.fromhex(header["nonce"])
    header_digest = hashlib.sha256(header["_raw"]).digest()
    total = path.stat().st_size
    counter = 0
    with (
        open(path, "rb") as fh,
        tqdm(total=total, initial=offset, unit="B", unit_scale=True, disable=not progress) as bar,
    ):
        fh.seek(offset)
        while True:
            size_bytes = fh.read(4)
            if len(size_bytes) < 4:
                raise BackupError(
                    f"{path}: truncated after chunk {counter} (the last chunk is missing); "
                    "use another copy of the backup"
                )
            (size,) = struct.unpack(">I", size_bytes)
            sealed = fh.read(size)
            if len(sealed) < size or size > CHUNK_BYTES + 1024:
                raise BackupError(f"{path}: truncated inside chunk {counter}")
            nonce = prefix + struct.pack(">I", counter)
            plain = None
            for last in (False, True):
                aad = header_digest + struct.pack(">Q?", counter, last)
                try:
                    plain = aead.decrypt(nonce, sealed, aad)
                    break
                except InvalidTag:
                    continue
            if plain is None:
                raise BackupError(
                    f"{path}: chunk {counter} fails authentication: the file was altered or "
                    "damaged; use another copy of the backup"
                )
            bar.update(4 + size)
            yield plain
            counter += 1
            if last:
                if fh.read(1):
                    raise BackupError(f"{path}: unexpected data after the last chunk")
                return


def _records(path: Path, key: bytes, progress: bool) -> Iterator[tuple[bytes, bytes]]:
    buffer = bytearray()
    for chunk in _decrypted_chunks(path, key, progress):
        buffer += chunk
        while len(buffer) >= 5:
            (size,) = struct.unpack(">I", buffer[1:5])
            if len(buffer) < 5 + size:
                break
            yield bytes(buffer[:1]), bytes(buffer[5 : 5 + size])
            del buffer[: 5 + size]
    if buffer:
        raise BackupError(f"{path}: the last record is incomplete")


# --------------------------------------------------------------------------- reading


@dataclass
class BackupContents:
    path: Path
    header: dict
    manifest: dict = field(default_factory=dict)
    payload_size: int = 0


def read_backup(
    path: Path, sink: Callable[[bytes], None] | None = None, progress: bool = False
) -> BackupContents:
    """Decrypt a backup, check its structure and payload digest; feed the payload to sink."""
    path = Path(path)
    header, _ = read_header(path)
    contents = BackupContents(path, header)
    digest, size, trailer = hashlib.sha256(), 0, None
    for kind, data in _records(path, _key(), progress):
        if kind == REC_MANIFEST and not contents.manifest:
            contents.manifest = json.loads(data)
        elif kind == REC_DATA and contents.manifest and trailer is None:
            digest.update(data)
            size += len(data)
            if sink:
                sink(data)
        elif kind == REC_TRAILER and trailer is None:
            trailer = json.loads(data)
        else:
            raise BackupError(f"{path}: records out of order; the file is damaged")
    if trailer is None or not contents.manifest:
        raise BackupError(f"{path}: incomplete backup (no manifest or no trailer)")
    if trailer.get("size") != size or trailer.get("sha256") != digest.hexdigest():
        raise BackupError(f"{path}: the database payload does not match its recorded digest")
    contents.payload_size = size
    return contents


def _compare(path: Path, expected: dict, actual: dict[str, TableSum], where: str) -> None:
    wanted = {t: (v["rows"], v["checksum"]) for t, v in expected.items()}
    got = {t: (v.rows, v.checksum) for t, v in actual.items()}
    for table in sorted(set(wanted) | set(got)):
        if table not in got:
            raise BackupError(f"{path}: table {table} is missing from {where}")
        if table not in wanted:
            raise BackupError(f"{path}: {where} has a table {table} the manifest does not list")
        if wanted[table] != got[table]:
            raise BackupError(
                f"{path}: table {table} in {where} has {got[table][0]} rows, checksum "
                f"{got[table][1][:12]}…; the manifest says {wanted[table][0]} rows, "
                f"{wanted[table][1][:12]}…"
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
            _compare(path, contents.manifest["tables"], sqlite_table_sums(copy), "the backup")
        return contents
    return read_backup(path, None, progress)


# --------------------------------------------------------------------------- creating


def _header(kind: str, method: str, key: bytes, created: datetime) -> dict:
    from kequn import __version__

    return {
        "format": FORMAT_VERSION,
        "kind": kind,
        "method": method,
        "created_at": created.isoformat(),
        "kequn_version": __version__,
        "key_id": _key_id(key),
        "nonce": os.urandom(8).hex(),
        "chunk_bytes": CHUNK_BYTES,
    }


def _manifest(header: dict, sums: dict[str, TableSum], db_name: str) -> dict:
    return {
        "format": FORMAT_VERSION,
        "kind": header["kind"],
        "method": header["method"],
        "created_at": header["created_at"],
        "kequn_version": header["kequn_version"],
        "database": db_name,
        "tables": {t: {"rows": s.rows, "checksum": s.checksum} for t, s in sums.items()},
    }


def _new_path(directory: Path, created: datetime) -> Path:
    stem = f"kequn-{created.strftime('%Y%m%d-%H%M%S')}"
    path, n = directory / f"{stem}{SUFFIX}", 1
    while path.exists():
        path, n = directory / f"{stem}-{n}{SUFFIX}", n + 1
    return path


def _write_stream(path: Path, header: dict, manifest: dict, chunks: Iterator[bytes]) -> None:
    """Write the encrypted file via a temporary name, so a crash leaves no half backup."""
    partial = path.with_name(f".{path.name}.partial")
    digest, size = hashlib.sha256(), 0
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            writer = EncryptingWriter(out, header, _key())
            writer.record(REC_MANIFEST, json.dumps(manifest, sort_keys=True).encode())
            for block in chunks:
                digest.update(block)
                size += len(block)
                writer.record(REC_DATA, block)
            trailer = {"size": size, "sha256": digest.hexdigest()}
            writer.record(REC_TRAILER, json.dumps(trailer).encode())
            writer.close()
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _file_blocks(path: Path, progress: bool, desc: str) -> Iterator[bytes]:
    with (
        open(path, "rb") as fh,
        tqdm(
            total=path.stat().st_size, unit="B", unit_scale=True, desc=desc, disable=not progress
        ) as bar,
    ):
        while block := fh.read(CHUNK_BYTES):
            bar.update(len(block))
            yield block


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
    path = _new_path(directory, created)
    db = settings.DATABASES["default"]
    kind = database_kind(db)
    if kind == "sqlite":
        _create_sqlite(path, db, created, progress)
    else:
        _create_postgresql(path, db, created, progress, method)
    return path


def _create_sqlite(path: Path, db: dict, created: datetime, progress: bool) -> None:
    header = _header("sqlite", "sqlite-backup-api", _key(), created)
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
        manifest = _manifest(header, sqlite_table_sums(snapshot, progress), str(db["NAME"]))
        _write_stream(path, header, manifest, _file_blocks(snapshot, progress, "encrypt"))


def find_pg_tool(name: str, server_version: int) -> str | None:
    """Return the path of pg_dump/pg_restore if its major version can handle the server."""
    tool = shutil.which(name)
    if not tool:
        return None
    try:
        out = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=20)
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
    return args + ["-d", str(db["NAME"])]


def _create_postgresql(
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
            header = _header("postgresql", "copy", _key(), created)
            manifest = _manifest(header, sums, str(db["NAME"]))
            with conn.cursor() as cursor:
                cursor.execute("SELECT app || '.' || name FROM django_migrations ORDER BY 1")
                manifest["migrations"] = [r[0] for r in cursor.fetchall()]
            _write_stream(path, header, manifest, _copy_payload(conn, progress))
            conn.execute("COMMIT")
            return
        if tool is None:
            raise BackupError(
                "pg_dump of the server's major version (or newer) is not on PATH: install "
                "postgresql-client (Debian: apt-get install postgresql-client)"
            )
        header = _header("postgresql", "pg_dump-custom", _key(), created)
        manifest = _manifest(header, sums, str(db["NAME"]))
        command = [tool, "--format=custom", "--no-owner", f"--snapshot={snapshot}", *_pg_args(db)]
        proc = subprocess.Popen(
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
            _write_stream(path, header, manifest, blocks())
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
            names = ", ".join(_quote(c) for c in columns)
            with cursor.copy(f"COPY {_quote(table)} ({names}) TO STDOUT (FORMAT binary)") as copy:
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
        names = ", ".join(_quote(c) for c in head["columns"])
        self.head = head
        self.stack = ExitStack()
        self.copy = self.stack.enter_context(
            self.cursor.copy(f"COPY {_quote(table)} ({names}) FROM STDIN (FORMAT binary)")
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
                    "SELECT pg_get_serial_sequence(%s, %s)", [_quote(table), column]
                )
                sequence = self.cursor.fetchone()[0]
                if sequence:
                    self.cursor.execute(
                        f"SELECT setval(%s, COALESCE(MAX({_quote(column)}), 0) + 1, false) "
                        f"FROM {_quote(table)}",
                        [sequence],
                    )


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
        return _restore_sqlite(path, db, progress)
    return _restore_postgresql(path, db, force, progress)


def _restore_sqlite(path: Path, db: dict, progress: bool) -> BackupContents:
    target = Path(str(db["NAME"]))
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kequn-restore-", dir=target.parent) as tmp:
        copy = Path(tmp) / "db.sqlite3"
        with open(copy, "wb") as out:
            contents = read_backup(path, out.write, progress)
        _compare(path, contents.manifest["tables"], sqlite_table_sums(copy), "the backup")
        source, dest = sqlite3.connect(copy), sqlite3.connect(target, timeout=30)
        try:
            # Page-by-page copy into the live file: works with WAL and other open connections.
            source.backup(dest)
        finally:
            source.close()
            dest.close()
    _compare(path, contents.manifest["tables"], sqlite_table_sums(target), str(target))
    return contents


def _restore_postgresql(path: Path, db: dict, force: bool, progress: bool) -> BackupContents:
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
            proc = subprocess.Popen(
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
    _compare(path, contents.manifest["tables"], sums, f"database {db['NAME']}")
    return contents


def _restore_postgresql_copy(path: Path, db: dict, progress: bool) -> BackupContents:
    """Create the schema with Django's migrations, then load every table's COPY data."""
    from django.core.management import call_command

    if db is not settings.DATABASES["default"] and db != settings.DATABASES["default"]:
        raise BackupError("a COPY backup can only be restored into the configured database")
    from django.db.migrations.loader import MigrationLoader

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
            # the rows were consistent when they were copied out.
            cursor.execute("SET session_replication_role = replica")
            tables = pg_tables(cursor)
            if tables:
                cursor.execute(
                    f"TRUNCATE {', '.join(_quote(t) for t in tables)} RESTART IDENTITY CASCADE"
                )
        loader = CopyLoader(conn, path)
        try:
            contents = read_backup(path, loader.feed, progress)
            loader.finish()
        except BaseException as exc:
            loader.abort(exc)
            raise
        conn.execute("SET session_replication_role = DEFAULT")
        conn.commit()
        with conn.cursor() as cursor:
            sums = pg_table_sums(cursor, progress)
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()
    _compare(path, contents.manifest["tables"], sums, f"database {db['NAME']}")
    return contents


# --------------------------------------------------------------------------- listing, pruning


def list_backups(directory: Path | None = None) -> list[tuple[Path, dict | None, str]]:
    """List backup files, newest first, with their readable header (None if unreadable)."""
    directory = Path(directory) if directory else get_backup_dir()
    if not directory.is_dir():
        return []
    found = []
    for path in sorted(directory.glob(f"*{SUFFIX}"), reverse=True):
        try:
            header, _ = read_header(path)
            header.pop("_raw", None)
            found.append((path, header, ""))
        except BackupError as exc:
            found.append((path, None, str(exc)))
    return found


def prune_backups(keep: int, directory: Path | None = None) -> list[Path]:
    """Delete all but the newest `keep` backups made by Kequn's naming; return those deleted."""
    directory = Path(directory) if directory else get_backup_dir()
    if not directory.is_dir():
        return []
    ours = sorted(
        (p for p in directory.iterdir() if NAME_PATTERN.match(p.name)),
        key=lambda p: (p.stat().st_mtime, p.name),
    )
    doomed = ours[:-keep] if keep > 0 else ours
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


def record_backup_event(step: str, path: Path) -> None:
    """Append a backup or restore to the audit trail."""
    from kequn.security.audit import services as audit

    audit.record_event(
        audit.BACKUP, target_type="backup", target_id=Path(path).name, detail={"step": step}
    )


def run_scheduled_backup() -> dict:
    """Make a backup into KEQUN_BACKUP_DIR and keep only the newest KEQUN_BACKUP_KEEP."""
    path = create_backup()
    removed = prune_backups(get_keep_count())
    record_backup_event("scheduled", path)
    return {"backup": str(path), "removed": [p.name for p in removed]}
