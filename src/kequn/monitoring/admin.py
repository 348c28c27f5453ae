"""Back office for security alerts: the list with acknowledge and resolve, and the sidebar badge."""

from __future__ import annotations

from typing import cast

from django.contrib import admin, messages
from django.core.cache import cache
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.decorators import display

from kequn.monitoring import services
from kequn.monitoring.models import Alert
from kequn.monitoring.selectors import count_open_alerts
from kequn.security.actors import Actor
from kequn.security.audit.models import AuditEntry

BADGE_SECONDS = 60
BADGE_CAP = 99

SEVERITY_COLOURS = {
    Alert.Severity.INFO: "info",
    Alert.Severity.WARNING: "warning",
    Alert.Severity.CRITICAL: "danger",
}
STATUS_COLOURS = {
    Alert.Status.OPEN: "danger",
    Alert.Status.ACKNOWLEDGED: "warning",
    Alert.Status.RESOLVED: "success",
}


def open_alerts_badge(request: HttpRequest) -> str:
    """Return the number of alerts nobody acknowledged, for the sidebar ("" when none)."""
    if not request.user.has_perm("monitoring.view_alert"):
        return ""
    # Every back-office page draws the sidebar: one cached count a minute at most.
    count = cache.get(services.BADGE_CACHE_KEY)
    if count is None:
        count = count_open_alerts(BADGE_CAP)
        cache.set(services.BADGE_CACHE_KEY, count, BADGE_SECONDS)
    if not count:
        return ""
    return f"{BADGE_CAP}+" if count > BADGE_CAP else str(count)


@admin.register(Alert)
class AlertAdmin(ModelAdmin):
    list_display = (
        "id",
        "created_at",
        "severity_label",
        "status_label",
        "title",
        "subject_user",
        "subject_ip",
    )
    list_display_links = ("id", "title")
    list_filter = ("status", "severity", "rule")
    search_fields = ("subject_user", "title")
    list_per_page = 50
    actions = ["acknowledge_selected", "resolve_selected"]
    fields = (
        "title",
        "rule",
        "severity",
        "status",
        "subject_user",
        "subject_ip",
        "details",
        "audit_links",
        "created_at",
        "notified_at",
        "notify_error",
        "acknowledged_at",
        "acknowledged_by",
        "resolved_at",
        "resolved_by",
        "note",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Alert | None = None) -> bool:
        return False

    @display(description=_("severity"), label=SEVERITY_COLOURS, ordering="severity")
    def severity_label(self, obj: Alert) -> tuple[str, str]:
        return obj.severity, obj.get_severity_display()

    @display(description=_("status"), label=STATUS_COLOURS, ordering="status")
    def status_label(self, obj: Alert) -> tuple[str, str]:
        return obj.status, obj.get_status_display()

    @display(description=_("audit entries"))
    def audit_links(self, obj: Alert) -> str:
        """Link each audit entry behind the alert (by its sequence number)."""
        rows = AuditEntry.objects.filter(sequence__in=obj.audit_entries[:200]).values_list(
            "pk", "sequence"
        )
        if not rows:
            return "—"
        return format_html_join(
            " ",
            '<a class="kequn-link" href="{}">#{}</a>',
            (
                (reverse("admin:audit_auditentry_change", args=[pk]), sequence)
                for pk, sequence in sorted(rows, key=lambda r: r[1])
            ),
        ) or format_html("—")

    @admin.action(description=_("Acknowledge selected alerts"), permissions=["change"])
    def acknowledge_selected(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        changed = services.change_alerts(
            ids, Alert.Status.ACKNOWLEDGED, by=cast(Actor, request.user)
        )
        messages.success(request, gettext("%(n)s alerts acknowledged.") % {"n": changed})

    @admin.action(description=_("Resolve selected alerts"), permissions=["change"])
    def resolve_selected(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        changed = services.change_alerts(ids, Alert.Status.RESOLVED, by=cast(Actor, request.user))
        messages.success(request, gettext("%(n)s alerts resolved.") % {"n": changed})
