"""Import deals and activities from the export formats of Salesforce, HubSpot, Zoho and Fxiaoke.

The file is read by the ingest readers (CSV, Excel, JSON lines, Parquet); columns are found
by the names each CRM exports (any preset's name is accepted; --preset only says which CRM's
external ids these are). Every row is imported, updated (the same external id again) or
refused with a one-line reason naming the row, field and fix; refused rows are written with
their reason to <file>.refused.csv, so nothing is lost and the fixed file can be imported again.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q

from kequn.customers.models import Customer
from kequn.ingest.cleaning import CleaningError, clean_amount, clean_date, clean_datetime
from kequn.ingest.readers import ImportFileError, iter_rows, open_file
from kequn.sales import services
from kequn.sales.models import Activity, Deal, Pipeline, Stage
from kequn.security.actors import Actor
from kequn.security.audit import services as audit

# Field -> column names of the CRMs' exports (compared case- and space-insensitively).
DEAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "id": (
        "Opportunity ID",
        "Id",
        "Record ID",
        "Deal ID",
        "Record Id",
        "商机编号",
        "ID",
        "external_ref",
    ),
    "name": ("Opportunity Name", "Name", "Deal Name", "商机名称", "name"),
    "account": ("Account Name", "Associated Company", "Company name", "客户名称", "account"),
    "amount": ("Amount", "商机金额", "金额", "amount"),
    "currency": ("Opportunity Currency", "Currency", "币种", "currency"),
    "close_date": (
        "Close Date",
        "CloseDate",
        "Closing Date",
        "预计成交日期",
        "结单日期",
        "close_date",
    ),
    "stage": ("Stage", "StageName", "Deal Stage", "商机阶段", "阶段", "stage"),
    "owner": ("Opportunity Owner", "Owner Email", "Deal owner", "Deal Owner", "负责人", "owner"),
    "probability": (
        "Probability (%)",
        "Probability",
        "Deal probability",
        "赢率",
        "赢率(%)",
        "probability",
    ),
    "source": (
        "Lead Source",
        "LeadSource",
        "Original Source Type",
        "Source",
        "商机来源",
        "来源",
        "source",
    ),
    "lost_reason": (
        "Loss Reason",
        "Closed lost reason",
        "Reason For Loss",
        "输单原因",
        "lost_reason",
    ),
}
ACTIVITY_COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("Activity ID", "Id", "Engagement ID", "Record Id", "记录ID", "ID", "external_ref"),
    "kind": ("Type", "Task Subtype", "Activity type", "Call Type", "跟进方式", "类型", "kind"),
    "subject": ("Subject", "Call title", "Meeting name", "Title", "主题", "subject"),
    "occurred_at": (
        "Activity Date",
        "Date",
        "ActivityDate",
        "Activity date",
        "Create date",
        "Call Start Time",
        "From",
        "Created Time",
        "跟进时间",
        "创建时间",
        "occurred_at",
    ),
    "account": (
        "Account Name",
        "Company / Account",
        "Associated Company",
        "Related To",
        "客户名称",
        "account",
    ),
    "owner": (
        "Assigned",
        "Assigned To",
        "Activity assigned to",
        "Owner",
        "负责人",
        "创建人",
        "owner",
    ),
    "notes": ("Description", "Comments", "Body", "Notes", "跟进内容", "内容", "notes"),
    "location": ("Location", "Meeting location", "Venue", "地点", "定位地址", "location"),
}
KIND_WORDS = {
    "call": ("call", "log a call", "phone", "电话", "电话拜访", "calls"),
    "meeting": ("meeting", "event", "会议", "meetings"),
    "visit": ("visit", "拜访", "外勤", "上门拜访", "field visit"),
    "email": ("email", "e-mail", "邮件", "emails"),
    "note": ("note", "notes", "task", "备注", "文字", "其他"),
}
WON_WORDS = {"closed won", "closedwon", "won", "赢单", "赢单关闭", "成交"}
LOST_WORDS = {"closed lost", "closedlost", "lost", "输单", "输单关闭", "丢单"}


@dataclass
class ImportSummary:
    imported: int = 0
    updated: int = 0
    errors: list[str] = field(default_factory=list)
    refused_file: Path | None = None


def _key(text: str) -> str:
    return "".join(str(text).lower().split())


def _find_columns(headers: list[str], columns: dict[str, tuple[str, ...]]) -> dict[str, str]:
    by_key = {_key(h): h for h in headers}
    found = {}
    for name, candidates in columns.items():
        for candidate in candidates:
            if _key(candidate) in by_key:
                found[name] = by_key[_key(candidate)]
                break
    return found


class RowError(ValueError):
    """A row that cannot be imported; the message names the field and the fix."""


def _get_owner(value: str) -> Any:
    if not value:
        return None
    users = get_user_model().objects.filter(is_active=True)
    owner = users.filter(Q(username=value) | Q(email__iexact=value)).first()
    if owner is None:
        raise RowError(f"owner: no active user named {value!r}; create the user or fix the name")
    return owner


def _get_account(name: str, owner: Any, *, by: Actor) -> Customer:
    if not name:
        raise RowError("account: the account name is empty; fill in the company")
    key = services.normalize_company_name(name)
    for candidate in Customer.objects.filter(kind=Customer.Kind.COMPANY, name__icontains=name[:2])[
        :2000
    ]:
        if services.normalize_company_name(candidate.name) == key:
            return candidate
    return services.create_account(
        services.AccountInput(name=name, source_channel="import"),
        by=by,
        owner=owner,
        confirm=True,
        source="import",
    )


def _get_stage(pipeline: Pipeline, value: str) -> Stage:
    stages = list(pipeline.stages.all())
    for stage in stages:
        if _key(stage.name) == _key(value):
            return stage
    if _key(value) in {_key(w) for w in WON_WORDS}:
        return next(s for s in stages if s.is_won)
    if _key(value) in {_key(w) for w in LOST_WORDS}:
        return next(s for s in stages if s.is_lost)
    names = ", ".join(s.name for s in stages)
    raise RowError(
        f"stage: {value!r} is not a stage of {pipeline.name!r} ({names}); rename it or add the stage"
    )


def _import_deal(
    row: dict[str, str], cols: dict[str, str], pipeline: Pipeline, prefix: str, *, by: Actor
) -> bool:
    def get(name: str) -> str:
        return (row.get(cols[name], "") if name in cols else "").strip()

    try:
        close = clean_date(get("close_date"))
    except CleaningError as exc:
        raise RowError(f"close_date: {exc}") from None
    amount = None
    currency = get("currency").upper()[:3]
    if get("amount"):
        try:
            amount, found_currency = clean_amount(get("amount"))
        except CleaningError as exc:
            raise RowError(f"amount: {exc}") from None
        currency = currency or found_currency
    probability = None
    if get("probability"):
        try:
            probability = round(float(get("probability").rstrip("%")))
        except ValueError:
            raise RowError(
                f"probability: {get('probability')!r} is not a number from 0 to 100"
            ) from None
    stage = _get_stage(pipeline, get("stage"))
    owner = _get_owner(get("owner"))
    ref = f"{prefix}:{get('id')}" if get("id") else ""
    existing = Deal.objects.filter(external_ref=ref).first() if ref else None
    if existing is not None:
        changes: dict[str, Any] = {
            "name": get("name") or existing.name,
            "amount": amount,
            "close_date": close,
        }
        if stage.pk != existing.stage_id:
            changes["stage_id"] = stage.pk
            if stage.is_lost:
                changes["lost_reason"] = get("lost_reason") or "imported"
        services.update_deal(existing, changes, by=by, on=close if stage.is_closed else None)
        return False
    account = _get_account(get("account"), owner, by=by)
    services.create_deal(
        services.DealInput(
            name=get("name") or account.name,
            account_id=account.pk,
            stage_id=stage.pk,
            close_date=close,
            amount=amount,
            currency=currency or "CNY",
            probability=probability if probability is None or 0 <= probability <= 100 else None,
            owner_id=owner.pk if owner else None,
            source=get("source")[:50],
            lost_reason=get("lost_reason")[:200] or ("imported" if stage.is_lost else ""),
            external_ref=ref[:100],
        ),
        by=by,
    )
    return True


def _kind_of(value: str) -> str:
    key = _key(value)
    for kind, words in KIND_WORDS.items():
        if key in {_key(w) for w in words}:
            return kind
    if not key:
        return Activity.Kind.NOTE
    raise RowError(f"kind: {value!r} is not a call, meeting, visit, email or note")


def _import_activity(row: dict[str, str], cols: dict[str, str], prefix: str, *, by: Actor) -> bool:
    def get(name: str) -> str:
        return (row.get(cols[name], "") if name in cols else "").strip()

    ref = f"{prefix}:{get('id')}" if get("id") else ""
    if ref and Activity.objects.filter(external_ref=ref).exists():
        return False
    try:
        when: datetime = clean_datetime(get("occurred_at"))
    except CleaningError as exc:
        raise RowError(f"occurred_at: {exc}") from None
    kind = _kind_of(get("kind"))
    owner = _get_owner(get("owner"))
    account = _get_account(get("account"), owner, by=by)
    services.log_activity(
        services.ActivityInput(
            kind=kind,
            subject=get("subject") or kind,
            occurred_at=when,
            notes=get("notes"),
            location=get("location") or ("-" if kind == Activity.Kind.VISIT else ""),
            account_id=account.pk,
            external_ref=ref[:100],
        ),
        by=by,
        owner=owner,
    )
    return True


def import_crm_file(
    path: Path, kind: str, *, preset: str | None, pipeline_name: str | None = None, by: Actor
) -> ImportSummary:
    """Import deals or activities from a CRM export; see the module's docstring."""
    try:
        info = open_file(path)
    except ImportFileError as exc:
        raise ValidationError(str(exc)) from None
    columns = DEAL_COLUMNS if kind == "deals" else ACTIVITY_COLUMNS
    cols = _find_columns(info.headers, columns)
    needed = ("close_date", "stage") if kind == "deals" else ("occurred_at",)
    missing = [name for name in needed if name not in cols]
    if missing:
        raise ValidationError(
            f"{path.name}: no column for {', '.join(missing)}; name it as the CRM exports it "
            f"(e.g. {columns[missing[0]][0]!r})"
        )
    pipeline = None
    if kind == "deals":
        pipelines = Pipeline.objects.filter(is_active=True)
        pipeline = (
            pipelines.filter(name=pipeline_name).first() if pipeline_name else pipelines.first()
        )
        if pipeline is None:
            raise ValidationError(
                f"no pipeline {pipeline_name!r}"
                if pipeline_name
                else "no pipeline yet: create one first"
            )
    prefix = preset or "import"
    summary = ImportSummary()
    refused: list[tuple[int, dict[str, str], str]] = []
    for number, row in iter_rows(info):
        try:
            with transaction.atomic():
                created = (
                    _import_deal(row, cols, pipeline, prefix, by=by)
                    if pipeline is not None
                    else _import_activity(row, cols, prefix, by=by)
                )
        except (RowError, ValidationError) as exc:
            reason = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
            summary.errors.append(f"{path.name} row {number}: {reason}")
            refused.append((number, row, reason))
            continue
        if created:
            summary.imported += 1
        else:
            summary.updated += 1
    if refused:
        target = path.with_name(path.name + ".refused.csv")
        with target.open("w", newline="", encoding="utf-8-sig") as fh:
            writer = csv.writer(fh)
            writer.writerow(["row", "reason", *info.headers])
            for number, row, reason in refused:
                writer.writerow([number, reason, *(row.get(h, "") for h in info.headers)])
        summary.refused_file = target
    audit.record_event(
        audit.IMPORT,
        actor=by,
        target_type=f"sales.{kind}",
        detail={
            "file": path.name,
            "imported": summary.imported,
            "updated": summary.updated,
            "refused": len(refused),
            "preset": prefix,
        },
    )
    return summary


__all__ = ["ImportSummary", "import_crm_file"]
