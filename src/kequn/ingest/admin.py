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
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.decorators import display

from kequn.ingest.models import ImportRun, MatchCandidate, Merge, QuarantinedRow
from kequn.ingest.presets import FIELDS, KINDS, PRESETS, Mapping
from kequn.ingest.readers import ImportFileError, iter_rows, open_file
from kequn.ingest.services import (
    accept_match,
    describe_quarantine_message,
    discard_quarantined_rows,
    import_file,
    inspect_file,
    reject_match,
    retry_quarantined_rows,
    undo_merge,
    write_quarantine_csv,
)
from kequn.security.masking import (
    BIRTHDAY,
    FIELD_GROUPS,
    get_unmasked_groups,
    mask_birthday,
    mask_identity_for,
    mask_mapped_values,
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
                messages.success(request, gettext("Imported: %(s)s") % {"s": summary.to_dict()})
                return redirect("admin:ingest_importrun_change", summary.run_id)
            context.update(self._preview(stored, kind, mapping, request.POST))
            context["summary"] = summary
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
                context.update(self._preview(stored, kind, mapping, {"display_name": name}))
                return TemplateResponse(request, "admin/ingest/upload.html", context)
        context["form"] = form
        return TemplateResponse(request, "admin/ingest/upload.html", context)

    def _preview(self, stored: Path, kind: str, mapping: Mapping, post) -> dict:
        info = open_file(stored)
        sample = []
        for _n, row in iter_rows(info):
            sample.append([row.get(h, "")[:60] for h in info.headers])
            if len(sample) >= 5:
                break
        return {
            "stored": stored.name,
            "kind": kind,
            "system": mapping.system,
            "display_name": post.get("display_name", stored.name),
            "headers": [(i, h, mapping.columns.get(h, "")) for i, h in enumerate(info.headers)],
            "fields": FIELDS[kind],
            "sample": sample,
            "info": info,
        }


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
    list_filter = ("status", "reason", "kind")
    search_fields = ("file_name",)  # the message is encrypted
    readonly_fields = ("run", "kind", "file_name", "checksum", "row_number", "field", "reason",
                       "message", "mapping", "status", "created_at", "resolved_at")  # fmt: skip
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
        counts = retry_quarantined_rows(queryset)
        self.message_user(
            request,
            gettext("%(ok)d rows imported, %(bad)d still rejected")
            % {"ok": counts["resolved"], "bad": counts["still_rejected"]},
            messages.SUCCESS if not counts["still_rejected"] else messages.WARNING,
        )

    @admin.action(description=_("Discard selected rows"), permissions=["change"])
    def discard_rows(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Mark rows as deliberately not imported."""
        count = discard_quarantined_rows(queryset)
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
        return format_html("<table class='kequn-compare'>{}</table>", mark_safe("".join(rows)))

    return comparison


@admin.register(MatchCandidate)
class MatchCandidateAdmin(ModelAdmin):
    list_display = ("score", "record_a", "record_b", "status", "created_at", "decided_by")
    list_filter = ("status",)
    readonly_fields = ("left", "right", "score", "status", "created_at", "decided_at",
                       "decided_by", "merge")  # fmt: skip
    actions = ("accept", "reject")

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Candidates come from the matcher."""
        return False

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
