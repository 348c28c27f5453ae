"""Record audit events in an append-only HMAC chain, and verify the chain.

Every entry's MAC is HMAC-SHA256 over a canonical serialisation of its fields and the previous
entry's MAC, keyed with a key derived from the master key (outside the database). Appends are
serialised (an advisory lock on PostgreSQL, the IMMEDIATE write lock on SQLite), so two writers
can never chain onto the same head.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from kequn.security.audit.models import AuditEntry
from kequn.security.keys import derive_key

# Actions (stable strings: they are stored and covered by the MAC).
VIEW_PERSONAL = "view_personal"  # someone saw unmasked personal data
CREATE = "create"
CHANGE = "change"
DELETE = "delete"
EXPORT = "export"
IMPORT = "import"
LOGIN = "login"
LOGIN_FAILED = "login_failed"
LOGOUT = "logout"
PERMISSION_CHANGE = "permission_change"
TOKEN_CREATE = "token_create"  # noqa: S105 -- an action name, not a secret
TOKEN_REVOKE = "token_revoke"  # noqa: S105 -- an action name, not a secret
DATA_SUBJECT_REQUEST = "data_subject_request"
ERASURE = "erasure"
KEY_ROTATION = "key_rotation"
BACKUP = "backup"
AUDIT_VERIFY = "audit_verify"

ACTION_LABELS: dict[str, Any] = {
    VIEW_PERSONAL: gettext_lazy("View of personal data"),
    CREATE: gettext_lazy("Create"),
    CHANGE: pgettext_lazy("audit action", "Change"),
    DELETE: gettext_lazy("Delete"),
    EXPORT: gettext_lazy("Export"),
    IMPORT: gettext_lazy("Import"),
    LOGIN: gettext_lazy("Login"),
    LOGIN_FAILED: gettext_lazy("Failed login"),
    LOGOUT: gettext_lazy("Logout"),
    PERMISSION_CHANGE: gettext_lazy("Permission change"),
    TOKEN_CREATE: gettext_lazy("API token created"),
    TOKEN_REVOKE: gettext_lazy("API token revoked"),
    DATA_SUBJECT_REQUEST: gettext_lazy("Data-subject request"),
    ERASURE: gettext_lazy("Erasure"),
    KEY_ROTATION: gettext_lazy("Key rotation"),
    BACKUP: gettext_lazy("Backup"),
    AUDIT_VERIFY: gettext_lazy("Audit chain verified"),
}

GENESIS_MAC = "0" * 64
KEY_PURPOSE = "audit-chain"
# pg_advisory_xact_lock key: "kequnaud" as a signed 64-bit integer; any constant works.
PG_LOCK_KEY = int.from_bytes(b"kequnaud", "big", signed=True)


def get_chain_key() -> bytes:
    """Return the HMAC key of the chain (derived from the master key)."""
    return derive_key(KEY_PURPOSE)


def normalise_detail(detail: dict | None) -> dict:
    """Return detail as plain JSON values that read back from either database unchanged."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            items = [clean(v) for v in value]
            return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
        if value is None or isinstance(value, bool | int | str):
            return value
        # Floats, dates, decimals, UUIDs: as text, since jsonb may not give a float back as float.
        try:
            converted = json.loads(json.dumps(value, cls=DjangoJSONEncoder))
        except TypeError:
            return str(value)
        return converted if isinstance(converted, str) else str(value)

    return clean(detail or {})


