"""The suppression list: keyed hashes of erased people's identities, so they do not come back.

Every identity of an erased person goes on the list as a keyed hash (HMAC-SHA256 with a key
derived from the master key, which lives outside the database), so a later import or event
does not bring them back and the list itself holds no plaintext.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from django.utils.translation import gettext as _

from kequn.customers.identities import IdentityError, normalize_identity
from kequn.privacy.models import Suppression
from kequn.privacy.services.base import PrivacyError
from kequn.security.keys import derive_key


def _normalise(kind: str, value: str, system: str = "") -> tuple[str, str, str] | None:
    try:
        normalised = normalize_identity(kind, value)
    except IdentityError:
        return None
    return kind, (system if kind == "external" else ""), normalised


def hash_identity(kind: str, value: str, system: str = "", *, normalised: bool = False) -> str:
    """Return the keyed hash (HMAC-SHA256) under which an identity is suppressed."""
    if not normalised:
        key = _normalise(kind, value, system)
        if key is None:
            raise PrivacyError(
                _("cannot read %(value)r as an identity of type %(kind)s")
                % {"kind": kind, "value": value[:50]}
            )
        kind, system, value = key
    message = "\x1f".join((kind, system if kind == "external" else "", value)).encode()
    return hmac.new(derive_key("suppression"), message, hashlib.sha256).hexdigest()


def find_suppressed(keys: Iterable[tuple[str, str, str]]) -> dict[tuple[str, str, str], int | None]:
    """Return the suppressed ones among normalised (kind, system, value) keys, with the request."""
    keys = set(keys)
    if not keys or not Suppression.objects.exists():
        return {}
    hashes = {hash_identity(k, v, s, normalised=True): (k, s, v) for k, s, v in keys}
    found: dict[tuple[str, str, str], int | None] = {}
    items = list(hashes)
    for start in range(0, len(items), 2000):
        for key_hash, request_ref in Suppression.objects.filter(
            key_hash__in=items[start : start + 2000]
        ).values_list("key_hash", "request_ref"):
            found[hashes[key_hash]] = request_ref
    return found


def is_suppressed(kind: str, value: str, system: str = "") -> bool:
    """Return whether an identity (raw value, normalised here) belongs to an erased person."""
    key = _normalise(kind, value, system)
    return key is not None and bool(find_suppressed([key]))


def describe_suppression(request_ref: int | None) -> str:
    """Return the quarantine message of a suppressed row."""
    if request_ref:
        return _("erased on request #%(id)s") % {"id": request_ref}
    return _("erased on request")
