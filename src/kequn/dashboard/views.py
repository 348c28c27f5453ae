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
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from kequn.dashboard import exports, services
from kequn.dashboard.queries import build_dashboard, parse_filters

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
    except exports.PdfFontError as exc:
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


def export_list(request: HttpRequest, app_label: str, model_name: str, fmt: str) -> HttpResponse:
    """Download an admin list, with the same filters and search as the list page, as Excel or PDF."""
    _check_format(fmt)
    try:
        model = apps.get_model(app_label, model_name)
    except LookupError:
        raise Http404(
            _("There is no list %(name)s.") % {"name": f"{app_label}.{model_name}"}
        ) from None
    model_admin = admin.site._registry.get(model)
    if model_admin is None:
        raise Http404(_("There is no list %(name)s.") % {"name": f"{app_label}.{model_name}"})
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    list_url = reverse(f"admin:{app_label}_{model_name}_changelist")
    try:
        changelist = model_admin.get_changelist_instance(request)
    except IncorrectLookupParameters:
        messages.error(request, _("The list's filters could not be used; nothing was exported."))
        return HttpResponseRedirect(f"{list_url}?{request.GET.urlencode()}")
    names = [n for n in changelist.list_display if n != "action_checkbox"]
    header = [strip_tags(str(label_for_field(n, model, model_admin))) for n in names]

    def rows():
        for obj in changelist.queryset.iterator(chunk_size=2_000):
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
        except exports.PdfFontError as exc:
            messages.error(request, str(exc))
            return HttpResponseRedirect(f"{list_url}?{request.GET.urlencode()}")
    return _download(content, f"kequn-{model_name}-{stamp}.{fmt}", fmt)


@require_POST
def refresh(request: HttpRequest) -> HttpResponse:
    """Queue a recomputation of the dashboard for the worker."""
    _require_dashboard(request)
    services.enqueue_dashboard_refresh()
    messages.success(
        request, _("The dashboard refresh is queued; `kequn worker` will run it shortly.")
    )
    return HttpResponseRedirect(reverse("admin:index"))


def reports(request: HttpRequest) -> HttpResponse:
    """List the weekly summary report files."""
    from django.template.response import TemplateResponse

    _require_dashboard(request)
    files = services.list_reports()
    context = {
        **admin.site.each_context(request),
        "title": _("Reports"),
        "files": files,
        "reports_dir": services.get_reports_dir(),
    }
    return TemplateResponse(request, "dashboard/reports.html", context)


def report_file(request: HttpRequest, name: str) -> FileResponse:
    """Download one report file by name."""
    _require_dashboard(request)
    for path in services.list_reports():
        if path.name == name:
            return FileResponse(path.open("rb"), as_attachment=True, filename=path.name)
    raise Http404(_("There is no report %(name)s.") % {"name": name})
