"""Survivorship: when an incoming row may change a stored person, and which value wins.

The rules (also in the README, *Customers and imports*):

1. A row reaching a stored person through one identity only (one phone, one email or one
   external id) whose name, birthday or gender contradicts that person's non-empty value is
   a *conflicting match*: a shared or reassigned number, not the same person. The person is
   left as is and keeps the identity; the row becomes a new person (with its other
   identities) and the pair goes to the review queue. Two or more identities agreeing on the
   same person make a *strong match*: the row updates that person field by field.
2. Field by field, an empty value never overwrites, and a stored non-empty value is replaced
   only by the source that set it (a newer export of the same system) or by a source trusted
   more (``KEQUN_SOURCE_TRUST``, most trusted first; ``*`` stands for every source not
   listed). The back office's own edits rank highest.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from kequn.conf import read_env

# Sources of values that are not files: edits in the back office and through the API, and
# Segment-compatible identify events.
BACKOFFICE = "backoffice"
API = "api"
EVENTS = "events"
DEFAULT_TRUST = (BACKOFFICE, API, "*", EVENTS, "demo")

# Fields whose disagreement means "not the same person" rather than "changed data".
IDENTIFYING_FIELDS = ("name", "birthday", "gender")


def get_trust_order() -> tuple[str, ...]:
    """Return the source trust order, most trusted first (KEQUN_SOURCE_TRUST or the default)."""
    raw = read_env("KEQUN_SOURCE_TRUST", "")
    order = tuple(s.strip().lower() for s in raw.split(",") if s.strip())
    if not order:
        return DEFAULT_TRUST
    # The back office always ranks first: a person's own correction is never overwritten.
    return (BACKOFFICE, *(s for s in order if s != BACKOFFICE))


def rank_source(source: str, order: tuple[str, ...]) -> int:
    """Return how much a source is trusted (higher wins); unlisted sources rank as '*'."""
    source = (source or "").lower()
    position = order.index(source) if source in order else order.index("*") if "*" in order else -1
    return len(order) - position if position >= 0 else 0


def fold_name(name: str) -> str:
    """Return a name in the form names are compared in: folded, no case, spaces or dots."""
    text = unicodedata.normalize("NFKC", name or "").casefold()
    return re.sub(r"[\s.·•\-_]", "", text)


def is_same_name(a: str, b: str) -> bool:
    """Return whether two names are the same name written differently (case, spaces, dots)."""
    return fold_name(a) == fold_name(b)


def find_conflicts(current: dict[str, object], incoming: dict[str, object]) -> list[str]:
    """Return the identifying fields where both sides have a value and the values disagree."""
    conflicts = []
    for name in IDENTIFYING_FIELDS:
        old, new = current.get(name), incoming.get(name)
        if old in ("", None) or new in ("", None):
            continue
        if name == "name":
            differ = not is_same_name(str(old), str(new))
        elif name == "gender":
            differ = {old, new} == {"f", "m"}  # "other" and "unknown" contradict nothing
        else:
            differ = _as_date(old) != _as_date(new)
        if differ:
            conflicts.append(name)
    return conflicts


def _as_date(value: object) -> object:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return value
    return value


def may_overwrite(*, current_source: str, incoming_source: str, order: tuple[str, ...]) -> bool:
    """Return whether a stored non-empty value may be replaced by the incoming source's."""
    if (current_source or "").lower() == (incoming_source or "").lower():
        return True
    return rank_source(incoming_source, order) > rank_source(current_source, order)