def normalise_ip(value: str | None) -> str | None:
    """Return an IP address in canonical text form, or None when it is not one."""
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def format_time(value: datetime) -> str:
    """Return a time as UTC ISO 8601 with microseconds (the form the MAC covers)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def serialise_entry(entry: AuditEntry, sequence: int | None = None) -> bytes:
    """Return the canonical bytes the MAC covers (optionally as if at another sequence)."""
    fields = {
        "sequence": entry.sequence if sequence is None else sequence,
        "created_at": format_time(entry.created_at),
        "actor_id": entry.actor_id,
        "actor_username": entry.actor_username,
        "action": entry.action,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "detail": entry.detail,
        "ip_address": entry.ip_address,
        "user_agent": entry.user_agent,
        "request_path": entry.request_path,
        "prev_mac": entry.prev_mac,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def compute_mac(entry: AuditEntry, key: bytes | None = None, sequence: int | None = None) -> str:
    """Return the hex HMAC-SHA256 of an entry chained to its prev_mac."""
    return hmac.new(
        key or get_chain_key(), serialise_entry(entry, sequence), hashlib.sha256
    ).hexdigest()


def describe_target(
    target: models.Model | None, target_type: str, target_id: str
) -> tuple[str, str]:
    """Return (type, id) for a model instance or the given strings."""
    if target is not None:
        return target._meta.label_lower, str(target.pk)
    return target_type, str(target_id)


def get_client_ip(request) -> str | None:
    """Return the client address; X-Forwarded-For counts only behind KEQUN_PROXY_COUNT proxies."""
    proxies = int(getattr(settings, "KEQUN_PROXY_COUNT", 0) or 0)
    if proxies > 0:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        hops = [h for h in hops if h]
        # Each trusted proxy appended the address it saw; anything further left is client-made.
        if len(hops) >= proxies:
            return normalise_ip(hops[-proxies])
    return normalise_ip(request.META.get("REMOTE_ADDR"))


_current_request: ContextVar = ContextVar("kequn_audit_request", default=None)
_suppressed: ContextVar[bool] = ContextVar("kequn_audit_suppressed", default=False)


_acting: ContextVar = ContextVar("kequn_audit_actor", default=None)


@contextmanager
def acting_as(actor) -> Iterator[None]:
    """Name who makes the model-level events of a write service (CLI and jobs have no request)."""
    token = _acting.set(actor)
    try:
        yield
    finally:
        _acting.reset(token)


def get_current_request():
    """Return the request being served in this thread/task, if any (set by the middleware)."""
    return _current_request.get()


@contextmanager
def serving_request(request) -> Iterator[None]:
    """Make a request the current one, so model-level events name its user and address."""
    token = _current_request.set(request)
    try:
        yield
    finally:
        _current_request.reset(token)


@contextmanager
def suppress_model_events() -> Iterator[None]:
    """Skip per-row model events (bulk work such as an import records one event itself)."""
    token = _suppressed.set(True)
    try:
        yield
    finally:
        _suppressed.reset(token)


def is_suppressed() -> bool:
    """Tell whether per-row model events are being skipped."""
    return _suppressed.get()


def lock_chain(conn=None) -> None:
    """Take the chain's append lock for the rest of the current transaction."""
    conn = conn or connections[DEFAULT_DB_ALIAS]
    if conn.vendor == "postgresql":
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PG_LOCK_KEY])
    # SQLite: the connection opens transactions with BEGIN IMMEDIATE (settings), which takes the
    # database write lock before the head is read, so appends are already serialised.


def record_event(
    action: str,
    *,
    actor=None,
    target: models.Model | None = None,
    target_type: str = "",
    target_id: str = "",
    detail: dict | None = None,
    request=None,
) -> AuditEntry:
    """Append one event to the audit chain and return it.

    detail holds ids, field names and counts, never the personal data itself. Without a
    request, the one being served (see AuditContextMiddleware) gives the actor and address.
    """
    if request is None:
        request = get_current_request()
    if actor is None:
        actor = _acting.get()
    if actor is None and request is not None:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            actor = user
    kind, ident = describe_target(target, target_type, target_id)
    entry = AuditEntry(
        created_at=timezone.now(),
        actor_id=actor.pk if actor is not None else None,
        actor_username=(actor.get_username() if actor is not None else "")[:150],
        action=action[:40],
        target_type=kind[:100],
        target_id=ident[:100],
        detail=normalise_detail(detail),
    )
    if request is not None:
        entry.ip_address = get_client_ip(request)
        entry.user_agent = request.META.get("HTTP_USER_AGENT", "")[:300]
        # The path only: query strings carry searched phone numbers and emails.
        entry.request_path = request.path[:500]
    key = get_chain_key()
    conn = connections[DEFAULT_DB_ALIAS]  # once: each `connection.x` goes through a proxy
    if conn.vendor == "sqlite" and conn.get_autocommit() and not conn.in_atomic_block:
        # Outside any transaction a bare BEGIN IMMEDIATE … COMMIT takes the same write lock
        # as transaction.atomic() at a third of its cost on SQLite.
        with conn.cursor() as cursor:
            cursor.execute("BEGIN IMMEDIATE")
            try:
                append_entry(conn, cursor, entry, key)
                cursor.execute("COMMIT")
            except BaseException:
                if conn.connection.in_transaction:
                    cursor.execute("ROLLBACK")
                raise
    else:
        with transaction.atomic(using=conn.alias):
            lock_chain(conn)
            with conn.cursor() as cursor:
                append_entry(conn, cursor, entry, key)
    entry._state.adding = False
    entry._state.db = conn.alias
    return entry


def append_entry(conn, cursor, entry: AuditEntry, key: bytes) -> None:
    """Under the chain lock: read the head, chain the entry to it and INSERT it."""
    # Plain SQL for the two statements under the lock: the ORM's query building would cost
    # more than the database work (see benchmarks/audit_append.py).
    sql = get_statements(conn.vendor)
    cursor.execute(sql.head)
    head = cursor.fetchone()
    entry.sequence, entry.prev_mac = (head[0] + 1, head[1]) if head else (1, GENESIS_MAC)
    entry.mac = compute_mac(entry, key)
    values = [
        f.get_db_prep_save(getattr(entry, f.attname), conn) if f.name in CONVERTED
        else getattr(entry, f.attname)
        for f in sql.fields
    ]  # fmt: skip
    cursor.execute(sql.insert, values)
    entry.pk = cursor.fetchone()[0] if sql.returning else cursor.lastrowid


