"""Field encryption: versioned data keys wrapped by the master key, AES-GCM values, blind indexes.

A stored value reads ``kq1:<key version>:<base64 of nonce + ciphertext>``. The associated data
is the field's purpose (``app.model.field``), so a value copied into another column does not
decrypt. Each field has its own data keys; one version is active (new values), older versions
stay until `kequn keys rotate` has re-encrypted every row, then `kequn keys retire` drops them.
Blind indexes (HMAC-SHA256 with a key derived from the master key, not rotated with the data
keys) allow exact lookups of encrypted identity values.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.apps import apps
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, models, transaction
from django.db.models import F, TextField
from django.db.models.functions import Cast
from django.dispatch import Signal
from django.utils import timezone

from kequn.security.actors import Actor
from kequn.security.audit import services as audit
from kequn.security.keyring.models import DataKey
from kequn.security.keys import derive_key, load_master_key

PREFIX = "kq1:"
NONCE_BYTES = 12
DATA_KEY_BYTES = 32
# A process notices a rotation started elsewhere within this many seconds; until then its
# writes use the previous version, which the rotation's final sweep re-encrypts.
ACTIVE_VERSION_TTL = 30.0


# Sent with purpose=<field> each time a stored value fails to decrypt.
decryption_failed = Signal()


class DecryptionError(ValueError):
    """A stored value that cannot be decrypted; the message names the field and the reason."""


_ciphers: dict[tuple[str, str, int], AESGCM] = {}
_active: dict[tuple[str, str], tuple[int, float]] = {}
# Keys this process created inside a transaction not (yet) committed: never cached, because a
# rollback would leave the cache holding a key the database does not have.
_uncommitted: set[tuple[str, str, int]] = set()


def reset_cache() -> None:
    """Forget every cached data key (after a flush, a restore or in tests)."""
    _ciphers.clear()
    _active.clear()
    _uncommitted.clear()


def _wrap_aad(purpose: str, version: int) -> bytes:
    return f"kequn-datakey:{purpose}:{version}".encode()


def _wrap(purpose: str, version: int, key: bytes) -> str:
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(load_master_key()).encrypt(nonce, key, _wrap_aad(purpose, version))
    return base64.b64encode(nonce + sealed).decode()


def _unwrap(purpose: str, version: int, wrapped: str) -> bytes:
    try:
        raw = base64.b64decode(wrapped)
        return AESGCM(load_master_key()).decrypt(
            raw[:NONCE_BYTES], raw[NONCE_BYTES:], _wrap_aad(purpose, version)
        )
    except (InvalidTag, binascii.Error, ValueError):
        raise DecryptionError(
            f"data key {purpose} v{version} does not open with this master key: "
            "check KEQUN_MASTER_KEY / KEQUN_KEY_FILE (it must be the key the data was written with)"
        ) from None


def _remember(using: str, purpose: str, version: int, cipher: AESGCM) -> None:
    if (using, purpose, version) not in _uncommitted:
        _ciphers[(using, purpose, version)] = cipher


def get_cipher(purpose: str, version: int, using: str = DEFAULT_DB_ALIAS) -> AESGCM:
    """Return the AES-GCM cipher of one data key version, unwrapping it on first use."""
    if cipher := _ciphers.get((using, purpose, version)):
        return cipher
    wrapped = (
        DataKey.objects.using(using)
        .filter(purpose=purpose, version=version)
        .values_list("wrapped_key", flat=True)
        .first()
    )
    if wrapped is None:
        raise DecryptionError(
            f"no data key {purpose} v{version}: it was retired while rows still used it, "
            "or the database was restored without its keyring"
        )
    cipher = AESGCM(_unwrap(purpose, version, wrapped))
    _remember(using, purpose, version, cipher)
    return cipher


def create_data_key(purpose: str, using: str = DEFAULT_DB_ALIAS) -> int:
    """Create the next data key version of a field and make it the active one; return it."""
    with transaction.atomic(using=using):
        keys = DataKey.objects.using(using).select_for_update().filter(purpose=purpose)
        version = max(keys.values_list("version", flat=True), default=0) + 1
        keys.filter(is_active=True).update(is_active=False, rotated_at=timezone.now())
        secret = AESGCM.generate_key(bit_length=DATA_KEY_BYTES * 8)
        DataKey.objects.using(using).create(
            purpose=purpose, version=version, wrapped_key=_wrap(purpose, version, secret),
            is_active=True,
        )  # fmt: skip
    connection = connections[using]
    if connection.in_atomic_block:
        marker = (using, purpose, version)
        _uncommitted.add(marker)
        transaction.on_commit(lambda: _uncommitted.discard(marker), using=using)
    _active.pop((using, purpose), None)
    return version


def get_active_version(purpose: str, using: str = DEFAULT_DB_ALIAS, *, fresh: bool = False) -> int:
    """Return the version new values of a field are encrypted with, creating version 1."""
    cached = _active.get((using, purpose))
    if cached and not fresh and cached[1] > time.monotonic():
        return cached[0]
    for _attempt in range(3):
        version = (
            DataKey.objects.using(using)
            .filter(purpose=purpose, is_active=True)
            .values_list("version", flat=True)
            .first()
        )
        if version is not None:
            break
        try:
            version = create_data_key(purpose, using)
            break
        except IntegrityError:  # another process created it at the same moment
            continue
    else:
        raise DecryptionError(f"cannot create a data key for {purpose}")
    if (using, purpose, version) not in _uncommitted:
        _active[(using, purpose)] = (version, time.monotonic() + ACTIVE_VERSION_TTL)
    return version


def _aad(purpose: str) -> bytes:
    return f"kequn:{purpose}".encode()


def encrypt(purpose: str, text: str, using: str = DEFAULT_DB_ALIAS) -> str:
    """Return the stored form of one value of the field `purpose`."""
    return encrypt_many(purpose, [text], using)[0]


def encrypt_many(purpose: str, texts: Sequence[str], using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """Return the stored form of many values of one field (one key lookup, one random draw)."""
    if not texts:
        return []
    version = get_active_version(purpose, using)
    seal = get_cipher(purpose, version, using).encrypt
    aad, head = _aad(purpose), f"{PREFIX}{version}:"
    nonces = os.urandom(NONCE_BYTES * len(texts))
    b64 = base64.b64encode
    out = []
    for i, text in enumerate(texts):
        nonce = nonces[i * NONCE_BYTES : (i + 1) * NONCE_BYTES]
        out.append(head + b64(nonce + seal(nonce, text.encode(), aad)).decode())
    return out


def parse_version(token: str) -> int | None:
    """Return the key version of a stored value, or None for a value that is not encrypted."""
    if not token.startswith(PREFIX):
        return None
    version, sep, _rest = token[len(PREFIX) :].partition(":")
    return int(version) if sep and version.isdigit() else None


def decrypt(purpose: str, token: str, using: str = DEFAULT_DB_ALIAS) -> str:
    """Return the plaintext of a stored value; a value without the prefix is returned as is."""
    try:
        return _decrypt(purpose, token, using)
    except DecryptionError:
        # Higher apps (monitoring) listen: a value that fails to decrypt may be tampering.
        decryption_failed.send(sender=DecryptionError, purpose=purpose)
        raise


def _decrypt(purpose: str, token: str, using: str) -> str:
    if not token.startswith(PREFIX):
        return token  # written before encryption was switched on (the migration catches up)
    version = parse_version(token)
    if version is None:
        raise DecryptionError(f"{purpose}: malformed encrypted value (no key version)")
    body = token[len(PREFIX) + len(str(version)) + 1 :]
    try:
        raw = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise DecryptionError(f"{purpose}: malformed encrypted value (bad base64)") from None
    if len(raw) < NONCE_BYTES + 16:
        raise DecryptionError(f"{purpose}: malformed encrypted value (too short)")
    try:
        plain = get_cipher(purpose, version, using).decrypt(
            raw[:NONCE_BYTES], raw[NONCE_BYTES:], _aad(purpose)
        )
    except InvalidTag:
        raise DecryptionError(
            f"{purpose}: encrypted value failed its integrity check (key v{version}): it was "
            "altered, or copied from another field"
        ) from None
    return plain.decode()


def blind_index(value: str) -> str:
    """Return the keyed hash used to look up an exact (normalised) value without decrypting."""
    return hmac.digest(derive_key("blind-index"), value.encode(), "sha256").hex()[:40]


def blind_indexes(values: Iterable[str]) -> list[str]:
    """Return the blind index of each value (one key derivation for all)."""
    key, digest = derive_key("blind-index"), hmac.digest
    return [digest(key, v.encode(), "sha256").hex()[:40] for v in values]


# Registry of encrypted fields ------------------------------------------------------------


def get_encrypted_fields() -> dict[str, tuple[type[models.Model], models.Field]]:
    """Return every encrypted model field by purpose (app.model.field)."""
    found = {}
    for model in apps.get_models():
        for f in model._meta.concrete_fields:
            # The field classes (fields.py) use this module; they carry a mark instead.
            if getattr(f, "is_encrypted", False):
                found[f.purpose] = (model, f)
    return dict(sorted(found.items()))


def get_field(purpose: str) -> tuple[type[models.Model], models.Field]:
    """Return the model and field of a purpose; raise ValueError listing the known ones."""
    fields = get_encrypted_fields()
    if purpose not in fields:
        raise ValueError(
            f"unknown encrypted field {purpose!r}: use one of {', '.join(fields) or '(none)'}"
        )
    return fields[purpose]


def ensure_data_keys(using: str = DEFAULT_DB_ALIAS) -> None:
    """Create version 1 of every encrypted field's data key that has none yet."""
    for purpose in get_encrypted_fields():
        get_active_version(purpose, using, fresh=True)


