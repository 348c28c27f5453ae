"""Dashboard on the admin home page, its exports, list exports and the weekly report files."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import display_for_field, label_for_field, lookup_field
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db.models import Model
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from kequn.dashboard import exports, list_export, tasks
from kequn.dashboard import reports as report_files
from kequn.dashboard.queries import build_dashboard, parse_filters
from kequn.security.audit import services as audit
from kequn.security.reportfiles import ReportFontError

PERMISSION = "dashboard.view_dashboard"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def dashboard_callback(request: HttpRequest, context: dict[str, Any]) -> dict[str, Any]:
    """Add the dashboard to the admin home page for users allowed to see it."""
    if request.user.has_perm(PERMISSION):
        data = build_dashboard(parse_filters(request.GET))
        query = data["filters"].as_query()
        context["dashboard"] = data
        context["dashboard_exports"] = {
            "xlsx": f"{reverse('dashboard:export', args=['xlsx'])}?{query}",
            "pdf": f"{reverse('dashboard:export', args=['pdf'])}?{query}",
        }
    return context


def _require_dashboard(request: HttpRequest) -> None:
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied


def _check_format(fmt: str) -> None:
    if fmt not in ("xlsx", "pdf"):
        raise Http404(_("Exports are Excel (.xlsx) or PDF (.pdf)."))


def _download(content: bytes, filename: str, fmt: str) -> HttpResponse:
    content_type = XLSX if fmt == "xlsx" else "application/pdf"
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def export_dashboard(request: HttpRequest, fmt: str) -> HttpResponse:
    """Download the dashboard, with the page's filters, as Excel or PDF."""
    _require_dashboard(request)
    _check_format(fmt)
    data = build_dashboard(parse_filters(request.GET))
    stamp = timezone.localtime().strftime("%Y%m%d")
    try:
        content = (
            exports.build_dashboard_xlsx(data)
            if fmt == "xlsx"
            else exports.build_dashboard_pdf(data)
        )
    except ReportFontError as exc:
        messages.error(request, str(exc))
        return HttpResponseRedirect(f"{reverse('admin:index')}?{request.GET.urlencode()}")
    return _download(content, f"kequn-dashboard-{data['filters'].period}d-{stamp}.{fmt}", fmt)


def _plain(value: Any) -> Any:
    """Make a cell value something Excel and PDF can hold."""
    if isinstance(value, Model):
        return str(value)
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).replace(tzinfo=None) if timezone.is_aware(value) else value
    if isinstance(value, (int, float, dt.date)) or value is None:
        return value
    return strip_tags(str(value))


def _get_list_admin(request: HttpRequest, app_label: str, model_name: str) -> admin.ModelAdmin:
    """Return the admin of a list the user may view and export, or raise 404/403."""
    try:
        model = apps.get_model(app_label, model_name)
    except LookupError:
        raise Http404(
            _("There is no list %(name)s.") % {"name": f"{app_label}.{model_name}"}
        ) from None
    model_admin = admin.site._registry.get(model)
    if model_admin is None:
        raise Http404(_("There is no list %(name)s.") % {"name": f"{app_label}.{model_name}"})
    if not model_admin.has_view_permission(request) or not request.user.has_perm(
        list_export.PERMISSION
    ):
        raise PermissionDenied
    return model_admin


def export_list(request: HttpRequest, app_label: str, model_name: str, fmt: str) -> HttpResponse:
    """Download an admin list, with the same filters and search as the list page, as Excel or PDF."""
    _check_format(fmt)
    model_admin = _get_list_admin(request, app_label, model_name)
    model = model_admin.model
    list_url = reverse(f"admin:{app_label}_{model_name}_changelist")
    try:
        changelist = model_admin.get_changelist_instance(request)
    except IncorrectLookupParameters:
        messages.error(request, _("The list's filters could not be used; nothing was exported."))
        return HttpResponseRedirect(f"{list_url}?{request.GET.urlencode()}")
    names = [n for n in changelist.list_display if n != "action_checkbox"]
    header = [strip_tags(str(label_for_field(n, model, model_admin))) for n in names]
    count = list_export.ExportCount()

    def rows():
        shown = list_export.restrict_rows(request.user, model, changelist.queryset, request.GET)
        for obj in shown.iterator(chunk_size=2_000):
            count.rows += 1
            row = []
            for name in names:
                try:
                    field, _attr, value = lookup_field(name, obj, model_admin)
                except (AttributeError, FieldDoesNotExist):
                    value, field = None, None
                if field is not None and getattr(field, "flatchoices", None):
                    value = display_for_field(value, field, "")
                row.append(_plain(value))
            yield row

    title = str(model._meta.verbose_name_plural).capitalize()
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    if fmt == "xlsx":
        content = exports.build_list_xlsx(title, header, rows())
    else:
        query = request.GET.urlencode()
        subtitle = _("Exported %(when)s%(filters)s") % {
            "when": timezone.localtime().strftime("%Y-%m-%d %H:%M"),
            "filters": f" — {query}" if query else "",
        }
        try:
            content = exports.build_list_pdf(title, subtitle, header, rows())
        except ReportFontError as exc:
            messages.error(request, str(exc))
            return HttpResponseRedirect(f"{list_url}?{request.GET.urlencode()}")
    count.finished = True
    _record_export(request, f"{app_label}.{model_name}", fmt, count)
    return _download(content, f"kequn-{model_name}-{stamp}.{fmt}", fmt)


