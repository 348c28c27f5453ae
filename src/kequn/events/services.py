"""Every change made by event collection: sources and their write keys, and Segment messages."""

from __future__ import annotations

import hashlib
import logging
import secrets
import unicodedata
import uuid
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from kequn.customers.guards import find_blocked_identities
from kequn.customers.models import Customer, Identity
from kequn.customers.selectors import find_identity_owners
from kequn.customers.services import mark_field_sources
from kequn.events.models import AnonymousLink, Event, Source
from kequn.ingest.cleaning import (
    CleaningError,
    clean_city,
    clean_date,
    clean_email,
    clean_gender,
    clean_name,
    clean_phone,
    join_name,
)
from kequn.ingest.models import MatchCandidate
from kequn.ingest.places import get_province_of_city
from kequn.ingest.survivorship import (
    EVENTS,
    IDENTIFYING_FIELDS,
    find_conflicts,
    get_trust_order,
    may_overwrite,
)
from kequn.security.actors import Actor
from kequn.security.audit import services as audit

logger = logging.getLogger(__name__)


class CollectionError(ValueError):
    """A collected (Segment-format) message that cannot be stored; the message says why."""


# ---------------------------------------------------------------- sources and write keys

# Distinct prefixes let secret scanners (and people) tell a server key found in a web page.
WRITE_KEY_PREFIXES = {Source.KeyType.CLIENT: "wk_", Source.KeyType.SERVER: "wks_"}
WRITE_KEY_PREFIX = WRITE_KEY_PREFIXES[Source.KeyType.CLIENT]
# A token in the shared cache that changes whenever a source changes: workers keep copies of
# write keys in memory and drop them as soon as the token differs.
SOURCES_GENERATION_KEY = "kequn:events:sources-generation"


def hash_write_key(key: str) -> str:
    """Return the SHA-256 under which a write key is stored."""
    return hashlib.sha256(key.encode()).hexdigest()


def get_sources_generation() -> str | None:
    """Return the shared token of the sources' state; None when the shared cache is down."""
    try:
        token = cache.get(SOURCES_GENERATION_KEY)
        if token is None:
            # Evicted or never set: a new token, never an old one, so no stale copy matches.
            cache.add(SOURCES_GENERATION_KEY, uuid.uuid4().hex, None)
            token = cache.get(SOURCES_GENERATION_KEY)
    except Exception:  # any cache failure: the caller then asks the database every time
        logger.warning("shared cache unreachable: write keys are checked in the database")
        return None
    return token


def bump_sources_generation() -> None:
    """Make every worker re-read write keys: now, and again when the change is committed."""

    def bump() -> None:
        try:
            cache.set(SOURCES_GENERATION_KEY, uuid.uuid4().hex, None)
        except Exception:  # workers that cannot read the cache ask the database anyway
            logger.warning("shared cache unreachable: could not announce a write-key change")

    bump()
    # A worker may read the source between the first bump and the commit; this drops its copy.
    transaction.on_commit(bump)


def _check_source_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError(_("give the source a name, e.g. web or app"))
    if len(name) > 100:
        raise ValidationError(_("a source name has at most 100 characters"))
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in name):
        raise ValidationError(_("a source name cannot hold control characters"))
    return name


def create_source(
    *, name: str, key_type: str = Source.KeyType.CLIENT, by: Actor
) -> tuple[Source, str]:
    """Create an event source; return it and its write key (shown once, stored hashed)."""
    name = _check_source_name(name)
    if key_type not in Source.KeyType.values:
        raise ValidationError(
            _("unknown key type %(type)r: use client or server") % {"type": key_type}
        )
    if Source.objects.filter(name=name).exists():
        raise ValidationError(_("a source named %(name)r exists already") % {"name": name})
    key = WRITE_KEY_PREFIXES[key_type] + secrets.token_urlsafe(24)
    with transaction.atomic():
        source = Source.objects.create(
            name=name, key_type=key_type, key_prefix=key[:8], key_digest=hash_write_key(key)
        )
        audit.record_event(
            audit.TOKEN_CREATE,
            actor=by,
            target=source,
            detail={"source": source.name, "key_type": key_type},
        )
    return source, key


def revoke_source(*, source: Source, by: Actor) -> None:
    """Stop accepting events sent with this source's key, on every worker at once."""
    with transaction.atomic():
        source.is_active = False
        source.save(update_fields=["is_active"])  # its post_save signal bumps the generation
        audit.record_event(
            audit.TOKEN_REVOKE,
            actor=by,
            target=source,
            detail={"source": source.name, "key_type": source.key_type},
        )


# ---------------------------------------------------------------- Segment messages

