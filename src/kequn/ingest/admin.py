"""Back office: import page, import runs, quarantine, merges (undo) and the review queue."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.decorators import display

from kequn.customers.models import Customer, Identity
from kequn.ingest.merging import accept_match, reject_match, undo_merge
from kequn.ingest.models import ImportRun, MatchCandidate, Merge, QuarantinedRow
from kequn.ingest.presets import (
    FIELDS,
    KINDS,
    OUTCOME_LABELS,
    PRESETS,
    Mapping,
    get_field_label,
    get_reason_label,
)
from kequn.ingest.quarantine import (
    describe_quarantine_message,
    discard_quarantined_rows,
    retry_quarantined_rows,
    write_quarantine_csv,
)
from kequn.ingest.readers import ImportFileError, iter_rows, open_file
from kequn.ingest.runs import import_file, inspect_file
from kequn.ingest.stale import fail_stale_runs
from kequn.security.masking import (
    BIRTHDAY,
    FIELD_GROUPS,
    get_unmasked_groups,
    is_target_masked,
    mask_birthday,
    mask_identity_for,
    mask_mapped_values,
    mask_raw_value,
)
from kequn.security.permissions import has_permission, require_permission


class UploadForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("What the file holds"),
        choices=[(k, label) for k, label in ImportRun.Kind.choices if k in KINDS],
    )
    file = forms.FileField(label=_("File (CSV, Excel .xlsx, JSON lines, Parquet)"))
    source = forms.CharField(label=_("Source system"), required=False, max_length=50)
    preset = forms.ChoiceField(
        label=_("Column preset"),
        required=False,
        choices=[("", _("automatic"))] + [(k, p.label) for k, p in PRESETS.items()],
    )


def _upload_dir() -> Path:
    folder = Path(settings.DATA_DIR) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@admin.register(ImportRun)
class ImportRunAdmin(ModelAdmin):
    list_display = ("started_at", "file_name", "kind", "source", "status", "rows_read",
                    "inserted", "updated", "unchanged", "merged", "quarantined")  # fmt: skip
    list_filter = ("kind", "status")
    search_fields = ("file_name", "checksum")
    readonly_fields = [f.name for f in ImportRun._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Imports start from the upload page, not the add form."""
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        """Runs are a record; nobody edits them."""
        return False

    def changelist_view(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        """List the runs, after marking imports that died (no heartbeat) as failed."""
        fail_stale_runs()
        return super().changelist_view(request, extra_context)

    def get_urls(self):
        return [
            path("upload/", self.admin_site.admin_view(self.upload_view), name="ingest_upload"),
            *super().get_urls(),
        ]

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        """Upload a file, preview the column mapping, dry-run it, then import it."""
        # Importing writes customers: it needs the add permission, not only the list's view.
        require_permission(request.user, "ingest.add_importrun")
        context = {**self.admin_site.each_context(request), "title": gettext("Import a file")}
        form = UploadForm(request.POST or None, request.FILES or None)
        step = request.POST.get("step", "")
        if step in ("dry_run", "import"):
            stored = _upload_dir() / Path(request.POST.get("stored", "")).name
            kind = request.POST.get("kind", "")
            columns = {
                request.POST[key]: request.POST.get("field_" + key[len("header_") :], "")
                for key in request.POST
                if key.startswith("header_")
            }
            mapping = Mapping(kind=kind, columns={h: f for h, f in columns.items() if f},
                              system=(request.POST.get("system") or "import")[:50])  # fmt: skip
            try:
                summary = import_file(
                    stored, kind, mapping=mapping, dry_run=step == "dry_run", by=request.user,
                    display_name=request.POST.get("display_name", stored.name),
                )  # fmt: skip
            except (ImportFileError, FileNotFoundError) as exc:
                messages.error(request, str(exc))
                return redirect("admin:ingest_upload")
            if step == "import":
                messages.success(request, describe_counts(summary))
                return redirect("admin:ingest_importrun_change", summary.run_id)
            context.update(
                self._preview(
                    stored, kind, mapping, request.POST, get_unmasked_groups(request.user)
                )
            )
            context["summary"] = summary
            context["counts"] = get_counts(summary)
            context["reasons"] = [(get_reason_label(c), n) for c, n in summary.reasons.items()]
            context["rows"] = describe_rows(
                summary.rows[:PAGE_ROWS], get_unmasked_groups(request.user)
            )
            context["more_rows"] = max(0, summary.rows_read - PAGE_ROWS)
            return TemplateResponse(request, "admin/ingest/upload.html", context)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            digest = hashlib.sha256()
            name = Path(upload.name).name
            target = _upload_dir() / f"tmp-{name}"
            with target.open("wb") as fh:
                for chunk in upload.chunks():
                    digest.update(chunk)
                    fh.write(chunk)
            stored = _upload_dir() / f"{digest.hexdigest()[:16]}-{name}"
            target.replace(stored)
            kind = form.cleaned_data["kind"]
            try:
                _info, mapping = inspect_file(stored, kind, source=form.cleaned_data["source"],
                                              mapping=form.cleaned_data["preset"] or None)  # fmt: skip
            except ImportFileError as exc:
                form.add_error("file", str(exc).replace(stored.name, name))
            else:
                context.update(
                    self._preview(
                        stored, kind, mapping, {"display_name": name},
                        get_unmasked_groups(request.user),
                    )
                )  # fmt: skip
                return TemplateResponse(request, "admin/ingest/upload.html", context)
        context["form"] = form
        return TemplateResponse(request, "admin/ingest/upload.html", context)

    def _preview(self, stored: Path, kind: str, mapping: Mapping, post, groups) -> dict:
        info = open_file(stored)
        sample = []
        for _n, row in iter_rows(info):
            # First values of columns the viewer may not see (phone, birthday...) are masked.
            sample.append([
                mask_raw_value(target, row.get(h, "")[:60])
                if is_target_masked(groups, target := mapping.columns.get(h, ""))
                else row.get(h, "")[:60]
                for h in info.headers
            ])  # fmt: skip
            if len(sample) >= 5:
                break
        return {
            "stored": stored.name,
            "kind": kind,
            "system": mapping.system,
            "display_name": post.get("display_name", stored.name),
            "headers": [(i, h, mapping.columns.get(h, "")) for i, h in enumerate(info.headers)],
            "fields": [(f, get_field_label(f)) for f in FIELDS[kind]],
            "sample": sample,
            "info": info,
        }

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None
    ) -> HttpResponse:
        """Show what a run did: counts with links to the rows, reasons and the column mapping."""
        run = self.get_object(request, object_id)
        # Anything but a plain read goes to the admin's own view, which refuses a change (403).
        if run is None or request.method != "GET" or not self.has_view_permission(request, run):
            return super().change_view(request, object_id, form_url, extra_context)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Import %(file)s") % {"file": run.file_name},
            "opts": self.model._meta,
            "original": run,
            "run": run,
            "counts": get_counts(run, links=True),
            "reasons": [
                (get_reason_label(code), n)
                for code, n in sorted(run.reasons.items(), key=lambda kv: -kv[1])
            ],
            "mapping": describe_mapping(run.mapping),
            "is_dry_run": run.status == ImportRun.Status.DRY_RUN,
        }
        return TemplateResponse(request, "admin/ingest/importrun_result.html", context)


