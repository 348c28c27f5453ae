"""Who may receive a message now: consent, address, suppression, restriction, by customer."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from kequn.customers.models import Consent, Customer, Identity
from kequn.engage.models import Purpose, Suppression
from kequn.privacy.services.suppression import find_suppressed
from kequn.security.keys import derive_key

# The identity kind holding each channel's address; a webhook goes to a configured URL.
ADDRESS_KINDS = {"email": "email", "sms": "phone", "wechat": "wechat"}
# The consent channel asked for each message channel.
CONSENT_CHANNELS = {"email": "email", "sms": "sms", "wechat": "wechat"}
UNSUBSCRIBE_SOURCE = "unsubscribe"
CHUNK = 2000


@dataclass(frozen=True)
class Eligibility:
    """A customer's standing for one channel and purpose: the address or the skip reason."""

    address: str = ""
    skip_reason: str = ""
    language: str = ""


def hash_address(channel: str, address: str) -> str:
    """Return the keyed hash under which an address is suppressed."""
    message = f"{channel}\x1f{address.strip().lower()}".encode()
    return hmac.new(derive_key("engage-suppression"), message, hashlib.sha256).hexdigest()


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def _latest_consents(ids: list[int], channel: str, purpose: str) -> dict[int, tuple[bool, str]]:
    """Return (granted, source) of each customer's latest consent on the channel and purpose."""
    latest: dict[int, tuple[bool, str]] = {}
    for chunk in _chunks(ids):
        rows = (
            Consent.objects.filter(customer_id__in=chunk, channel=channel, purpose=purpose)
            .order_by("customer_id", "recorded_at", "id")
            .values_list("customer_id", "granted", "source")
        )
        for customer_id, granted, source in rows:
            latest[customer_id] = (granted, source)  # later rows overwrite: the latest wins
    return latest


def get_tracking_consented(ids: list[int], channel: str) -> set[int]:
    """Return the customers whose latest tracking consent on the channel is granted (email only)."""
    if channel != "email" or not ids:  # only email carries a pixel and redirected links
        return set()
    latest = _latest_consents(ids, CONSENT_CHANNELS[channel], Consent.Purpose.TRACKING)
    return {pk for pk, (granted, _source) in latest.items() if granted}


def _addresses(ids: list[int], kind: str) -> dict[int, str]:
    """Return each customer's address of a kind: a verified one first, then the newest."""
    found: dict[int, str] = {}
    for chunk in _chunks(ids):
        rows = Identity.objects.filter(customer_id__in=chunk, kind=kind).order_by(
            "customer_id", "verified", "created_at", "id"
        )
        for identity in rows.only("customer_id", "value", "verified", "created_at"):
            found[identity.customer_id] = identity.value  # the best row comes last
    return found


def check_eligibility(
    customer_ids: Iterable[int], channel: str, purpose: str
) -> dict[int, Eligibility]:
    """Return each customer's address or skip reason for a message on the channel now.

    Marketing needs the latest consent on the channel granted; a transactional message needs
    only an address. Both skip erased, merged and restricted customers and suppressed addresses.
    """
    ids = sorted(set(customer_ids))
    result: dict[int, Eligibility] = {}
    people: dict[int, tuple[bool, int | None, str]] = {}
    for chunk in _chunks(ids):
        for pk, restricted, merged, language in Customer.objects.filter(pk__in=chunk).values_list(
            "pk", "processing_restricted", "merged_into_id", "preferred_language"
        ):
            people[pk] = (restricted, merged, language)
    live: list[int] = []
    for pk in ids:
        if pk not in people:
            result[pk] = Eligibility(skip_reason="erased")
        elif people[pk][1] is not None:
            result[pk] = Eligibility(skip_reason="merged")
        elif people[pk][0] and purpose == Purpose.MARKETING:
            result[pk] = Eligibility(skip_reason="restricted")
        else:
            live.append(pk)
    if purpose == Purpose.MARKETING and channel in CONSENT_CHANNELS:
        consents = _latest_consents(live, CONSENT_CHANNELS[channel], Consent.Purpose.MARKETING)
        remaining = []
        for pk in live:
            granted, source = consents.get(pk, (None, ""))
            if granted is None:
                result[pk] = Eligibility(skip_reason="no_consent")
            elif not granted:
                reason = "unsubscribed" if source.startswith(UNSUBSCRIBE_SOURCE) else "withdrawn"
                result[pk] = Eligibility(skip_reason=reason)
            else:
                remaining.append(pk)
        live = remaining
    kind = ADDRESS_KINDS.get(channel)
    if kind is None:  # a webhook: the channel's own URL, nothing per customer
        for pk in live:
            result[pk] = Eligibility(language=people[pk][2])
        return result
    addresses = _addresses(live, kind)
    hashes = {pk: hash_address(channel, a) for pk, a in addresses.items()}
    bounced: set[str] = set()
    values = list(hashes.values())
    for start in range(0, len(values), CHUNK):
        bounced.update(
            Suppression.objects.filter(
                channel=channel, address_hash__in=values[start : start + CHUNK]
            ).values_list("address_hash", flat=True)
        )
    erased = find_suppressed({(kind, "", a) for a in addresses.values()})
    for pk in live:
        address = addresses.get(pk)
        if not address:
            result[pk] = Eligibility(skip_reason="no_address")
        elif hashes[pk] in bounced or (kind, "", address) in erased:
            result[pk] = Eligibility(skip_reason="suppressed")
        else:
            result[pk] = Eligibility(address=address, language=people[pk][2])
    return result
