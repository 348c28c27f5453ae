"""Back office for behavioural events (tens of millions of rows: no counts, indexed filters)."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import ChoicesDropdownFilter
from unfold.decorators import display
from unfold.paginator import InfinitePaginator

from kequn.customers.access import CustomerScopedAdminMixin
from kequn.customers.admin import ExactTextFilter, make_distinct_filter
from kequn.events.models import Event, Source, get_visible_kinds
from kequn.events.services import revoke_source
from kequn.labels import get_code_label
from kequn.security.admin_filters import DayRangeFilter
from kequn.security.masking import get_unmasked_groups
from kequn.security.permissions import record_personal_view

# Event names and channels are offered from the most recent rows only: a full DISTINCT
# over ten million events would take seconds.
RECENT_SAMPLE = 5000


class EventCustomerFilter(ExactTextFilter):
    """The customer id box; the 360 page links here with ?customer=<id>."""

    title = _("customer id")
    parameter_name = "customer"
    field_name = "customer_id"

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        """Keep the events of one customer."""
        value = (self.value() or "").strip()
        if value.isdigit():
            return queryset.filter(customer_id=int(value))
        return queryset


def _properties_display(request: HttpRequest):
    """Return the properties display for this viewer (built once per request)."""
    displays = request.__dict__.setdefault("_kequn_displays", {})
    if "event_properties" not in displays:
        groups = get_unmasked_groups(request.user)

        @display(description=_("properties"))
        def shown_properties(obj: Event) -> str:
            """Show the properties, personal values in clear only for viewers allowed them."""
            shown = json.dumps(obj.get_shown_properties(groups), ensure_ascii=False, indent=2)
            return format_html('<pre class="whitespace-pre-wrap">{}</pre>', shown)

        displays["event_properties"] = shown_properties
    return displays["event_properties"]


@admin.register(Event)
class EventAdmin(CustomerScopedAdminMixin, ModelAdmin):
    list_display = (
        "occurred_at",
        "type",
        "name_label",
        "customer_link",
        "anonymous_id",
        "channel_label",
    )
    list_select_related = ("customer",)
    list_filter = (
        ("type", ChoicesDropdownFilter),
        make_distinct_filter("name", _("event"), sample_size=RECENT_SAMPLE),
        make_distinct_filter("channel", _("channel"), sample_size=RECENT_SAMPLE),
        ("occurred_at", DayRangeFilter),
        EventCustomerFilter,
    )
    list_filter_submit = True
    search_fields = ("anonymous_id",)
    search_help_text = _("Customer id or anonymous id")
    show_full_result_count = False
    paginator = InfinitePaginator
    list_per_page = 50
    raw_id_fields = ("customer",)
    # No bulk actions: "select all" would span millions of rows; changes go through services.
    actions = None
    readonly_fields = ("received_at",)
    # Shown through shown_properties, masked by role; stored ones hold markers only.
    exclude = ("properties",)

    def get_readonly_fields(self, request: HttpRequest, obj: Event | None = None) -> tuple:
        return (*self.readonly_fields, _properties_display(request))

    def render_change_form(self, request: HttpRequest, context, *args, obj=None, **kwargs):
        """Record an unmasked view of the personal data in the properties."""
        groups = get_unmasked_groups(request.user)
        visible = obj is not None and obj.personal_properties and get_visible_kinds(groups)
        if visible and obj.customer_id:
            record_personal_view(request.user, [obj.customer_id], via="admin:event")
        return super().render_change_form(request, context, *args, obj=obj, **kwargs)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        """Match the anonymous id exactly and a numeric term also as customer id."""
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = Q(anonymous_id=term)
        if term.isdigit() and len(term) < 19:
            condition |= Q(customer_id=int(term))
        return queryset.filter(condition), False

    @display(description=_("event"), ordering="name")
    def name_label(self, obj: Event) -> str:
        """Show a known event name by its label (浏览商品 for Product Viewed)."""
        return get_code_label(obj.name) or "—"

    @display(description=_("channel"), ordering="channel")
    def channel_label(self, obj: Event) -> str:
        """Show the channel code by its label (App, 小程序 ...)."""
        return get_code_label(obj.channel) or "—"

    @display(description=_("customer"), ordering="customer")
    def customer_link(self, obj: Event) -> str:
        """Link the customer to the customer 360 page."""
        if obj.customer_id is None:
            return "—"
        url = reverse("admin:customers_customer_360", args=[obj.customer_id])
        return format_html('<a class="kequn-link" href="{}">{}</a>', url, str(obj.customer))


@admin.register(Source)
class SourceAdmin(ModelAdmin):
    """Event sources and their key type; keys are made (and shown once) by `kequn source`."""

    list_display = ("name", "key_type_label", "prefix", "is_active", "created_at")
    list_filter = ("key_type", "is_active")
    search_fields = ("name",)
    readonly_fields = ("name", "key_type", "key_prefix", "is_active", "created_at")
    actions = ("revoke",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Keys are created with `kequn source create`, the one place that shows them."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Source | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Source | None = None) -> bool:
        # Revoke instead: events and anonymous links keep naming their source.
        return False

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("events.change_source")

    @display(
        description=_("key type"),
        label={Source.KeyType.SERVER: "warning", Source.KeyType.CLIENT: "info"},
        ordering="key_type",
    )
    def key_type_label(self, obj: Source) -> tuple[str, str]:
        return obj.key_type, obj.get_key_type_display()

    @display(description=_("key prefix"))
    def prefix(self, obj: Source) -> str:
        return f"{obj.key_prefix}…"

    @admin.action(description=_("Revoke the write key"), permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = 0
        for source in queryset.filter(is_active=True):
            revoke_source(source=source, by=request.user)
            count += 1
        self.message_user(
            request,
            _("%(n)d write key(s) revoked; events sent with them are refused from now on.")
            % {"n": count},
            messages.SUCCESS,
        )
