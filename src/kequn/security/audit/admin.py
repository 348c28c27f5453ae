"""The auditors' view of the trail: read-only, filterable, with a button that verifies the chain."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import DropdownFilter
from unfold.decorators import action, display

from kequn.conf import ConfigError
from kequn.labels import get_code_label
from kequn.security.admin_filters import DayRangeFilter, ExactTextFilter, make_distinct_filter
from kequn.security.audit import services
from kequn.security.audit.head import pin_head, read_pinned_head
from kequn.security.audit.models import AuditEntry


class ActionFilter(DropdownFilter):
    """Pick one kind of event."""

    title = _("action")
    parameter_name = "action"

    def lookups(self, request: HttpRequest, model_admin) -> list[tuple[str, str]]:
        """Offer every known action by its label."""
        return [(key, str(label)) for key, label in services.ACTION_LABELS.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        """Keep entries of the chosen action."""
        return queryset.filter(action=self.value()) if self.value() else queryset


class ActorFilter(ExactTextFilter):
    """The user name of whoever acted (kept even after the user is deleted)."""

    title = _("actor")
    parameter_name = "actor"
    field_name = "actor_username"


class TargetIdFilter(ExactTextFilter):
    """The id of the object acted on (e.g. a customer id)."""

    title = _("target id")
    parameter_name = "target_id"
    field_name = "target_id"


@admin.register(AuditEntry)
class AuditEntryAdmin(ModelAdmin):
    list_display = (
        "sequence",
        "created_at",
        "actor_username",
        "action_label",
        "target_label",
        "target_id",
        "ip_address",
    )
    list_display_links = ("sequence",)
    list_filter = (
        ActorFilter,
        ActionFilter,
        ("created_at", DayRangeFilter),
        make_distinct_filter("target_type", _("target type"), sample_size=5000),
        TargetIdFilter,
    )
    list_filter_submit = True
    search_fields = ("target_id",)
    search_help_text = _("Target id or actor user name (exact)")
    list_per_page = 100
    show_full_result_count = False
    # The trail is read-only: no bulk actions, no add, change or delete.
    actions = None
    actions_list = ("verify_chain",)
    fields = (
        "sequence",
        "created_at",
        "actor_id",
        "actor_username",
        "action",
        "target_type",
        "target_id",
        "detail",
        "ip_address",
        "user_agent",
        "request_path",
        "prev_mac",
        "mac",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        """Match the target id or the actor's user name exactly (both indexed)."""
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(Q(target_id=term) | Q(actor_username=term)), False

    @display(description=_("target type"), ordering="target_type")
    def target_label(self, obj: AuditEntry) -> str:
        """Show the target's model by its translated name (客户, not customers.customer)."""
        return get_code_label(obj.target_type)

    @display(description=_("action"), ordering="action")
    def action_label(self, obj: AuditEntry) -> str:
        """Show the action by its translated label."""
        label = services.ACTION_LABELS.get(obj.action)
        return str(label) if label else obj.action

    @action(
        description=_("Verify chain"),
        url_path="verify-chain",
        permissions=["view"],  # has_view_permission: audit.view_auditentry
        icon="verified",
    )
    def verify_chain(self, request: HttpRequest) -> HttpResponseRedirect:
        """Walk the whole chain (and check the pinned head) and report the result as a message."""
        try:
            pinned = read_pinned_head()
        except ConfigError as exc:
            messages.error(request, str(exc))
            return HttpResponseRedirect(reverse("admin:audit_auditentry_changelist"))
        result = services.verify_chain(expect_head=pinned)
        if result.ok and result.count:
            try:
                pin_head(result.head_sequence, result.head_mac)
            except ConfigError as exc:
                messages.warning(request, str(exc))
        services.record_event(
            services.AUDIT_VERIFY,
            request=request,
            detail={
                "count": result.count,
                "ok": result.ok,
                "broken_at": result.problem.sequence if result.problem else None,
            },
        )
        if result.ok:
            messages.success(
                request,
                gettext("Audit chain OK: %(count)s entries, head #%(seq)s.")
                % {"count": result.count, "seq": result.head_sequence},
            )
        else:
            messages.error(
                request,
                gettext("Audit chain broken: %(message)s.") % {"message": result.problem.message},
            )
        return HttpResponseRedirect(reverse("admin:audit_auditentry_changelist"))
