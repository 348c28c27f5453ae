"""Data-subject requests: open, verify, execute (export, correct, erase, withdraw, restrict).

Deadlines: PIPL practice in China is to answer within 15 days (the national standard
GB/T 35273 and the CAC's app rules); GDPR article 12(3) allows one month, extendable by two
more for complex requests. KEQUN_PRIVACY_DEADLINE_DAYS sets the default [15]; a business
under GDPR only may set it to 30.

Erasure deletes the person's rows and keeps their orders anonymised (detached from any
customer): orders are accounting records that Chinese law requires to be kept for years
(Accounting Archives Management Measures: 30 years for vouchers and books). Every identity of
the erased person goes on the suppression list as a keyed hash (HMAC-SHA256 with a key
derived from the master key, which lives outside the database), so a later import or event
does not bring them back and the list itself holds no plaintext.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import os
import secrets
import zipfile
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import BooleanField, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from kequn.customers.identities import IdentityError, normalize_identity
from kequn.customers.models import Consent, Customer
from kequn.privacy import journal as erasure_journal
from kequn.privacy.models import PrivacyRequest, Suppression
from kequn.security.inputs import DATE_YEARS, is_in_years
from kequn.security.keys import derive_key

MARKETING = Consent.Purpose.MARKETING


class PrivacyError(ValidationError):
    """A request that cannot be carried out now; the message says what to do."""


# ---------------------------------------------------------------- audit


def _audit(action: str, privacy_request: PrivacyRequest | None, by, **detail: Any) -> None:
    """Record an audit entry (ids and names only, never personal values)."""
    from kequn.security.audit import services as audit

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


# ---------------------------------------------------------------- requests


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


def _check_correction_values(fields: dict) -> None:
    # A list or number became its Python repr (['a']) as the new name; a birthday in year 1
    # overflowed later. New values are text, as typed on a correction form.
    not_text = sorted(name for name, value in fields.items() if not isinstance(value, str))
    if not_text:
        raise PrivacyError(
            _('correction values must be text: %(f)s (e.g. {"name": "new value"})')
            % {"f": ", ".join(not_text)}
        )
    birthday = fields.get("birthday")
    if birthday:
        try:
            valid = is_in_years(date.fromisoformat(birthday), DATE_YEARS)
        except ValueError:
            valid = False
        if not valid:
            raise PrivacyError(
                _("the corrected birthday must be a date YYYY-MM-DD between %(low)s and %(high)s")
                % {"low": f"{DATE_YEARS[0]}-01-01", "high": f"{DATE_YEARS[1]}-12-31"}
            )


def _check_parameters(kind: str, parameters: dict) -> dict:
    if not isinstance(parameters, dict):
        raise PrivacyError(_("parameters must be a JSON object"))
    if kind == PrivacyRequest.Type.CORRECTION:
        from kequn.customers.services import PROFILE_FIELDS

        fields = parameters.get("fields")
        if not isinstance(fields, dict) or not fields:
            raise PrivacyError(
                _('a correction needs {"fields": {"name": "new value", ...}} with the new values')
            )
        unknown = sorted(set(fields) - set(PROFILE_FIELDS))
        if unknown:
            raise PrivacyError(
                _("cannot correct %(f)s: use one of %(ok)s")
                % {"f": ", ".join(unknown), "ok": ", ".join(PROFILE_FIELDS)}
            )
        _check_correction_values(fields)
    if kind == PrivacyRequest.Type.WITHDRAW_CONSENT:
        channels = parameters.get("channels") or list(Consent.Channel.values)
        purposes = parameters.get("purposes") or [MARKETING]
        bad = [c for c in channels if c not in Consent.Channel.values] + [
            p for p in purposes if p not in Consent.Purpose.values
        ]
        if bad:
            raise PrivacyError(
                _("unknown consent channel or purpose %(v)s: channels are %(c)s, purposes %(p)s")
                % {
                    "v": ", ".join(map(str, bad)),
                    "c": ", ".join(Consent.Channel.values),
                    "p": ", ".join(Consent.Purpose.values),
                }
            )
        parameters = {**parameters, "channels": list(channels), "purposes": list(purposes)}
    return parameters


@transaction.atomic
def open_request(
    kind: str,
    customer: Customer,
    *,
    channel: str = PrivacyRequest.Channel.EMAIL,
    parameters: dict | None = None,
    notes: str = "",
    received_at: datetime | None = None,
    by: AbstractBaseUser | None = None,
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
        parameters=_check_parameters(kind, parameters or {}),
        notes=notes,
        received_at=received_at,
        deadline=compute_deadline(received_at),
        created_by=by if getattr(by, "pk", None) else None,
    )
    _audit("DATA_SUBJECT_REQUEST", request, by, step="opened")
    return request


def _user(by: AbstractBaseUser | None) -> AbstractBaseUser | None:
    return by if getattr(by, "pk", None) else None


def verify_identity(
    request: PrivacyRequest, method: str, by: AbstractBaseUser | None = None
) -> PrivacyRequest:
    """Record how the requester's identity was checked; the request may then be executed."""
    if method not in PrivacyRequest.IdentityMethod.values:
        raise PrivacyError(
            _("unknown identity check %(m)r: use %(ok)s")
            % {"m": method, "ok": ", ".join(PrivacyRequest.IdentityMethod.values)}
        )
    if not request.is_open:
        raise PrivacyError(
            _("request #%(id)s is already closed (status: %(s)s)")
            % {"id": request.pk, "s": request.get_status_display()}
        )
    request.identity_method = method
    request.identity_verified_by = _user(by)
    request.identity_verified_at = timezone.now()
    if request.status == PrivacyRequest.Status.RECEIVED:
        request.status = PrivacyRequest.Status.VERIFIED
    request.save()
    _audit("DATA_SUBJECT_REQUEST", request, by, step="identity_verified", method=method)
    return request


