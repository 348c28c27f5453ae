"""Correct a person's profile, restrict or allow processing of their data."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from kequn.customers.models import Customer
from kequn.customers.services import update_customer
from kequn.privacy.models import PrivacyRequest
from kequn.privacy.services.base import (
    check_request,
    finish_request,
    get_record_ids,
    record_privacy_event,
    start_request,
)
from kequn.privacy.services.parameters import check_parameters
from kequn.security.actors import Actor
from kequn.security.personal_data import get_entries


@transaction.atomic
def correct_customer(
    customer: Customer,
    fields: dict[str, Any],
    *,
    request: PrivacyRequest | None = None,
    by: Actor | None,
) -> Customer:
    """Correct profile fields through the customers services; the new values are not kept twice."""
    check_request(request, PrivacyRequest.Type.CORRECTION, customer)
    if request is not None:
        start_request(request, by)
    fields = check_parameters(PrivacyRequest.Type.CORRECTION, {"fields": fields})["fields"]
    customer = update_customer(customer, fields, by=by)
    if request is not None:
        # The request keeps which fields changed, not the values (they live on the customer).
        finish_request(
            request, by, {"fields": sorted(fields)}, parameters={"fields": sorted(fields)}
        )
    record_privacy_event("CHANGE", request, by, customer_id=customer.pk, fields=sorted(fields))
    return customer


def _set_restricted(
    customer: Customer,
    restricted: bool,
    request: PrivacyRequest | None,
    by: Actor | None,
    kind: str,
) -> Customer:
    check_request(request, kind, customer)
    if request is not None:
        start_request(request, by)
    Customer.objects.filter(pk__in=get_record_ids(customer)).update(
        processing_restricted=restricted, updated_at=timezone.now()
    )
    customer.processing_restricted = restricted
    if request is not None:
        finish_request(request, by, {"processing_restricted": restricted})
    record_privacy_event(
        "CHANGE", request, by, customer_id=customer.pk, processing_restricted=restricted
    )
    return customer


@transaction.atomic
def restrict_processing(
    customer: Customer, *, request: PrivacyRequest | None = None, by: Actor | None
) -> Customer:
    """Keep the record but stop scoring, segmenting, recommending, exporting and marketing it."""
    ids = get_record_ids(customer)
    customer = _set_restricted(customer, True, request, by, PrivacyRequest.Type.RESTRICT)
    # Derived audiences and rankings are dropped now, not at the next nightly refresh.
    for entry in get_entries():
        if entry.derived:
            entry.model._default_manager.filter(entry.filter_for(ids)).delete()
    return customer


@transaction.atomic
def lift_restriction(
    customer: Customer, *, request: PrivacyRequest | None = None, by: Actor | None
) -> Customer:
    """Allow processing again; scores and segments catch up at their next refresh."""
    return _set_restricted(customer, False, request, by, PrivacyRequest.Type.LIFT_RESTRICTION)
