"""Export a person's data: every declared table's rows, as one JSON document and a CSV each."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import secrets
import zipfile
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from kequn.conf import get_data_dir
from kequn.customers.models import Customer
from kequn.privacy.models import PrivacyRequest
from kequn.privacy.services.base import (
    PrivacyError,
    check_request,
    finish_request,
    get_record_ids,
    record_privacy_event,
    start_request,
)
from kequn.security import personal_data
from kequn.security.actors import Actor


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _rows(queryset: QuerySet, fields: list[str]) -> list[dict]:
    return [{f: _plain(v) for f, v in row.items()} for row in queryset.values(*fields)]


def collect_customer_data(customer: Customer) -> dict[str, list[dict]]:
    """Return every declared table's rows about the person (and records merged into them)."""
    ids = get_record_ids(customer)
    return {
        entry.export_as: _rows(entry.rows_of(ids), entry.export_fields())
        for entry in personal_data.get_exported()
        if entry.export_as
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
    customer: Customer, *, request: PrivacyRequest | None = None, by: Actor | None
) -> bytes:
    """Return a zip of the person's data: customer.json with everything, one CSV per table."""
    check_request(request, PrivacyRequest.Type.EXPORT, customer)
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
    record_privacy_event("EXPORT", request, by, customer_id=customer.pk, rows=sum(counts.values()))
    return buffer.getvalue()


def get_export_dir() -> Path:
    """Return the directory holding export files of requests (<data dir>/privacy-exports)."""
    return get_data_dir() / "privacy-exports"


def is_export_file(path: Path) -> bool:
    """Return whether a path lies in the export directory (only files written here count)."""
    return path.resolve().parent == get_export_dir().resolve()


def write_export_file(request: PrivacyRequest, *, by: Actor | None) -> Path:
    """Carry out an export request: write the zip (readable by its owner only) and close it."""
    check_request(request, PrivacyRequest.Type.EXPORT, None)
    customer = start_request(request, by)
    payload = export_customer_data(customer, request=request, by=by)
    folder = get_export_dir()
    folder.mkdir(parents=True, exist_ok=True)
    # A random part keeps the name unguessable from the request number alone.
    path = folder / f"request-{request.pk}-{secrets.token_hex(8)}.zip"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(payload)
    finish_request(
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
    if not is_export_file(path) or not path.is_file():
        raise PrivacyError(
            _("the export file of request #%(id)s is gone: carry out a new export request")
            % {"id": request.pk}
        )
    return path


def record_download(request: PrivacyRequest, *, by: Actor | None) -> None:
    """Put the download of an export file on the audit trail."""
    record_privacy_event("EXPORT", request, by, step="downloaded")


def delete_export_files(customer_ids: list[int]) -> int:
    """Delete the zips of earlier export requests of the person (they hold all their data)."""
    deleted = 0
    for privacy_request in PrivacyRequest.objects.filter(subject_ref__in=customer_ids).exclude(
        result_file=""
    ):
        path = Path(privacy_request.result_file)
        if is_export_file(path):
            path.unlink(missing_ok=True)
            deleted += 1
        privacy_request.result_file = ""
        privacy_request.save(update_fields=["result_file"])
    return deleted