def reject_request(
    request: PrivacyRequest, reason: str, by: AbstractBaseUser | None = None
) -> PrivacyRequest:
    """Close a request without carrying it out; the reason is kept for the requester."""
    if not reason.strip():
        raise PrivacyError(_("give the reason for rejecting the request"))
    if not request.is_open:
        raise PrivacyError(
            _("request #%(id)s is already closed (status: %(s)s)")
            % {"id": request.pk, "s": request.get_status_display()}
        )
    request.status = PrivacyRequest.Status.REJECTED
    request.rejection_reason = reason.strip()
    request.handled_by = _user(by)
    request.completed_at = timezone.now()
    request.save()
    _audit("DATA_SUBJECT_REQUEST", request, by, step="rejected")
    return request


def _start(request: PrivacyRequest, by) -> Customer:
    if not request.is_open:
        raise PrivacyError(
            _("request #%(id)s is already closed (status: %(s)s)")
            % {"id": request.pk, "s": request.get_status_display()}
        )
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
        status=PrivacyRequest.Status.IN_PROGRESS, handled_by=_user(by)
    )
    request.status = PrivacyRequest.Status.IN_PROGRESS
    return request.customer


def _finish(request: PrivacyRequest, by, result: dict, **fields: Any) -> PrivacyRequest:
    request.status = PrivacyRequest.Status.DONE
    request.handled_by = _user(by)
    request.completed_at = timezone.now()
    request.result = json.loads(json.dumps(result, default=str))
    for name, value in fields.items():
        setattr(request, name, value)
    request.save()
    return request


def execute_request(request: PrivacyRequest, by: AbstractBaseUser | None = None) -> PrivacyRequest:
    """Carry out a verified request according to its type; return it done."""
    kind = request.type
    if kind == PrivacyRequest.Type.EXPORT:
        write_export_file(request, by=by)
    elif kind == PrivacyRequest.Type.CORRECTION:
        correct_customer(request.customer, request.parameters.get("fields", {}), request, by=by)
    elif kind == PrivacyRequest.Type.ERASURE:
        erase_customer(request.customer, request, by=by)
    elif kind == PrivacyRequest.Type.WITHDRAW_CONSENT:
        withdraw_consent(
            request.customer,
            request.parameters.get("channels"),
            request.parameters.get("purposes"),
            request,
            by=by,
        )
    elif kind == PrivacyRequest.Type.RESTRICT:
        restrict_processing(request.customer, request, by=by)
    elif kind == PrivacyRequest.Type.LIFT_RESTRICTION:
        lift_restriction(request.customer, request, by=by)
    request.refresh_from_db()
    return request


def _check_request(request: PrivacyRequest | None, kind: str, customer: Customer | None) -> None:
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