PAGE_ROWS = 200


def describe_counts(summary) -> str:
    """Return an import's counts as one readable sentence in the user's language."""
    parts = [f"{label} {count}" for _name, label, count, _url in get_counts(summary) if count]
    return gettext("Imported %(file)s: %(counts)s") % {
        "file": summary.file if hasattr(summary, "file") else summary.file_name,
        "counts": ", ".join(parts) or gettext("no rows"),
    }


def get_counts(result, links: bool = False) -> list[tuple[str, str, int, str]]:
    """Return (outcome, label, count, link to the rows) for a summary or a stored run."""
    records = getattr(result, "records", {}) if links else {}
    rows = [("rows_read", gettext("rows read"), result.rows_read, "")]
    for name in ("inserted", "updated", "unchanged", "merged", "review", "quarantined"):
        url = ""
        if name == "quarantined" and links and result.quarantined:
            url = _link_to_run_rows("admin:ingest_quarantinedrow_changelist", result)
        elif name == "review" and records.get(name):
            url = _link_to_run_rows("admin:ingest_matchcandidate_changelist", result, name)
        elif records.get(name):
            url = _link_to_run_rows("admin:customers_customer_changelist", result, name)
        rows.append((name, str(OUTCOME_LABELS[name]), getattr(result, name), url))
    return rows


