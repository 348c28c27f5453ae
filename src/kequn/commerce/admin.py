"""Back office for the catalogue, channels and orders (ten million orders: no counts, no scans)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin, TabularInline
from unfold.contrib.filters.admin import (
    ChoicesDropdownFilter,
    RangeNumericFilter,
    RelatedDropdownFilter,
)
from unfold.decorators import display
from unfold.paginator import InfinitePaginator

from kequn.commerce.models import Category, Channel, Order, OrderLine, Product
from kequn.customers.access import CustomerScopedAdminMixin
from kequn.customers.admin import ExactTextFilter, make_distinct_filter
from kequn.security.admin_filters import DayRangeFilter

# Categories are walked up to their root for display; this depth is loaded in one join.
CATEGORY_PATH_JOIN = "parent__parent__parent__parent"


class OrderCustomerFilter(ExactTextFilter):
    """The customer id box; the 360 page links here with ?customer=<id>."""

    title = _("customer id")
    parameter_name = "customer"
    field_name = "customer_id"

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        """Keep the orders of one customer."""
        value = (self.value() or "").strip()
        if value.isdigit():
            return queryset.filter(customer_id=int(value))
        return queryset


class OrderLineInline(TabularInline):
    model = OrderLine
    fields = ("product", "quantity", "unit_price", "amount")
    autocomplete_fields = ("product",)
    extra = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        """Load the products with the lines."""
        return super().get_queryset(request).select_related("product")


@admin.register(Order)
class OrderAdmin(CustomerScopedAdminMixin, ModelAdmin):
    list_display = (
        "number",
        "customer_link",
        "status",
        "channel",
        "total_amount",
        "discount_amount",
        "ordered_at",
    )
    list_select_related = ("customer", "channel")
    list_filter = (
        ("status", ChoicesDropdownFilter),
        ("channel", RelatedDropdownFilter),
        ("ordered_at", DayRangeFilter),
        ("total_amount", RangeNumericFilter),
        OrderCustomerFilter,
    )
    list_filter_submit = True
    # Export buttons (CSV, Excel) for the rows as filtered; see kequn.dashboard.list_export.
    list_before_template = "dashboard/list_export_buttons.html"
    search_fields = ("number",)
    search_help_text = _("Order number (whole or beginning) or customer id")
    show_full_result_count = False
    paginator = InfinitePaginator
    list_per_page = 50
    autocomplete_fields = ("customer", "channel")
    inlines = (OrderLineInline,)
    # No bulk actions: "select all" would span millions of rows; changes go through services.
    actions = None
    fields = (
        ("number", "status"),
        ("customer", "channel"),
        ("total_amount", "discount_amount", "currency"),
        "ordered_at",
    )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        """Match the order number by prefix and a numeric term also as customer id."""
        term = search_term.strip()
        if not term:
            return queryset, False
        # A prefix LIKE uses the unique index on number (the database collates in C).
        condition = Q(number__startswith=term)
        if term.isdigit() and len(term) < 19:
            condition |= Q(customer_id=int(term))
        return queryset.filter(condition), False

    @display(description=_("customer"), ordering="customer")
    def customer_link(self, obj: Order) -> str:
        """Link the buyer to the customer 360 page."""
        if obj.customer_id is None:
            return "—"
        url = reverse("admin:customers_customer_360", args=[obj.customer_id])
        return format_html('<a class="kequn-link" href="{}">{}</a>', url, str(obj.customer))


@admin.register(Product)
class ProductAdmin(ModelAdmin):
    list_display = (
        "sku",
        "name",
        "brand",
        "category_path",
        "price",
        "is_consumable",
        "is_active",
    )
    list_select_related = (f"category__{CATEGORY_PATH_JOIN}",)
    list_filter = (
        ("category", RelatedDropdownFilter),
        make_distinct_filter("brand", _("brand")),
        "is_consumable",
        "is_active",
    )
    list_filter_submit = True
    search_fields = ("sku", "name")
    search_help_text = _("SKU (beginning) or part of the name")
    show_full_result_count = False
    autocomplete_fields = ("category",)
    readonly_fields = ("created_at",)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        """Match the SKU by prefix and the name by any part."""
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(Q(sku__startswith=term) | Q(name__icontains=term)), False

    @display(description=_("category"), ordering="category__code")
    def category_path(self, obj: Product) -> str:
        """Show the category as its path from the root."""
        return str(obj.category) if obj.category_id else "—"


@admin.register(Category)
class CategoryAdmin(ModelAdmin):
    list_display = ("code", "path", "parent")
    list_select_related = (CATEGORY_PATH_JOIN,)
    list_filter = (("parent", RelatedDropdownFilter),)
    search_fields = ("code", "name")
    autocomplete_fields = ("parent",)
    # Deleting asks first and lists the segment and tag rules that name it.
    delete_confirmation_template = "segments/admin/delete_confirmation_rules.html"
    delete_selected_confirmation_template = "segments/admin/delete_selected_confirmation_rules.html"

    @display(description=_("path"))
    def path(self, obj: Category) -> str:
        """Show the category as its path from the root."""
        return str(obj)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        """Search, and load parents so the path costs no extra queries."""
        queryset, duplicates = super().get_search_results(request, queryset, search_term)
        return queryset.select_related(CATEGORY_PATH_JOIN), duplicates


@admin.register(Channel)
class ChannelAdmin(ModelAdmin):
    list_display = ("code", "name", "kind", "province", "city", "orders_link")
    list_filter = (("kind", ChoicesDropdownFilter),)
    search_fields = ("code", "name", "city")

    @display(description=_("orders"))
    def orders_link(self, obj: Channel) -> str:
        """Link to the orders placed in this channel."""
        url = reverse("admin:commerce_order_changelist") + f"?channel__id__exact={obj.pk}"
        return format_html('<a class="kequn-link" href="{}">{}</a>', url, _("Show orders"))
