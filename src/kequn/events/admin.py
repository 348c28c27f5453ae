"""Back office for behavioural events (tens of millions of rows: no counts, indexed filters)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import ChoicesDropdownFilter
from unfold.decorators import display
from unfold.paginator import InfinitePaginator

from kequn.customers.admin import DayRangeFilter, ExactTextFilter, make_distinct_filter
from kequn.events.models import Event
from kequn.security.permissions import CustomerScopedAdminMixin

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


@admin.register(Event)
class EventAdmin(CustomerScopedAdminMixin, ModelAdmin):
    list_display = ("occurred_at", "type", "name", "customer_link", "anonymous_id", "channel")
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

    @display(description=_("customer"), ordering="customer")
    def customer_link(self, obj: Event) -> str:
        """Link the customer to the customer 360 page."""
        if obj.customer_id is None:
            return "—"
        url = reverse("admin:customers_customer_360", args=[obj.customer_id])
        return format_html('<a class="kequn-link" href="{}">{}</a>', url, str(obj.customer))