# Traits that are personal data: applied to the (encrypted) identities and profile, and left
# out of the stored event so that the events table holds no email, phone or address.
PERSONAL_TRAITS = frozenset({"email", "phone", "mobile", "birthday", "address", "wechat"})
# How much a claim in a client's identify weighs in the review queue: a hint, not evidence.
CLAIM_SCORE = 0.5


def _timestamp(value: object, default: datetime) -> datetime:
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return default
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return default


def _traits_profile(traits: dict) -> dict[str, object]:
    profile: dict[str, object] = {}
    name = traits.get("name") or join_name(str(traits.get("firstName") or traits.get("first_name") or ""),
                                           str(traits.get("lastName") or traits.get("last_name") or ""))  # fmt: skip
    if name:
        profile["name"] = clean_name(str(name))[:200]
    if traits.get("gender"):
        profile["gender"] = clean_gender(str(traits["gender"]))
    with suppress(CleaningError):
        if traits.get("birthday"):
            day = clean_date(str(traits["birthday"]))
            if date(1900, 1, 1) <= day <= timezone.localdate():
                profile["birthday"] = day
    address = traits.get("address") if isinstance(traits.get("address"), dict) else {}
    city = clean_city(str(traits.get("city") or address.get("city") or ""))
    if city:
        profile["city"] = city
        profile["province"] = get_province_of_city(city) or ""
    return {k: v for k, v in profile.items() if v}


def _public_traits(traits: object) -> object:
    if not isinstance(traits, dict):
        return traits
    return {k: v for k, v in traits.items() if k not in PERSONAL_TRAITS}


def _user_id(message: dict) -> str:
    return str(message.get("userId") or "")[:255]


def _identify_traits(message: dict) -> dict:
    traits = message.get("traits")
    return traits if message["type"] == "identify" and isinstance(traits, dict) else {}


def _claims(traits: dict) -> list[tuple[str, str, str]]:
    """Return the identity keys (kind, system, value) of the email and phone traits claim."""
    keys = []
    for kind, func in (("email", clean_email), ("phone", clean_phone)):
        value = traits.get(kind)
        if value and isinstance(value, str | int) and not isinstance(value, bool):
            with suppress(CleaningError):
                keys.append((kind, "", func(str(value))))
    return keys


def _without_suppressed(messages: list[dict]) -> list[dict]:
    """Drop messages of people erased on request: no profile, identity or event comes back."""
    keys_of = []
    for message in messages:
        user_id = _user_id(message)
        keys = [("external", "segment", user_id)] if user_id else []
        traits = message.get("traits") if isinstance(message.get("traits"), dict) else {}
        keys_of.append(keys + _claims(traits))
    suppressed = find_blocked_identities(k for keys in keys_of for k in keys)
    if not suppressed:
        return messages
    return [
        m
        for m, keys in zip(messages, keys_of, strict=True)
        if not any(k in suppressed for k in keys)
    ]


def get_source_label(source: Source) -> str:
    """Return the name under which a source's values rank in import survivorship.

    Client keys are "events" (below every file by default); a server key is "events:NAME",
    which ranks as an unlisted source ("*") unless KEQUN_SOURCE_TRUST names it.
    """
    if source.key_type == Source.KeyType.SERVER:
        return f"{EVENTS}:{source.name}".lower()
    return EVENTS


def _apply_profile(
    customer: Customer, profile: dict[str, object], *, label: str, order: tuple[str, ...] | None
) -> set[str]:
    """Set profile fields from traits and return their names.

    Without a trust order (client keys) only empty fields are filled; with one (server keys)
    a stored value is replaced when the import survivorship rules let this source replace it.
    """
    changed: set[str] = set()
    kept: set[str] = set()
    sources = customer.field_sources or {}
    # The city goes first: a province is not changed under a city that is kept.
    for name, value in sorted(profile.items(), key=lambda item: item[0] != "city"):
        current = getattr(customer, name)
        if current == value:
            continue
        if name == "province" and "city" in kept:
            continue
        if current not in (None, ""):
            if order is None or not may_overwrite(
                current_source=sources.get(name) or customer.source_channel,
                incoming_source=label,
                order=order,
            ):
                kept.add(name)
                continue
        elif (
            name == "city"
            and order is None
            and customer.province
            and profile.get("province") != customer.province
        ):
            kept.add(name)  # a city outside the stored province is not a gap to fill
            continue
        setattr(customer, name, value)
        changed.add(name)
    if changed:
        mark_field_sources(customer, changed, label)
    return changed


