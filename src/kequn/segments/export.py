"""Export a segment's members to CSV or Excel, streaming, with personal fields masked by role."""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.http import FileResponse, StreamingHttpResponse
from django.utils import timezone

from kequn.customers.models import Address, Customer, Identity
from kequn.privacy.services import filter_marketable
from kequn.security.audit.services import EXPORT, record_event
from kequn.security.formulas import escape_formula, escape_row, make_sheet_title
from kequn.security.masking import mask_row
from kequn.security.permissions import EXPORT_WITHOUT_CONSENT, scope_customers
from kequn.segments.models import Segment

BATCH = 2000
COLUMNS = [
    "id",
    "name",
    "kind",
    "gender",
    "country",
    "province",
    "city",
    "age_band",
    "external_ref",
    "phone",
    "email",
    "address",
    "birthday",
    "rfm_segment",
    "lifecycle_stage",
    "clv",
    "churn_percentile",
]
PERSONAL_FIELDS = ("phone", "email", "address", "birthday")


def mask_personal_fields(user: Any, row: dict) -> dict:
    """Return the row with phone, email, address and birthday masked for this user's role."""
    return mask_row(user, row)


def get_export_purpose(user: Any, purpose: str) -> str:
    """Return the purpose an export runs under: marketing, unless the user may export for others."""
    if user is not None and not user.has_perm(EXPORT_WITHOUT_CONSENT):
        return "marketing"
    return purpose


def select_export_members(
    segment: Segment, purpose: str = "", channel: str = "", user: Any = None
) -> QuerySet:
    """Return the members to export; for marketing, only those whose consent is in force now.

    Consent is checked at export time, not at the last refresh, so a withdrawal counts at once.
    """
    purpose = get_export_purpose(user, purpose)
    members = Customer.objects.filter(segment_memberships__segment=segment)
    if user is not None:  # a sales rep exports only the members they own
        members = scope_customers(user, members)
    if purpose == "marketing":
        members = filter_marketable(members, channel or None)
    return members


def iter_member_rows(
    segment: Segment, purpose: str = "", channel: str = "", user: Any = None
) -> Iterator[dict]:
    """Yield one plain row per member, reading customers in id batches (keyset paging)."""
    return iter_customer_rows(select_export_members(segment, purpose, channel, user))


def iter_customer_rows(customers: QuerySet) -> Iterator[dict]:
    """Yield one plain (unmasked) row per customer of a queryset, in id batches (keyset paging)."""
    # Customers restricted on a data-subject request are never exported.
    members = customers.filter(processing_restricted=False).order_by("id")
    members = members.select_related("score").prefetch_related(
        Prefetch(
            "identities",
            queryset=Identity.objects.filter(kind__in=["phone", "email"]).order_by("id"),
        ),
        Prefetch("addresses", queryset=Address.objects.order_by("-is_default", "id")),
    )
    last_id = 0
    while True:
        batch = list(members.filter(id__gt=last_id)[:BATCH])
        if not batch:
            return
        for c in batch:
            yield _row(c)
        last_id = batch[-1].id


def _row(c: Customer) -> dict:
    identities: dict[str, str] = {}
    for identity in c.identities.all():
        identities.setdefault(identity.kind, identity.value)
    addresses = list(c.addresses.all())
    first = addresses[0] if addresses else None
    score = getattr(c, "score", None) if hasattr(c, "score") else None
    return {
        "id": c.id,
        "name": c.name,
        "kind": c.kind,
        "gender": c.gender,
        "country": c.country,
        "province": c.province,
        "city": c.city,
        "age_band": c.age_band,
        "external_ref": c.external_ref,
        "phone": identities.get("phone", ""),
        "email": identities.get("email", ""),
        "address": addresses[0].get_full_text() if addresses else "",
        # Lets the masking keep the address readable down to the district.
        "address_parts": (first.province, first.city, first.district, first.line)
        if first
        else None,
        "birthday": c.birthday.isoformat() if c.birthday else "",
        "rfm_segment": score.rfm_segment if score else "",
        "lifecycle_stage": score.lifecycle_stage if score else "",
        "clv": score.clv if score and score.clv is not None else "",
        "churn_percentile": score.churn_percentile
        if score and score.churn_percentile is not None
        else "",
    }


def stream_csv(user: Any, segment: Segment, purpose: str = "", channel: str = "") -> Iterator[str]:
    """Yield the CSV text of a segment piece by piece (UTF-8 BOM first, for Excel)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    yield "\ufeff"
    writer.writeheader()
    for i, row in enumerate(iter_member_rows(segment, purpose, channel, user), start=1):
        masked = mask_personal_fields(user, row)
        writer.writerow({key: escape_formula(value) for key, value in masked.items()})
        if i % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def write_xlsx(
    user: Any, segment: Segment, purpose: str = "", channel: str = ""
) -> tempfile.SpooledTemporaryFile:
    """Write the segment to an Excel file (write-only mode, constant memory); return it rewound."""
    from openpyxl import Workbook  # noqa: PLC0415 -- openpyxl is heavy, loaded on use

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(make_sheet_title(segment.name, default="segment"))
    sheet.append(COLUMNS)
    for row in iter_member_rows(segment, purpose, channel, user):
        masked = mask_personal_fields(user, row)
        sheet.append(escape_row(masked[c] for c in COLUMNS))
    # The response closes the file after sending it.
    out = tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024)  # noqa: SIM115
    workbook.save(out)
    out.seek(0)
    return out


def make_export_response(
    user: Any, segment: Segment, fmt: str, purpose: str = "", channel: str = ""
):
    """Return a streaming HTTP response with the segment as CSV or XLSX.

    purpose="marketing" keeps only members with marketing consent in force (on ``channel``,
    or on any channel when it is empty).
    """
    purpose = get_export_purpose(user, purpose)
    stem = f"segment-{segment.pk}-{timezone.localdate():%Y%m%d}"
    # Recorded when the download starts, so an aborted download is on the trail too.
    sample = {"phone": "13800138000"}
    record_event(
        EXPORT,
        actor=user,
        target=segment,
        detail={
            "format": fmt,
            "rows": select_export_members(segment, purpose, channel, user)
            .filter(processing_restricted=False)
            .count(),
            "purpose": purpose,
            "unmasked": mask_personal_fields(user, dict(sample)) == sample,
        },
    )
    if fmt == "xlsx":
        return FileResponse(
            write_xlsx(user, segment, purpose, channel),
            as_attachment=True,
            filename=f"{stem}.xlsx",
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    response = StreamingHttpResponse(
        stream_csv(user, segment, purpose, channel), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{stem}.csv"'
    return response