# ---------------------------------------------------------------- the person's records


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


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _rows(queryset: QuerySet, fields: Iterable[str]) -> list[dict]:
    fields = list(fields)
    return [{f: _plain(v) for f, v in row.items()} for row in queryset.values(*fields)]


def _field_names(model) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields]


def collect_customer_data(customer: Customer) -> dict[str, list[dict]]:
    """Return every table's rows about the person (and records merged into them)."""
    from kequn.commerce.models import Order, OrderLine
    from kequn.customers.models import Address, CompanyContact, CustomerTag, Identity
    from kequn.events.models import AnonymousLink, Event
    from kequn.ingest.models import Merge
    from kequn.recommend.models import Recommendation
    from kequn.scoring.models import CustomerScore, StageChange
    from kequn.segments.models import MembershipChange, SegmentMember

    ids = get_record_ids(customer)
    by_customer = {"customer_id__in": ids}
    order_ids = Order.objects.filter(**by_customer).values("pk")
    return {
        "profile": _rows(
            Customer.objects.filter(pk__in=ids).order_by("id"), _field_names(Customer)
        ),
        "identities": _rows(
            Identity.objects.filter(**by_customer).order_by("id"),
            ["id", "customer_id", "kind", "system", "value", "verified", "created_at"],
        ),
        "addresses": _rows(
            Address.objects.filter(**by_customer).order_by("id"), _field_names(Address)
        ),
        "consents": _rows(
            Consent.objects.filter(**by_customer).order_by("recorded_at", "id"),
            _field_names(Consent),
        ),
        "tags": _rows(
            CustomerTag.objects.filter(**by_customer).order_by("id"),
            ["customer_id", "tag_id", "tag__name", "tag__group__name", "added_at"],
        ),
        "company_links": _rows(
            CompanyContact.objects.filter(Q(company_id__in=ids) | Q(contact_id__in=ids)).order_by(
                "id"
            ),
            [
                "id",
                "company_id",
                "company__name",
                "contact_id",
                "title",
                "is_primary",
                "created_at",
            ],
        ),
        "orders": _rows(
            Order.objects.filter(**by_customer).order_by("ordered_at", "id"),
            [*_field_names(Order), "channel__name"],
        ),
        "order_lines": _rows(
            OrderLine.objects.filter(order_id__in=order_ids).order_by("order_id", "id"),
            [*_field_names(OrderLine), "product__sku", "product__name"],
        ),
        "events": _rows(
            Event.objects.filter(**by_customer).order_by("occurred_at", "id"), _field_names(Event)
        ),
        "anonymous_ids": _rows(
            AnonymousLink.objects.filter(**by_customer).order_by("id"),
            ["anonymous_id", "customer_id", "created_at"],
        ),
        "scores": _rows(CustomerScore.objects.filter(**by_customer), _field_names(CustomerScore)),
        "stage_history": _rows(
            StageChange.objects.filter(**by_customer).order_by("changed_at", "id"),
            _field_names(StageChange),
        ),
        "segment_memberships": _rows(
            SegmentMember.objects.filter(**by_customer).order_by("id"),
            ["segment_id", "segment__name", "customer_id", "added_at"],
        ),
        "segment_history": _rows(
            MembershipChange.objects.filter(**by_customer).order_by("changed_at", "id"),
            ["segment_id", "segment__name", "customer_id", "change", "changed_at"],
        ),
        "recommendations": _rows(
            Recommendation.objects.filter(**by_customer).order_by("rank"),
            [
                "customer_id",
                "rank",
                "product_id",
                "product__sku",
                "product__name",
                "score",
                "source",
                "created_at",
            ],
        ),  # fmt: skip
        "merge_history": _rows(
            Merge.objects.filter(Q(target_id__in=ids) | Q(absorbed_id__in=ids)).order_by("id"),
            [
                "id",
                "target_id",
                "absorbed_id",
                "rule",
                "score",
                "snapshot",
                "created_at",
                "undone_at",
            ],
        ),  # fmt: skip
        "privacy_requests": _rows(
            PrivacyRequest.objects.filter(subject_ref__in=ids).order_by("id"),
            [
                "id",
                "type",
                "status",
                "channel",
                "received_at",
                "deadline",
                "identity_method",
                "identity_verified_at",
                "completed_at",
                "rejection_reason",
            ],
        ),  # fmt: skip
    }