def _find_claimed_customer(
    claims: list[tuple[str, str, str]],
    owners: dict[tuple[str, str, str], int],
    profile: dict[str, object],
    customers: dict[int, Customer],
) -> int | None:
    """Return the customer a server key's email or phone names, unless the traits contradict it.

    As in imports: a name, birthday or gender that disagrees with the stored person means a
    shared or reassigned email or phone, not the same person (kequn.ingest.survivorship).
    """
    for key in claims:
        customer_id = owners.get(key)
        if customer_id is None:
            continue
        if customer_id not in customers:
            customers[customer_id] = Customer.objects.get(pk=customer_id)
        customer = customers[customer_id]
        current = {name: getattr(customer, name) for name in IDENTIFYING_FIELDS}
        if not find_conflicts(current, profile):
            return customer_id
    return None


@dataclass
class ProfileChange:
    """What one batch of messages did to one customer (names, never values)."""

    created: bool = False
    fields: set[str] = field(default_factory=set)
    identities: set[str] = field(default_factory=set)
    anonymous_ids: int = 0
    held_claims: set[str] = field(default_factory=set)


@transaction.atomic
def collect_events(*, source: Source, messages: list[dict]) -> int:
    """Store Segment messages and apply what they say about customers, as far as the key is trusted.

    Known message ids are dropped and anonymous ids are stitched. A client key's identify only
    fills empty profile fields and adds unclaimed identities to the customer its own userId
    names; an email or phone that belongs to someone else is kept on the event as an unverified
    trait and offered in the review queue. A server key may correct fields as far as the
    import survivorship rules let its source, and may find the customer of a new userId by
    an email or phone whose owner the traits do not contradict. Each changed customer gets
    one audit entry.
    """
    now = timezone.now()
    messages = _without_suppressed(messages)
    trusted = source.key_type == Source.KeyType.SERVER
    label, order = get_source_label(source), get_trust_order() if trusted else None
    claims_of = [_claims(_identify_traits(m)) for m in messages]
    user_keys = {("external", "segment", _user_id(m)) for m in messages if _user_id(m)}
    owners = find_identity_owners(user_keys | {k for claims in claims_of for k in claims})
    customers: dict[int, Customer] = {}
    changes: dict[int, ProfileChange] = {}
    held: dict[int, dict[str, str]] = {}  # message index → claims kept as unverified traits
    pairs: dict[tuple[int, int], set[str]] = {}
    identities: list[Identity] = []
    with audit.suppress_model_events():  # one entry per customer below, not one per row
        for index, message in enumerate(messages):
            user_id = _user_id(message)
            if not user_id:
                continue
            traits, claims = _identify_traits(message), claims_of[index]
            user_key = ("external", "segment", user_id)
            customer_id = owners.get(user_key)
            profile = _traits_profile(traits)
            if customer_id is None and trusted:
                customer_id = _find_claimed_customer(claims, owners, profile, customers)
            if customer_id is None:
                customer = Customer(source_channel="segment", **profile)
                mark_field_sources(customer, profile, label)
                customer.save()
                customer_id = customer.pk
                customers[customer_id] = customer
                changes[customer_id] = ProfileChange(created=True, fields=set(profile))
            elif profile:
                if customer_id not in customers:
                    customers[customer_id] = Customer.objects.get(pk=customer_id)
                changed = _apply_profile(customers[customer_id], profile, label=label, order=order)
                if changed:
                    changes.setdefault(customer_id, ProfileChange()).fields |= changed
            change = changes.setdefault(customer_id, ProfileChange())
            for key in (user_key, *claims):
                owner = owners.get(key)
                if owner is None:
                    owners[key] = customer_id
                    identities.append(
                        Identity(customer_id=customer_id, kind=key[0], system=key[1], value=key[2])
                    )
                    change.identities.add(key[0])
                elif owner != customer_id:
                    # Someone else's email or phone: a hint for a person to review, not a link.
                    held.setdefault(index, {})[key[0]] = key[2]
                    pairs.setdefault((min(owner, customer_id), max(owner, customer_id)), set()).add(
                        key[0]
                    )
                    change.held_claims.add(key[0])
        Identity.objects.bulk_create(identities, ignore_conflicts=True)
        for customer_id, change in changes.items():
            if change.fields and not change.created:
                names = {*change.fields, "updated_at", "field_sources"}
                if "birthday" in names:
                    names.add("birth_year")  # derived from the birthday in pre_save
                customers[customer_id].save(update_fields=sorted(names))
    if pairs:
        MatchCandidate.objects.bulk_create(
            [
                MatchCandidate(left_id=a, right_id=b, score=CLAIM_SCORE, details={
                    "rule": "claimed in identify", "source": source.name,
                    "key_type": source.key_type, "kinds": sorted(kinds),
                })
                for (a, b), kinds in pairs.items()
            ],
            ignore_conflicts=True,
        )  # fmt: skip
    known = _link_anonymous_ids(source, messages, owners, changes)
    _record_changes(source, changes)
    events = []
    seen: set[str] = set()
    for index, message in enumerate(messages):
        kind = message["type"]
        message_id = str(message.get("messageId") or "")[:100] or None
        if message_id:
            if message_id in seen:
                continue
            seen.add(message_id)
        anonymous_id = str(message.get("anonymousId") or "")[:100]
        user_id = _user_id(message)
        customer_id = owners.get(("external", "segment", user_id)) if user_id else None
        customer_id = customer_id or known.get(anonymous_id)
        if kind == "track":
            name, properties = message.get("event") or "", message.get("properties")
        elif kind in ("page", "screen"):
            name, properties = message.get("name") or "", message.get("properties")
        elif kind == "group":
            name, properties = (
                str(message.get("groupId") or ""),
                _public_traits(message.get("traits")),
            )
        elif kind == "alias":
            name, properties = "", {"previousId": message.get("previousId")}
        else:
            name, properties = "", _public_traits(message.get("traits"))
        properties = properties if isinstance(properties, dict) else {}
        if index in held:
            # Encrypted on save with the other personal values of the properties.
            properties = {**properties, "unverified": held[index]}
        context = message.get("context") if isinstance(message.get("context"), dict) else {}
        events.append(
            Event(
                type=kind, name=str(name)[:100], occurred_at=_timestamp(message.get("timestamp"), now),
                received_at=now, customer_id=customer_id, anonymous_id=anonymous_id,
                channel=str(context.get("channel") or message.get("channel") or "")[:50],
                message_id=message_id, properties=properties,
            )
        )  # fmt: skip
    Event.objects.bulk_create(events, batch_size=1000, ignore_conflicts=True)
    return len(events)


