"""What every data-subject request step shares: the error, the audit entry, a request's course."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

from kequn.customers.models import Customer
from kequn.privacy.models import PrivacyRequest
from kequn.security.actors import Actor, get_user_or_none
from kequn.security.audit import services as audit


class PrivacyError(ValidationError):
    """A request that cannot be carried out now; the message says what to do."""


def record_privacy_event(
    action: str, privacy_request: PrivacyRequest | None, by: Actor | None, **detail: Any
) -> None:
    """Record an audit entry (ids and names only, never personal values)."""
    target_id = ""
    if privacy_request is not None:
        target_id = str(privacy_request.pk)
        detail.setdefault("type", privacy_request.type)
        if privacy_request.subject_ref:
            detail.setdefault("customer_id", privacy_request.subject_ref)
    audit.record_event(
        getattr(audit, action.upper(), action),
        actor=by,
        target_type="privacy.privacyrequest"
        if privacy_request is not None
        else "customers.customer",
        target_id=target_id or str(detail.get("customer_id", "")),
        detail={"privacy": action.lower(), **detail},
    )


def check_open(request: PrivacyRequest) -> None:
    """Raise a clear error when the request is closed already."""
    if not request.is_open:
        raise PrivacyError(
            _("request #%(id)s is already closed (status: %(s)s)")
            % {"id": request.pk, "s": request.get_status_display()}
        )


def start_request(request: PrivacyRequest, by: Actor | None) -> Customer:
    """Mark a verified, open request as in progress; return its customer."""
    check_open(request)
    if not request.is_identity_verified:
        raise PrivacyError(
            _("verify the requester's identity before carrying out request #%(id)s")
            % {"id": request.pk}
        )
    if request.customer_id is None:
        raise PrivacyError(
            _("request #%(id)s has no customer (erased already?)") % {"id": request.pk}
        )
    PrivacyRequest.objects.filter(pk=request.pk).update(
        status=PrivacyRequest.Status.IN_PROGRESS, handled_by=get_user_or_none(by)
    )
    request.status = PrivacyRequest.Status.IN_PROGRESS
    return request.customer


def finish_request(
    request: PrivacyRequest, by: Actor | None, result: dict, **fields: Any
) -> PrivacyRequest:
    """Close a request as done, keeping what was done (counts and names, not values)."""
    request.status = PrivacyRequest.Status.DONE
    request.handled_by = get_user_or_none(by)
    request.completed_at = timezone.now()
    request.result = json.loads(json.dumps(result, default=str))
    for name, value in fields.items():
        setattr(request, name, value)
    request.save()
    return request


def check_request(request: PrivacyRequest | None, kind: str, customer: Customer | None) -> None:
    """Raise a clear error when a request given with a step is of another type or person."""
    if request is None:
        return
    if request.type != kind:
        raise PrivacyError(
            _("request #%(id)s is of another type (%(t)s)")
            % {"id": request.pk, "t": request.get_type_display()}
        )
    if customer is not None and request.customer_id not in (None, customer.pk):
        raise PrivacyError(
            _("request #%(id)s is about customer #%(c)s")
            % {"id": request.pk, "c": request.customer_id}
        )


def get_record_ids(customer: Customer) -> list[int]:
    """Return the surviving record and every record merged into it (the whole person)."""
    root = customer
    seen = {root.pk}
    while root.merged_into_id and root.merged_into_id not in seen:
        root = Customer.objects.get(pk=root.merged_into_id)
        seen.add(root.pk)
    ids, frontier = [root.pk], [root.pk]
    while frontier:
        frontier = [
            pk
            for pk in Customer.objects.filter(merged_into_id__in=frontier).values_list(
                "pk", flat=True
            )
            if pk not in ids
        ]
        ids.extend(frontier)
    return ids
