"""Withdraw a person's consents, and keep only the customers that may be marketed to."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.db.models import BooleanField, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from kequn.customers.models import Consent, Customer
from kequn.privacy.models import PrivacyRequest
from kequn.privacy.services.base import (
    check_request,
    finish_request,
    get_record_ids,
    record_privacy_event,
    start_request,
)
from kequn.privacy.services.parameters import MARKETING, check_parameters
from kequn.security.actors import Actor


@transaction.atomic
def withdraw_consent(
    customer: Customer,
    channels: Iterable[str] | None = None,
    purposes: Iterable[str] | None = None,
    *,
    request: PrivacyRequest | None = None,
    by: Actor | None,
) -> list[Consent]:
    """Record withdrawn consents (marketing on every channel unless told); effective at once."""
    check_request(request, PrivacyRequest.Type.WITHDRAW_CONSENT, customer)
    params = check_parameters(
        PrivacyRequest.Type.WITHDRAW_CONSENT,
        {"channels": list(channels or []), "purposes": list(purposes or [])},
    )
    if request is not None:
        start_request(request, by)
    source = _("data-subject request #%(id)s") % {"id": request.pk} if request else _("withdrawal")
    now = timezone.now()
    # Appended rows, never updates: the consent history stays and the latest row wins.
    rows = Consent.objects.bulk_create(
        [
            Consent(
                customer_id=pk,
                channel=c,
                purpose=p,
                granted=False,
                source=source[:100],
                recorded_at=now,
            )
            for pk in get_record_ids(customer)
            for c in params["channels"]
            for p in params["purposes"]
        ]
    )
    if request is not None:
        withdrawn = [f"{c}/{p}" for c in params["channels"] for p in params["purposes"]]
        finish_request(request, by, {"withdrawn": withdrawn})
    record_privacy_event(
        "CHANGE", request, by, customer_id=customer.pk, consent_withdrawn=len(rows)
    )
    return rows


def filter_marketable(queryset: QuerySet, channel: str | None = None) -> QuerySet:
    """Keep customers that may receive marketing now: consent in force, processing allowed."""
    channels = [channel] if channel else list(Consent.Channel.values)
    allowed = Q()
    for name in channels:
        # The latest decision per channel counts; a later withdrawal beats an earlier grant.
        latest = (
            Consent.objects.filter(customer=OuterRef("pk"), channel=name, purpose=MARKETING)
            .order_by("-recorded_at", "-id")
            .values("granted")[:1]
        )
        allowed |= Q(Subquery(latest, output_field=BooleanField()))
    return queryset.filter(processing_restricted=False).filter(allowed)