def _link_anonymous_ids(
    source: Source,
    messages: list[dict],
    owners: dict[tuple[str, str, str], int],
    changes: dict[int, ProfileChange],
) -> dict[str, int]:
    """Link anonymous ids to the customers of their messages; return every known link."""
    links: dict[str, int] = {}
    for message in messages:
        customer_id = owners.get(("external", "segment", _user_id(message)))
        if customer_id is None:
            continue
        if message["type"] in ("identify", "alias", "track", "page", "screen") and message.get(
            "anonymousId"
        ):
            links[str(message["anonymousId"])[:100]] = customer_id
        if message["type"] == "alias" and message.get("previousId"):
            links[str(message["previousId"])[:100]] = customer_id
    anonymous_ids = {str(m["anonymousId"])[:100] for m in messages if m.get("anonymousId")}
    known = dict(
        AnonymousLink.objects.filter(anonymous_id__in=anonymous_ids | set(links)).values_list(
            "anonymous_id", "customer_id"
        )
    )
    # An anonymous id linked once stays with its customer: a later claim cannot move it.
    new = {a: c for a, c in links.items() if a not in known}
    if new:
        AnonymousLink.objects.bulk_create(
            [AnonymousLink(anonymous_id=a, customer_id=c, source=source) for a, c in new.items()],
            ignore_conflicts=True,
        )
        known.update(
            AnonymousLink.objects.filter(anonymous_id__in=list(new)).values_list(
                "anonymous_id", "customer_id"
            )
        )
        by_customer: dict[int, list[str]] = {}
        for anonymous_id in new:
            by_customer.setdefault(known[anonymous_id], []).append(anonymous_id)
        for customer_id, ids in by_customer.items():
            changes.setdefault(customer_id, ProfileChange()).anonymous_ids += len(ids)
            # Earlier anonymous events join the customer's timeline.
            Event.objects.filter(anonymous_id__in=ids, customer__isnull=True).update(
                customer_id=customer_id
            )
    return known


def _record_changes(source: Source, changes: dict[int, ProfileChange]) -> None:
    """Write one audit entry per customer the messages changed: source, key type, field names."""
    for customer_id, change in changes.items():
        if not (
            change.created
            or change.fields
            or change.identities
            or change.anonymous_ids
            or change.held_claims
        ):
            continue
        audit.record_event(
            audit.CREATE if change.created else audit.CHANGE,
            target_type="customers.customer",
            target_id=str(customer_id),
            detail={
                "via": "events",
                "customer": customer_id,
                "source": source.name,
                "source_id": source.pk,
                "key_type": source.key_type,
                "fields": sorted(change.fields),
                "identities": sorted(change.identities),
                "anonymous_ids": change.anonymous_ids,
                "held_claims": sorted(change.held_claims),
            },
        )