def _raw(model: type[models.Model], f: models.Field, using: str) -> models.QuerySet:
    # The stored text, undecrypted: a JSON field holds the token as a JSON string ("kq1:…").
    return (
        model._base_manager.using(using)
        .annotate(_raw=Cast(F(f.attname), TextField()))
        .exclude(_raw__isnull=True)
        .exclude(_raw="")
    )


def _prefix(f: models.Field, version: int) -> str:
    return ('"' if getattr(f, "is_json", False) else "") + f"{PREFIX}{version}:"


@dataclass
class FieldStatus:
    purpose: str
    active: int | None
    versions: dict[int, int] = field(default_factory=dict)  # version → rows
    plaintext: int = 0

    @property
    def pending(self) -> int:
        """Rows not yet on the active version."""
        return self.plaintext + sum(n for v, n in self.versions.items() if v != self.active)


def get_status(purpose: str, using: str = DEFAULT_DB_ALIAS) -> FieldStatus:
    """Count a field's rows per key version (and rows still in plaintext)."""
    model, f = get_field(purpose)
    keys = DataKey.objects.using(using).filter(purpose=purpose)
    status = FieldStatus(
        purpose, keys.filter(is_active=True).values_list("version", flat=True).first()
    )
    rows = _raw(model, f, using)
    total = rows.count()
    for version in keys.order_by("version").values_list("version", flat=True):
        status.versions[version] = rows.filter(_raw__startswith=_prefix(f, version)).count()
    status.plaintext = total - sum(status.versions.values())
    return status