def describe_mapping(mapping: dict) -> list[tuple[str, str]]:
    """Return (column in the file, field label) pairs of a stored column mapping."""
    columns = (mapping or {}).get("columns", {})
    return [(header, get_field_label(name)) for header, name in columns.items() if name]


def describe_rows(rows: list[dict], groups: frozenset[str]) -> list[dict]:
    """Return preview rows for display: labels, masked values the viewer may not see."""
    described = []
    for row in rows:
        changes = []
        for name, old, new in row.get("changes", []):
            old, new = "" if old is None else str(old), "" if new is None else str(new)
            if is_target_masked(groups, name):
                old, new = mask_raw_value(name, old), mask_raw_value(name, new)
            changes.append((get_field_label(name), old, new))
        note = row.get("note", "")
        if row["outcome"] == "quarantined" and is_target_masked(groups, row.get("field", "")):
            note = gettext("%(field)s rejected (the value is hidden from your role)") % {
                "field": get_field_label(row["field"])
            }
        described.append({
            **row, "label": str(OUTCOME_LABELS.get(row["outcome"], row["outcome"])),
            "changes": changes, "note": note,
            "field_label": get_field_label(row["field"]) if row.get("field") else "",
        })  # fmt: skip
    return described


@display(description=_("column mapping"))
def column_mapping(obj) -> str:
    """Show a stored mapping as 'column → field' in the user's language."""
    return format_html_join(", ", "{} → {}", describe_mapping(obj.mapping)) or "-"


class ImportRunFilter(admin.SimpleListFilter):
    """Rows of one import run (`?import_run=ID` or `ID-outcome`), as the result page links them.

    Offered only while in use: the back office lists refuse lookups no filter declares.
    """

    title = _("import run")
    parameter_name = "import_run"

    def lookups(self, request: HttpRequest, model_admin) -> list[tuple[str, str]]:
        """Offer the run in the address, so the list shows which run it is filtered by."""
        value = request.GET.get(self.parameter_name, "")
        run_id, _sep, outcome = value.partition("-")
        if not run_id.isdigit():
            return []
        label = f"#{run_id}"
        if outcome in OUTCOME_LABELS:
            label += f" {OUTCOME_LABELS[outcome]}"
        return [(value, label)]

    def get_run(self) -> tuple[ImportRun | None, str]:
        """Return the run and outcome named by the parameter."""
        run_id, _sep, outcome = (self.value() or "").partition("-")
        run = ImportRun.objects.filter(pk=int(run_id)).first() if run_id.isdigit() else None
        return run, outcome

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        """Keep the rows the run touched with that outcome."""
        if self.value() is None:
            return queryset
        run, outcome = self.get_run()
        if run is None:
            return queryset.none()
        if queryset.model is QuarantinedRow:
            return queryset.filter(run=run)
        ids = (run.records or {}).get(outcome or "inserted", [])
        if queryset.model is MatchCandidate:
            return queryset.filter(right_id__in=ids)
        return queryset.filter(pk__in=ids)


def _link_to_run_rows(changelist: str, run: ImportRun, outcome: str = "") -> str:
    value = f"{run.pk}-{outcome}" if outcome else str(run.pk)
    return reverse(changelist) + f"?import_run={value}"


def _is_fully_unmasked(request: HttpRequest) -> bool:
    """Return whether the viewer sees every personal field group unmasked."""
    return set(FIELD_GROUPS) <= get_unmasked_groups(request.user)


def _per_request(request: HttpRequest, key: str, build):
    """Return a display built once per request (displays close over the viewer's groups)."""
    cache = request.__dict__.setdefault("_kequn_displays", {})
    if key not in cache:
        cache[key] = build(get_unmasked_groups(request.user))
    return cache[key]


def _quarantine_displays(groups: frozenset[str]) -> tuple:
    @display(description=_("original values"))
    def shown_values(obj: QuarantinedRow) -> str:
        columns = (obj.mapping or {}).get("columns", {})
        return json.dumps(mask_mapped_values(groups, obj.values, columns), ensure_ascii=False)

    @display(description=_("message"))
    def shown_message(obj: QuarantinedRow) -> str:
        return describe_quarantine_message(obj, groups)

    return shown_values, shown_message