def _record_export(request: HttpRequest, label: str, fmt: str, count: Any) -> None:
    """Audit one list export: who, which list, which filters (names only), how many rows."""
    audit.record_event(
        audit.EXPORT,
        actor=request.user,
        target_type=label,
        # Filter values can be personal (a searched phone number): only their names are kept.
        detail={
            "list": label,
            "format": fmt,
            "rows": count.rows,
            "complete": count.finished,
            "filters": sorted(request.GET.keys()),
        },
        request=request,
    )


def _audited(chunks: Any, on_close: Any) -> Any:
    """Pass the chunks through, then call on_close, also when the download is cut short."""
    try:
        yield from chunks
    finally:
        on_close()


def export_rows(
    request: HttpRequest, app_label: str, model_name: str, fmt: str
) -> HttpResponse | StreamingHttpResponse | FileResponse:
    """Download every row of the filtered list, streamed, personal fields masked by role."""
    label = f"{app_label}.{model_name}"
    spec = list_export.get_exportable(label)
    if spec is None or fmt not in list_export.FORMATS:
        raise Http404(
            _("The %(name)s list cannot be exported as %(format)s.")
            % {"name": label, "format": fmt}
        )
    model_admin = _get_list_admin(request, app_label, model_name)
    list_url = reverse(f"admin:{app_label}_{model_name}_changelist")
    try:
        queryset = model_admin.get_changelist_instance(request).queryset
        queryset = list_export.restrict_rows(request.user, model_admin.model, queryset, request.GET)
    except IncorrectLookupParameters:
        messages.error(request, _("The list's filters could not be used; nothing was exported."))
        return HttpResponseRedirect(f"{list_url}?{request.GET.urlencode()}")
    count = list_export.ExportCount()
    rows = list_export.iter_masked_rows(request.user, spec, queryset, count)
    stem = f"kequn-{model_name}-{timezone.localtime():%Y%m%d-%H%M}"
    if fmt == "xlsx":
        title = str(model_admin.model._meta.verbose_name_plural)
        out = list_export.write_xlsx(title, spec.columns, rows)
        _record_export(request, label, fmt, count)
        return FileResponse(out, as_attachment=True, filename=f"{stem}.xlsx", content_type=XLSX)
    chunks = _audited(
        list_export.stream_csv(spec.columns, rows),
        lambda: _record_export(request, label, fmt, count),
    )
    response = StreamingHttpResponse(chunks, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{stem}.csv"'
    return response


@require_POST
def refresh(request: HttpRequest) -> HttpResponse:
    """Queue a recomputation of the dashboard for the worker."""
    _require_dashboard(request)
    tasks.enqueue_dashboard_refresh()
    messages.success(
        request, _("The dashboard refresh is queued; `kequn worker` will run it shortly.")
    )
    return HttpResponseRedirect(reverse("admin:index"))


def reports(request: HttpRequest) -> HttpResponse:
    """List the weekly summary report files."""
    _require_dashboard(request)
    files = report_files.list_reports()
    context = {
        **admin.site.each_context(request),
        "title": _("Reports"),
        "files": files,
        "reports_dir": report_files.get_reports_dir(),
    }
    return TemplateResponse(request, "dashboard/reports.html", context)


def report_file(request: HttpRequest, name: str) -> FileResponse:
    """Download one report file by name."""
    _require_dashboard(request)
    for path in report_files.list_reports():
        if path.name == name:
            return FileResponse(path.open("rb"), as_attachment=True, filename=path.name)
    raise Http404(_("There is no report %(name)s.") % {"name": name})