def reencrypt_field(
    purpose: str,
    batch_size: int = 1000,
    using: str = DEFAULT_DB_ALIAS,
    progress: Callable[[int], object] | None = None,
) -> int:
    """Re-encrypt a field's rows not on the active version, a short transaction per batch.

    Readers keep working throughout (they decrypt either version); a re-run after a crash
    continues where it stopped, and finds nothing to do once every row is on the active version.
    """
    model, f = get_field(purpose)
    version = get_active_version(purpose, using, fresh=True)
    done, last = 0, None
    pk = model._meta.pk.attname
    while True:
        with transaction.atomic(using=using):
            rows = _raw(model, f, using).exclude(_raw__startswith=_prefix(f, version))
            if last is not None:
                rows = rows.filter(pk__gt=last)
            # Locked until the batch commits, so a concurrent edit is never overwritten.
            batch = list(rows.select_for_update().order_by(pk).only(pk, f.attname)[:batch_size])
            if not batch:
                break
            model._base_manager.using(using).bulk_update(batch, [f.attname])
        last = getattr(batch[-1], pk)
        done += len(batch)
        if progress:
            progress(len(batch))
    return done


@dataclass
class RotationResult:
    purpose: str
    version: int
    resumed: bool  # an unfinished rotation was continued instead of starting a new one
    rows: int


def rotate_field(
    purpose: str,
    batch_size: int = 1000,
    using: str = DEFAULT_DB_ALIAS,
    progress: Callable[[int], object] | None = None,
    settle_seconds: float = ACTIVE_VERSION_TTL,
    *,
    by: Actor,
) -> RotationResult:
    """Start a new key version of a field (or resume an unfinished one) and re-encrypt its rows.

    Other processes pick the new version up within ACTIVE_VERSION_TTL seconds; until then they
    may still write with the old one, so the rows are swept once more after that delay.
    """
    status = get_status(purpose, using)
    resumed = status.active is not None and status.pending > 0
    version = status.active if resumed else create_data_key(purpose, using)
    rows = reencrypt_field(purpose, batch_size, using, progress)
    started = DataKey.objects.using(using).get(purpose=purpose, version=version).created_at
    wait = settle_seconds - (timezone.now() - started).total_seconds()
    if wait > 0:
        time.sleep(wait)
    rows += reencrypt_field(purpose, batch_size, using, progress)
    # The re-encryption ran in many batches; the trail records the rotation once it is whole.
    audit.record_event(
        audit.KEY_ROTATION,
        actor=by,
        target_type=DataKey._meta.label_lower,
        target_id=purpose,
        detail={"step": "rotated", "version": version, "resumed": resumed, "rows": rows},
    )
    return RotationResult(purpose, version, resumed, rows)


def retire_unused_keys(purpose: str, using: str = DEFAULT_DB_ALIAS, *, by: Actor) -> list[int]:
    """Delete a field's inactive key versions that no row uses any more; return them."""
    status = get_status(purpose, using)
    unused = [v for v, n in status.versions.items() if n == 0 and v != status.active]
    with transaction.atomic(using=using):
        DataKey.objects.using(using).filter(purpose=purpose, version__in=unused).delete()
        if unused:
            audit.record_event(
                audit.KEY_ROTATION,
                actor=by,
                target_type=DataKey._meta.label_lower,
                target_id=purpose,
                detail={"step": "retired", "versions": unused},
            )
    for v in unused:
        _ciphers.pop((using, purpose, v), None)
    return unused


def dumps_json(value: object, encoder: type[json.JSONEncoder] | None = None) -> str:
    """Return the JSON text an encrypted JSON field encrypts."""
    return json.dumps(value, cls=encoder, ensure_ascii=False, separators=(",", ":"))