@admin.register(QuarantinedRow)
class QuarantinedRowAdmin(ModelAdmin):
    """Rejected rows; personal values are masked (and read-only) for roles that may not see them."""

    list_display = ("file_name", "row_number", "field", "reason", "message", "status", "created_at")
    list_filter = ("status", "reason", "kind", ImportRunFilter)
    search_fields = ("file_name",)  # the message is encrypted
    readonly_fields = ("run", "kind", "file_name", "checksum", "row_number", "field", "reason",
                       "message", column_mapping, "status", "created_at", "resolved_at")  # fmt: skip
    fields = ("values", *readonly_fields)
    actions = ("export_csv", "retry_rows", "discard_rows")

    def _masked_fields(self, request: HttpRequest) -> tuple:
        shown_values, shown_message = _per_request(request, "quarantine", _quarantine_displays)
        rest = (shown_message if f == "message" else f for f in self.readonly_fields)
        return (shown_values, *rest)

    def get_list_display(self, request: HttpRequest):
        if _is_fully_unmasked(request):
            return self.list_display
        shown_message = _per_request(request, "quarantine", _quarantine_displays)[1]
        return tuple(shown_message if f == "message" else f for f in self.list_display)

    def get_fields(self, request: HttpRequest, obj=None):
        return self.fields if _is_fully_unmasked(request) else self._masked_fields(request)

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        # Values one may not see cannot be fixed either: the whole row is read-only then.
        if _is_fully_unmasked(request):
            return self.readonly_fields
        return self._masked_fields(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Rows arrive from imports only."""
        return False

    @admin.action(description=_("Export selected rows as CSV"), permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        """Download the chosen rows with their reasons and original values."""
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="quarantine.csv"'
        response.write("\ufeff")
        rows = queryset.order_by("file_name", "row_number")
        write_quarantine_csv(rows, response, get_unmasked_groups(request.user))
        return response

    @admin.action(
        description=_("Re-import selected rows (after fixing their values)"),
        permissions=["change"],
    )
    def retry_rows(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Run the chosen rows through the importer again."""
        counts = retry_quarantined_rows(queryset, by=request.user)
        self.message_user(
            request,
            gettext("%(ok)d rows imported, %(bad)d still rejected")
            % {"ok": counts["resolved"], "bad": counts["still_rejected"]},
            messages.SUCCESS if not counts["still_rejected"] else messages.WARNING,
        )

    @admin.action(description=_("Discard selected rows"), permissions=["change"])
    def discard_rows(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Mark rows as deliberately not imported."""
        count = discard_quarantined_rows(queryset, by=request.user)
        self.message_user(request, gettext("%(n)d rows discarded") % {"n": count})


def _customer_link(customer_id: int) -> str:
    url = reverse("admin:customers_customer_change", args=[customer_id])
    return format_html('<a class="kequn-link" href="{}">#{}</a>', url, customer_id)


@admin.register(Merge)
class MergeAdmin(ModelAdmin):
    list_display = ("created_at", "kept", "absorbed_record", "rule", "score", "actor",
                    "created_by", "undone_at")  # fmt: skip
    list_filter = ("rule", ("undone_at", admin.EmptyFieldListFilter))
    search_fields = ("=target__id", "=absorbed__id", "rule")
    readonly_fields = [f.name for f in Merge._meta.fields]
    actions = ("undo_merges",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Merges come from imports, the matcher and the review queue."""
        return False

    def get_fields(self, request: HttpRequest, obj=None):
        # The snapshot holds the merged records' personal data as it was, unmasked.
        fields = self.readonly_fields
        return fields if _is_fully_unmasked(request) else [f for f in fields if f != "snapshot"]

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        """A merge is a record; it is undone, never edited."""
        return False

    @display(description=_("kept record"))
    def kept(self, obj: Merge) -> str:
        return _customer_link(obj.target_id)

    @display(description=_("absorbed record"))
    def absorbed_record(self, obj: Merge) -> str:
        return _customer_link(obj.absorbed_id)

    def has_undo_permission(self, request: HttpRequest) -> bool:
        """Return whether the user may undo merges (the change permission; merges are read-only)."""
        return has_permission(request.user, "ingest.change_merge")

    @admin.action(description=_("Undo selected merges (newest first)"), permissions=["undo"])
    def undo_merges(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Undo merges newest first, so chains come apart in the right order."""
        done = 0
        for merge in queryset.order_by("-pk"):
            try:
                undo_merge(merge, by=request.user)
                done += 1
            except ValidationError as exc:
                self.message_user(request, "; ".join(exc.messages), messages.ERROR)
        self.message_user(request, gettext("%(n)d merges undone") % {"n": done})


COMPARED = ("name", "birthday", "gender", "province", "city", "external_ref", "source_channel")


def _comparison_display(groups: frozenset[str]):
    @display(description=_("side by side"))
    def comparison(obj: MatchCandidate) -> str:
        """Show the two records field by field; differing values are marked, hidden ones masked."""
        rows = []
        for name in COMPARED:
            a, b = getattr(obj.left, name) or "", getattr(obj.right, name) or ""
            mark = "" if a == b else "⚠"  # compared unmasked: a reviewer sees that they differ
            if name == "birthday" and BIRTHDAY not in groups:
                a, b = mask_birthday(a) or "", mask_birthday(b) or ""
            rows.append(
                format_html(
                    "<tr><th>{}</th><td>{}</td><td>{}</td><td>{}</td></tr>", name, a, b, mark
                )
            )
        for label, customer in (("A", obj.left), ("B", obj.right)):
            ids = ", ".join(
                f"{i.get_kind_display()} {mask_identity_for(groups, i.kind, i.value)}"
                for i in customer.identities.all()
            )
            rows.append(
                format_html("<tr><th>{} identities</th><td colspan=3>{}</td></tr>", label, ids)
            )
        # Each row was built by format_html, so the joined rows are already escaped.
        body = mark_safe("".join(rows))  # noqa: S308 -- rows come from format_html
        return format_html("<table class='kequn-compare'>{}</table>", body)

    return comparison


@admin.register(MatchCandidate)
class MatchCandidateAdmin(ModelAdmin):
    list_display = ("score", "record_a", "record_b", "reason", "status", "created_at",
                    "decided_by")  # fmt: skip
    list_filter = ("status", ImportRunFilter)
    readonly_fields = ("left", "right", "score", "status", "created_at", "decided_at",
                       "decided_by", "merge")  # fmt: skip
    actions = ("accept", "reject")

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Candidates come from the matcher."""
        return False

    @display(description=_("reason"))
    def reason(self, obj: MatchCandidate) -> str:
        """Say why the pair is here: a shared identity from an import, or the matcher's score."""
        details = obj.details or {}
        if details.get("reason") != "shared_identity":
            return gettext("similar records (probability %(p).2f)") % {"p": obj.score}
        kinds = [k for k in str(details.get("identity", "")).split("/") if k]
        return gettext("shared or reassigned %(id)s: %(old)s vs %(new)s") % {
            "id": "/".join(str(Identity.Kind(k).label).lower() for k in kinds),
            "old": obj.left.name or f"#{obj.left_id}",
            "new": obj.right.name or f"#{obj.right_id}",
        }

    @display(description=_("record A"))
    def record_a(self, obj: MatchCandidate) -> str:
        return format_html("{} {}", _customer_link(obj.left_id), obj.left.name)

    @display(description=_("record B"))
    def record_b(self, obj: MatchCandidate) -> str:
        return format_html("{} {}", _customer_link(obj.right_id), obj.right.name)

    def get_fields(self, request: HttpRequest, obj=None):
        # The comparison masks by viewer, so it is built per request.
        return (*self.readonly_fields, _per_request(request, "comparison", _comparison_display))

    get_readonly_fields = get_fields

    @admin.action(description=_("Accept: merge the pair"), permissions=["change"])
    def accept(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Merge each chosen pair."""
        done = 0
        for candidate in queryset.filter(status=MatchCandidate.Status.PENDING):
            try:
                accept_match(candidate, by=request.user)
                done += 1
            except ValidationError as exc:
                self.message_user(request, "; ".join(exc.messages), messages.ERROR)
        self.message_user(request, gettext("%(n)d pairs merged") % {"n": done})

    @admin.action(description=_("Reject: different customers"), permissions=["change"])
    def reject(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Keep each chosen pair apart for good."""
        count = 0
        for candidate in queryset.filter(status=MatchCandidate.Status.PENDING):
            reject_match(candidate, by=request.user)
            count += 1
        self.message_user(request, gettext("%(n)d pairs kept apart") % {"n": count})


def _add_run_filter_to_customers() -> None:
    # The result page links to the customers a run created or changed; the customer list
    # only takes filters it declares, so the run filter joins its filters from here.
    customer_admin = admin.site._registry.get(Customer)
    if customer_admin is not None and ImportRunFilter not in customer_admin.list_filter:
        customer_admin.list_filter = (*customer_admin.list_filter, ImportRunFilter)


_add_run_filter_to_customers()