def _csv_text(rows: list[dict]) -> str:
    buffer = io.StringIO()
    buffer.write("\ufeff")  # Excel opens UTF-8 Chinese text correctly with a BOM
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    writer = csv.DictWriter(buffer, fieldnames=columns or ["(no rows)"])
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                k: json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else v
                for k, v in row.items()
            }
        )
    return buffer.getvalue()


def export_customer_data(
    customer: Customer,
    request: PrivacyRequest | None = None,
    by: AbstractBaseUser | None = None,
) -> bytes:
    """Return a zip of the person's data: customer.json with everything, one CSV per table."""
    _check_request(request, PrivacyRequest.Type.EXPORT, customer)
    data = collect_customer_data(customer)
    exported_at = timezone.now()
    document = {
        "customer_id": customer.pk,
        "exported_at": exported_at.isoformat(),
        "request_id": request.pk if request else None,
        "tables": data,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "customer.json", json.dumps(document, ensure_ascii=False, indent=2, default=str)
        )
        for table, rows in data.items():
            archive.writestr(f"csv/{table}.csv", _csv_text(rows))
    counts = {table: len(rows) for table, rows in data.items()}
    _audit("EXPORT", request, by, customer_id=customer.pk, rows=sum(counts.values()))
    return buffer.getvalue()


def get_export_dir() -> Path:
    """Return the directory holding export files of requests (<data dir>/privacy-exports)."""
    from kequn.conf import get_data_dir

    return get_data_dir() / "privacy-exports"


def write_export_file(request: PrivacyRequest, by: AbstractBaseUser | None = None) -> Path:
    """Carry out an export request: write the zip (readable by its owner only) and close it."""
    _check_request(request, PrivacyRequest.Type.EXPORT, None)
    customer = _start(request, by)
    payload = export_customer_data(customer, request, by=by)
    folder = get_export_dir()
    folder.mkdir(parents=True, exist_ok=True)
    # A random part keeps the name unguessable from the request number alone.
    path = folder / f"request-{request.pk}-{secrets.token_hex(8)}.zip"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(payload)
    _finish(
        request,
        by,
        {"bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest()},
        result_file=str(path),
    )
    return path


def get_export_path(request: PrivacyRequest) -> Path:
    """Return the zip of a completed export request; a clear error when there is none."""
    if request.type != PrivacyRequest.Type.EXPORT or not request.result_file:
        raise PrivacyError(
            _("request #%(id)s has no export file: carry out the export first") % {"id": request.pk}
        )
    path = Path(request.result_file)
    # Only files this module wrote are served, whatever the column says.
    if path.resolve().parent != get_export_dir().resolve() or not path.is_file():
        raise PrivacyError(
            _("the export file of request #%(id)s is gone: carry out a new export request")
            % {"id": request.pk}
        )
    return path


def record_download(request: PrivacyRequest, by: AbstractBaseUser | None = None) -> None:
    """Put the download of an export file on the audit trail."""
    _audit("EXPORT", request, by, step="downloaded")


# ---------------------------------------------------------------- correction, restriction


def check_not_restricted(customer: Customer) -> None:
    """Raise a clear error when the customer's processing is restricted."""
    if Customer.objects.filter(pk=customer.pk, processing_restricted=True).exists():
        raise PrivacyError(
            _(
                "customer #%(id)s is restricted from processing on a data-subject request: "
                "lift the restriction first"
            )
            % {"id": customer.pk}
        )


@transaction.atomic
def correct_customer(
    customer: Customer,
    fields: dict[str, Any],
    request: PrivacyRequest | None = None,
    by: AbstractBaseUser | None = None,
) -> Customer:
    """Correct profile fields through the customers services; the new values are not kept twice."""
    from kequn.customers.services import update_customer

    _check_request(request, PrivacyRequest.Type.CORRECTION, customer)
    if request is not None:
        _start(request, by)
    fields = _check_parameters(PrivacyRequest.Type.CORRECTION, {"fields": fields})["fields"]
    customer = update_customer(customer, fields, by=by)
    if request is not None:
        # The request keeps which fields changed, not the values (they live on the customer).
        _finish(request, by, {"fields": sorted(fields)}, parameters={"fields": sorted(fields)})
    _audit("CHANGE", request, by, customer_id=customer.pk, fields=sorted(fields))
    return customer


def _set_restricted(
    customer: Customer, restricted: bool, request: PrivacyRequest | None, by, kind: str
) -> Customer:
    _check_request(request, kind, customer)
    if request is not None:
        _start(request, by)
    Customer.objects.filter(pk__in=get_record_ids(customer)).update(
        processing_restricted=restricted, updated_at=timezone.now()
    )
    customer.processing_restricted = restricted
    if request is not None:
        _finish(request, by, {"processing_restricted": restricted})
    _audit("CHANGE", request, by, customer_id=customer.pk, processing_restricted=restricted)
    return customer


@transaction.atomic
def restrict_processing(
    customer: Customer, request: PrivacyRequest | None = None, by: AbstractBaseUser | None = None
) -> Customer:
    """Keep the record but stop scoring, segmenting, recommending, exporting and marketing it."""
    from kequn.recommend.models import Recommendation
    from kequn.segments.models import SegmentMember

    ids = get_record_ids(customer)
    customer = _set_restricted(customer, True, request, by, PrivacyRequest.Type.RESTRICT)
    # Derived audiences are dropped now, not at the next nightly refresh.
    SegmentMember.objects.filter(customer_id__in=ids).delete()
    Recommendation.objects.filter(customer_id__in=ids).delete()
    return customer


@transaction.atomic
def lift_restriction(
    customer: Customer, request: PrivacyRequest | None = None, by: AbstractBaseUser | None = None
) -> Customer:
    """Allow processing again; scores and segments catch up at their next refresh."""
    return _set_restricted(customer, False, request, by, PrivacyRequest.Type.LIFT_RESTRICTION)


# ---------------------------------------------------------------- consent


@transaction.atomic
def withdraw_consent(
    customer: Customer,
    channels: Iterable[str] | None = None,
    purposes: Iterable[str] | None = None,
    request: PrivacyRequest | None = None,
    by: AbstractBaseUser | None = None,
) -> list[Consent]:
    """Record withdrawn consents (marketing on every channel unless told); effective at once."""
    _check_request(request, PrivacyRequest.Type.WITHDRAW_CONSENT, customer)
    params = _check_parameters(
        PrivacyRequest.Type.WITHDRAW_CONSENT,
        {"channels": list(channels or []), "purposes": list(purposes or [])},
    )
    if request is not None:
        _start(request, by)
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
            )  # fmt: skip
            for pk in get_record_ids(customer)
            for c in params["channels"]
            for p in params["purposes"]
        ]
    )
    if request is not None:
        _finish(request, by, {"withdrawn": [f"{c}/{p}" for c in params["channels"] for p in params["purposes"]]})  # fmt: skip
    _audit("CHANGE", request, by, customer_id=customer.pk, consent_withdrawn=len(rows))
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


