"""Data-subject requests: open, verify, reject, and carry them out by type.

Deadlines: PIPL practice in China is to answer within 15 days (the national standard
GB/T 35273 and the CAC's app rules); GDPR article 12(3) allows one month, extendable by two
more for complex requests. KEQUN_PRIVACY_DEADLINE_DAYS sets the default [15]; a business
under GDPR only may set it to 30.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from kequn.customers.models import Customer
from kequn.privacy.models import PrivacyRequest
from kequn.privacy.services.base import PrivacyError, check_open, record_privacy_event
from kequn.privacy.services.consent import withdraw_consent
from kequn.privacy.services.erasure import erase_customer
from kequn.privacy.services.export import write_export_file
from kequn.privacy.services.parameters import check_parameters
from kequn.privacy.services.restriction import (
    correct_customer,
    lift_restriction,
    restrict_processing,
)
from kequn.security.actors import Actor, get_user_or_none


def get_deadline_days() -> int:
    """Return the days allowed to answer a request (KEQUN_PRIVACY_DEADLINE_DAYS, default 15)."""
    return int(getattr(settings, "KEQUN_PRIVACY_DEADLINE_DAYS", 15))


def compute_deadline(received_at: datetime, days: int | None = None) -> datetime:
    """Return the end of the last day allowed, in the business time zone."""
    days = get_deadline_days() if days is None else days
    local = timezone.localtime(received_at) + timedelta(days=days)
    return local.replace(hour=23, minute=59, second=59, microsecond=0)


def get_overdue_requests() -> QuerySet[PrivacyRequest]:
    """Return open requests past their deadline."""
    return PrivacyRequest.objects.filter(
        status__in=PrivacyRequest.OPEN_STATUSES, deadline__lt=timezone.now()
    )


@transaction.atomic
def open_request(
    kind: str,
    customer: Customer,
    *,
    channel: str = PrivacyRequest.Channel.EMAIL,
    parameters: dict | None = None,
    notes: str = "",
    received_at: datetime | None = None,
    by: Actor | None,
) -> PrivacyRequest:
    """Record a new request; its deadline runs from the day it was received."""
    if kind not in PrivacyRequest.Type.values:
        raise PrivacyError(
            _("unknown request type %(t)r: use %(ok)s")
            % {"t": kind, "ok": ", ".join(PrivacyRequest.Type.values)}
        )
    if channel not in PrivacyRequest.Channel.values:
        raise PrivacyError(
            _("unknown channel %(c)r: use %(ok)s")
            % {"c": channel, "ok": ", ".join(PrivacyRequest.Channel.values)}
        )
    received_at = received_at or timezone.now()
    request = PrivacyRequest.objects.create(
        type=kind,
        customer=customer,
        subject_ref=customer.pk,
        channel=channel,
        parameters=check_parameters(kind, parameters or {}),
        notes=notes,
        received_at=received_at,
        deadline=compute_deadline(received_at),
        created_by=get_user_or_none(by),
    )
    record_privacy_event("DATA_SUBJECT_REQUEST", request, by, step="opened")
    return request


@transaction.atomic
def verify_identity(request: PrivacyRequest, method: str, *, by: Actor | None) -> PrivacyRequest:
    """Record how the requester's identity was checked; the request may then be executed."""
    if method not in PrivacyRequest.IdentityMethod.values:
        raise PrivacyError(
            _("unknown identity check %(m)r: use %(ok)s")
            % {"m": method, "ok": ", ".join(PrivacyRequest.IdentityMethod.values)}
        )
    check_open(request)
    request.identity_method = method
    request.identity_verified_by = get_user_or_none(by)
    request.identity_verified_at = timezone.now()
    if request.status == PrivacyRequest.Status.RECEIVED:
        request.status = PrivacyRequest.Status.VERIFIED
    request.save()
    record_privacy_event(
        "DATA_SUBJECT_REQUEST", request, by, step="identity_verified", method=method
    )
    return request


@transaction.atomic
def reject_request(request: PrivacyRequest, reason: str, *, by: Actor | None) -> PrivacyRequest:
    """Close a request without carrying it out; the reason is kept for the requester."""
    if not reason.strip():
        raise PrivacyError(_("give the reason for rejecting the request"))
    check_open(request)
    request.status = PrivacyRequest.Status.REJECTED
    request.rejection_reason = reason.strip()
    request.handled_by = get_user_or_none(by)
    request.completed_at = timezone.now()
    request.save()
    record_privacy_event("DATA_SUBJECT_REQUEST", request, by, step="rejected")
    return request


def execute_request(request: PrivacyRequest, *, by: Actor | None) -> PrivacyRequest:
    """Carry out a verified request according to its type; return it done."""
    kind = request.type
    if kind == PrivacyRequest.Type.EXPORT:
        write_export_file(request, by=by)
    elif kind == PrivacyRequest.Type.CORRECTION:
        correct_customer(
            request.customer, request.parameters.get("fields", {}), request=request, by=by
        )
    elif kind == PrivacyRequest.Type.ERASURE:
        erase_customer(request.customer, request=request, by=by)
    elif kind == PrivacyRequest.Type.WITHDRAW_CONSENT:
        withdraw_consent(
            request.customer,
            request.parameters.get("channels"),
            request.parameters.get("purposes"),
            request=request,
            by=by,
        )
    elif kind == PrivacyRequest.Type.RESTRICT:
        restrict_processing(request.customer, request=request, by=by)
    elif kind == PrivacyRequest.Type.LIFT_RESTRICTION:
        lift_restriction(request.customer, request=request, by=by)
    request.refresh_from_db()
    return request
