"""The erasure journal: erasures written outside the database, replayed after a restore.

A backup taken before an erasure still holds the person, so restoring it would bring them
back and roll back the suppression list. Each erasure therefore also appends one line to a
file beside the database (KEQUN_ERASURE_JOURNAL, default <data dir>/erasures.jsonl): when,
the request number, the erased records as (id, created at) and the suppression hashes —
keyed hashes and ids only, no personal values. Each line carries an HMAC under a key derived
from the master key, so an edited line is refused. `kequn backup restore` replays the
journal: the hashes go back on the suppression list and the records the backup still holds
are erased again. Records are matched on id and creation time together, so an entry never
erases an unrelated record that reuses an id in another database.

The line is written before the erasure's transaction commits: if that transaction then
fails, the replay completes an erasure the person did ask for, which is the safe side.
"""

from __future__ import annotations

import hmac
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from kequn.conf import get_data_dir, read_env
from kequn.security.keys import derive_key


class JournalError(Exception):
    """The journal cannot be read or trusted; the message names the file and line."""


def get_journal_path() -> Path:
    """Return KEQUN_ERASURE_JOURNAL, or erasures.jsonl in the data directory."""
    value = read_env("KEQUN_ERASURE_JOURNAL")
    if value:
        return Path(value).expanduser().resolve()
    return get_data_dir() / "erasures.jsonl"


def _sign(body: str) -> str:
    return hmac.digest(derive_key("erasure-journal"), body.encode(), "sha256").hex()


def append_erasure(
    records: list[tuple[int, datetime]], hashes: dict[str, str], request_ref: int | None
) -> None:
    """Append one erasure (records as (id, created at), suppression hash → kind) and sync it."""
    body = json.dumps(
        {
            "request": request_ref,
            "records": [[pk, created.isoformat()] for pk, created in records],
            "hashes": hashes,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    path = get_journal_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as out:
        out.write(json.dumps({"entry": body, "mac": _sign(body)}) + "\n")
        out.flush()
        os.fsync(out.fileno())


@dataclass
class Erasure:
    line: int
    request: int | None
    records: list[tuple[int, str]]
    hashes: dict[str, str]


def read_erasures(path: Path | None = None) -> list[Erasure]:
    """Return the journal's erasures, oldest first; raise JournalError on a bad line."""
    path = path or get_journal_path()
    if not path.exists():
        return []
    found = []
    with open(path, encoding="utf-8") as lines:
        for number, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            try:
                outer = json.loads(text)
                body, mac = outer["entry"], outer["mac"]
            except (ValueError, KeyError, TypeError):
                raise JournalError(f"{path}, line {number}: not a journal entry") from None
            if not hmac.compare_digest(_sign(body), str(mac)):
                raise JournalError(
                    f"{path}, line {number}: the entry was altered (its HMAC does not match); "
                    "restore the journal from a copy, or remove the line knowingly"
                )
            entry = json.loads(body)
            records = [(int(pk), str(created)) for pk, created in entry["records"]]
            found.append(Erasure(number, entry["request"], records, dict(entry["hashes"])))
    return found
