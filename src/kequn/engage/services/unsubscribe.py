"""One-click unsubscribe: a signed link withdraws the customer's marketing consent on a channel."""

from __future__ import annotations

from django.core import signing

from kequn.customers.models import Consent, Customer
from kequn.customers.services import record_consent
from kequn.engage.services.audience import CONSENT_CHANNELS, UNSUBSCRIBE_SOURCE
from kequn.engage.services.outbox import read_unsubscribe_token
from kequn.security.actors import Actor


def unsubscribe(token: str, *, by: Actor) -> Consent | None:
    """Withdraw the consent a token names; None when the customer is gone (erased or merged away).

    Raises signing.BadSignature for a token that was altered.
    """
    data = read_unsubscribe_token(token)
    channel = CONSENT_CHANNELS.get(str(data.get("ch")))
    if channel is None:
        raise signing.BadSignature("unknown channel in unsubscribe token")
    customer = Customer.objects.filter(pk=data["c"]).first()
    if customer is None:
        return None
    while customer.merged_into_id is not None:  # the link outlives a merge: follow it
        customer = Customer.objects.get(pk=customer.merged_into_id)
    source = f"{UNSUBSCRIBE_SOURCE}:{data.get('s', '')}"[:100]
    return record_consent(customer, channel, Consent.Purpose.MARKETING, False, source, by=by)