# ---------------------------------------------------------------- suppression


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


# ---------------------------------------------------------------- erasure


def _erase_quarantined(values: set[str]) -> int:
    """Delete quarantined import rows that carry one of the person's identity values."""
    from kequn.ingest.models import QuarantinedRow

    if not values:
        return 0
    doomed = []
    for pk, row in QuarantinedRow.objects.values_list("pk", "values").iterator(chunk_size=2000):
        cells = row.values() if isinstance(row, dict) else []
        for cell in cells:
            text = str(cell).strip()
            if text and (text in values or text.lower() in values or _any_identity(text, values)):
                doomed.append(pk)
                break
    for start in range(0, len(doomed), 1000):
        QuarantinedRow.objects.filter(pk__in=doomed[start : start + 1000]).delete()
    return len(doomed)


def _delete_export_files(customer_ids: list[int]) -> int:
    """Delete the zips of earlier export requests of the person (they hold all their data)."""
    deleted = 0
    for privacy_request in PrivacyRequest.objects.filter(subject_ref__in=customer_ids).exclude(
        result_file=""
    ):
        path = Path(privacy_request.result_file)
        if path.resolve().parent == get_export_dir().resolve():
            path.unlink(missing_ok=True)
            deleted += 1
        privacy_request.result_file = ""
        privacy_request.save(update_fields=["result_file"])
    return deleted


