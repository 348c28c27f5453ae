"""The backup file: its settings, table checksums, encryption and record format.

A backup file (`kequn-YYYYmmdd-HHMMSS.kqbackup`) holds:
  MAGIC | header length (4 bytes) | header (JSON, readable, authenticated) | chunks
Each chunk is AES-256-GCM with the key derive_key("backup"); its nonce is the file's random
prefix plus the chunk number, and its associated data binds the header, the chunk number and
a last-chunk flag, so a reordered, altered, truncated or extended file fails to decrypt.

Inside, the plaintext is a sequence of records (kind byte, length, bytes): the manifest
(format version, database kind, creation time, Kequn version, row count and checksum of every
table), then the database payload in blocks, then a trailer with the payload's size and
SHA-256.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from tqdm import tqdm

from kequn import __version__
from kequn.conf import get_data_dir, read_env
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
    value = read_env("KEQUN_BACKUP_DIR")
    if value:
        return Path(value).expanduser().resolve()
    return get_data_dir() / "backups"


def get_keep_count() -> int:
    """Return KEQUN_BACKUP_KEEP (how many scheduled backups to keep, default 7)."""
    text = read_env("KEQUN_BACKUP_KEEP", "7")
    if not text.strip().isdigit() or int(text) < 1:
        raise BackupError(f"KEQUN_BACKUP_KEEP={text!r} must be a whole number of 1 or more")
    return int(text)


def get_backup_key() -> bytes:
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


def digest_rows(cursor, query: str) -> TableSum:
    cursor.execute(query)
    digest, count = hashlib.sha256(), 0
    while rows := cursor.fetchmany(2000):
        for row in rows:
            digest.update(repr(tuple(row)).encode())
            digest.update(b"\n")
        count += len(rows)
    return TableSum(count, digest.hexdigest())


def quote_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


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
    for kind, data in _records(path, get_backup_key(), progress):
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


def compare_sums(path: Path, expected: dict, actual: dict[str, TableSum], where: str) -> None:
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


# --------------------------------------------------------------------------- creating


def make_header(kind: str, method: str, key: bytes, created: datetime) -> dict:
    """Return the readable, authenticated header of a new backup."""
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


def make_manifest(header: dict, sums: dict[str, TableSum], db_name: str) -> dict:
    return {
        "format": FORMAT_VERSION,
        "kind": header["kind"],
        "method": header["method"],
        "created_at": header["created_at"],
        "kequn_version": header["kequn_version"],
        "database": db_name,
        "tables": {t: {"rows": s.rows, "checksum": s.checksum} for t, s in sums.items()},
    }


def make_backup_path(directory: Path, created: datetime) -> Path:
    stem = f"kequn-{created.strftime('%Y%m%d-%H%M%S')}"
    path, n = directory / f"{stem}{SUFFIX}", 1
    while path.exists():
        path, n = directory / f"{stem}-{n}{SUFFIX}", n + 1
    return path


def write_backup_file(path: Path, header: dict, manifest: dict, chunks: Iterator[bytes]) -> None:
    """Write the encrypted file via a temporary name, so a crash leaves no half backup."""
    partial = path.with_name(f".{path.name}.partial")
    digest, size = hashlib.sha256(), 0
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            writer = EncryptingWriter(out, header, get_backup_key())
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


def read_file_blocks(path: Path, progress: bool, desc: str) -> Iterator[bytes]:
    with (
        open(path, "rb") as fh,
        tqdm(
            total=path.stat().st_size, unit="B", unit_scale=True, desc=desc, disable=not progress
        ) as bar,
    ):
        while block := fh.read(CHUNK_BYTES):
            bar.update(len(block))
            yield block