# Fields whose Python value needs the backend's conversion (the rest are str/int/None).
CONVERTED = {"created_at", "detail", "ip_address"}


@dataclass
class Statements:
    """The SQL record_event runs, built once per backend."""

    head: str
    insert: str
    fields: list
    returning: bool


@lru_cache(maxsize=4)
def get_statements(vendor: str) -> Statements:
    """Build the head query and the INSERT for the default connection's backend."""
    conn = connections[DEFAULT_DB_ALIAS]
    meta = AuditEntry._meta
    quote = conn.ops.quote_name
    table = quote(meta.db_table)
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    # Table and column names come from the model's meta, quoted; values are bound.
    insert = (
        f"INSERT INTO {table} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )
    returning = conn.features.can_return_columns_from_insert
    if returning:
        insert += f" RETURNING {quote(meta.pk.column)}"
    head = f"SELECT sequence, mac FROM {table} ORDER BY sequence DESC LIMIT 1"  # noqa: S608
    return Statements(head, insert, fields, returning)


@dataclass
class ChainProblem:
    """The first broken place in the chain."""

    sequence: int
    kind: str  # "edited", "deleted", "reordered", "unlinked"
    message: str


@dataclass
class VerifyResult:
    """What a walk over the chain found."""

    count: int
    head_sequence: int
    head_mac: str
    problem: ChainProblem | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def iter_entries(batch_size: int) -> Iterator[AuditEntry]:
    """Yield all entries by sequence, in keyset-paginated batches."""
    last = None
    while True:
        qs = AuditEntry.objects.order_by("sequence")
        if last is not None:
            qs = qs.filter(sequence__gt=last)
        batch = list(qs[:batch_size])
        if not batch:
            return
        yield from batch
        last = batch[-1].sequence


def find_moved_sequence(entry: AuditEntry, key: bytes, window: int = 1000) -> int | None:
    """Return the sequence the entry's MAC was made for, if it is near its current place."""
    for offset in range(1, window + 1):
        for candidate in (entry.sequence - offset, entry.sequence + offset):
            if candidate >= 1 and hmac.compare_digest(
                entry.mac, compute_mac(entry, key, sequence=candidate)
            ):
                return candidate
    return None


def check_entry(entry: AuditEntry, expected: int, prev_mac: str, key: bytes) -> ChainProblem | None:
    """Return what is wrong with one entry, given the sequence and MAC expected before it."""
    seq = entry.sequence
    if not hmac.compare_digest(entry.mac, compute_mac(entry, key)):
        moved = find_moved_sequence(entry, key)
        if moved is not None:
            return ChainProblem(
                seq,
                "reordered",
                _("entry #%(seq)s holds the entry written as #%(orig)s: entries were reordered")
                % {"seq": seq, "orig": moved},
            )
        return ChainProblem(
            seq, "edited", _("entry #%(seq)s was edited: its MAC does not match") % {"seq": seq}
        )
    if seq != expected:
        missing = f"#{expected}" if expected == seq - 1 else f"#{expected}–#{seq - 1}"
        return ChainProblem(
            expected,
            "deleted",
            _("entry %(missing)s is missing (deleted): the chain jumps to #%(seq)s")
            % {"missing": missing, "seq": seq},
        )
    if not hmac.compare_digest(entry.prev_mac, prev_mac):
        return ChainProblem(
            seq,
            "unlinked",
            _("entry #%(seq)s does not follow #%(prev)s: an entry was deleted or replaced")
            % {"seq": seq, "prev": seq - 1},
        )
    return None


def verify_chain(
    batch_size: int = 2000,
    progress: Callable[[int], None] | None = None,
    expect_head: tuple[int, str] | None = None,
) -> VerifyResult:
    """Walk the whole chain and return the count, the head and the first problem found.

    expect_head is a (sequence, mac) noted earlier outside the database: it catches entries
    cut off the end of the chain, which the chain alone cannot show.
    """
    key = get_chain_key()
    count, expected, prev_mac = 0, 1, GENESIS_MAC
    problem = None
    seen_head = None
    for entry in iter_entries(batch_size):
        count += 1
        if progress is not None:
            progress(1)
        if expect_head is not None and entry.sequence == expect_head[0]:
            seen_head = entry
        problem = check_entry(entry, expected, prev_mac, key)
        if problem is not None:
            break
        expected, prev_mac = entry.sequence + 1, entry.mac
    if problem is None and expect_head is not None:
        seq, mac = expect_head
        if seen_head is None:
            problem = ChainProblem(
                seq,
                "deleted",
                _("entry #%(seq)s, noted as a head earlier, is missing: the chain was cut short")
                % {"seq": seq},
            )
        elif not hmac.compare_digest(seen_head.mac, mac):
            problem = ChainProblem(
                seq,
                "edited",
                _("entry #%(seq)s is not the entry noted earlier (different MAC)") % {"seq": seq},
            )
    return VerifyResult(count, expected - 1, prev_mac, problem)