def replay_erasures() -> dict[str, int]:
    """Re-apply every erasure of the journal to this database (after restoring a backup).

    Puts each suppression hash back on the list and erases again the records the database
    still holds, matched on id and creation time. Running it twice changes nothing.
    """
    done = {"erasures": 0, "suppressions_restored": 0, "records_erased": 0}
    for erasure in erasure_journal.read_erasures():
        done["erasures"] += 1
        known = set(
            Suppression.objects.filter(key_hash__in=list(erasure.hashes)).values_list(
                "key_hash", flat=True
            )
        )
        missing = [h for h in erasure.hashes if h not in known]
        Suppression.objects.bulk_create(
            [
                Suppression(kind=erasure.hashes[h], key_hash=h, request_ref=erasure.request)
                for h in missing
            ],
            ignore_conflicts=True,
        )
        done["suppressions_restored"] += len(missing)
        for pk, created in erasure.records:
            customer = Customer.objects.filter(pk=pk).first()
            if customer is not None and customer.created_at.isoformat() == created:
                done["records_erased"] += erase_customer(customer, journal=False)["records"]
    return done


def describe_replay(done: dict[str, int]) -> str:
    """Return one line on what replay_erasures did."""
    return (
        f"erasure journal: {done['erasures']} erasures re-applied, "
        f"{done['records_erased']} records erased again, "
        f"{done['suppressions_restored']} suppressions restored"
    )


def _any_identity(text: str, values: set[str]) -> bool:
    for kind in ("email", "phone"):
        key = _normalise(kind, text)
        if key is not None and key[2] in values:
            return True
    return False


@transaction.atomic
def erase_customer(
    customer: Customer,
    request: PrivacyRequest | None = None,
    by: AbstractBaseUser | None = None,
    *,
    journal: bool = True,
) -> dict[str, int]:
    """Delete the person's records (merged ones too), keep their orders anonymised, suppress them.

    The erasure also goes to the erasure journal outside the database (see journal.py), so a
    restore of an older backup can erase the person again; a replay passes journal=False.
    """
    from kequn.commerce.models import Order
    from kequn.customers.models import Identity
    from kequn.events.models import AnonymousLink, Event

    _check_request(request, PrivacyRequest.Type.ERASURE, customer)
    if request is not None:
        _start(request, by)
    ids = get_record_ids(customer)
    identities = list(
        Identity.objects.filter(customer_id__in=ids).values_list("kind", "system", "value")
    )
    now = timezone.now()
    request_ref = request.pk if request else None
    hashes = {hash_identity(k, v, s, normalised=True): k for k, s, v in identities}
    Suppression.objects.bulk_create(
        [
            Suppression(
                kind=k, key_hash=h, request=request, request_ref=request_ref, created_at=now
            )
            for h, k in hashes.items()
        ],
        ignore_conflicts=True,
    )
    if journal:
        records = list(Customer.objects.filter(pk__in=ids).values_list("pk", "created_at"))
        erasure_journal.append_erasure(records, hashes, request_ref)
    counts: dict[str, int] = {"records": len(ids), "suppressed": len(hashes)}
    # Orders are accounting records: kept, but no longer lead to the person.
    counts["orders_anonymised"] = Order.objects.filter(customer_id__in=ids).update(customer=None)
    anonymous = list(
        AnonymousLink.objects.filter(customer_id__in=ids).values_list("anonymous_id", flat=True)
    )
    counts["events"] = Event.objects.filter(customer_id__in=ids).delete()[0]
    for start in range(0, len(anonymous), 1000):
        counts["events"] += Event.objects.filter(
            anonymous_id__in=anonymous[start : start + 1000]
        ).delete()[0]
    counts["quarantined_rows"] = _erase_quarantined({v for _k, _s, v in identities})
    counts["export_files"] = _delete_export_files(ids)
    PrivacyRequest.objects.filter(customer_id__in=ids).exclude(
        pk=request.pk if request else None
    ).update(customer=None)
    # Identities, addresses, consents, tags, scores, memberships, recommendations, merges and
    # review candidates go with the customer rows (on_delete=CASCADE).
    Customer.objects.filter(pk__in=ids).update(merged_into=None)
    from kequn.security.audit.services import suppress_model_events

    with suppress_model_events():  # one erasure entry instead of one per deleted row
        deleted, _per_model = Customer.objects.filter(pk__in=ids).delete()
    counts["rows_deleted"] = deleted
    if request is not None:
        request.customer = None
        _finish(request, by, counts, customer=None)
    _audit("ERASURE", request, by, customer_id=customer.pk, **counts)
    return counts
