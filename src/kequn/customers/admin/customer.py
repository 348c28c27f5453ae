"""The customer list (fast at a million rows), the customer form, and the customer 360 page."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import ChoicesDropdownFilter, RangeNumericFilter
from unfold.decorators import action, display

from kequn.customers import services as customer_services
from kequn.customers.access import CustomerScopedAdminMixin, claim_customer
from kequn.customers.admin.base import SavedThroughServicesMixin
from kequn.customers.admin.filters import (
    EstimatedCountPaginator,
    FScoreFilter,
    PurchaseChannelFilter,
    PurchaseMonthFilter,
    RScoreFilter,
    SegmentFilter,
    TagFilter,
    make_distinct_filter,
    make_exact_text_filter,
    make_purchase_date_filter,
    search_customers,
)
from kequn.customers.admin.inlines import (
    AddressInline,
    ConsentInline,
    ContactInline,
    CustomerTagInline,
    EmployerInline,
    IdentityInline,
    MaskedAddressInline,
    make_masked_identity_inline,
)
from kequn.customers.models import Customer
from kequn.customers.views import customer_360_view
from kequn.labels import get_code_label
from kequn.links import get_object_url
from kequn.security.admin_filters import DayRangeFilter
from kequn.security.masking import (
    ADDRESS,
    BIRTHDAY,
    EMAIL,
    PHONE,
    get_unmasked_groups,
    mask_birthday,
)
from kequn.security.permissions import record_personal_view


@admin.register(Customer)
class CustomerAdmin(SavedThroughServicesMixin, CustomerScopedAdminMixin, ModelAdmin):
    customer_path = ""  # a sales rep lists and opens only the accounts they own
    list_display = (
        "id",
        "name_link",
        "kind",
        "province",
        "city",
        "source_channel_label",
        "rfm_segment",
        "lifecycle_stage",
        "clv",
        "created_at",
    )
    list_display_links = ("id",)
    # The score is a one-to-one on the customer's key: joining it costs one index lookup a row.
    list_select_related = ("score",)
    list_filter = (
        ("score__rfm_segment", ChoicesDropdownFilter),
        ("score__lifecycle_stage", ChoicesDropdownFilter),
        ("score__clv", RangeNumericFilter),
        ("score__churn_percentile", RangeNumericFilter),
        RScoreFilter,
        FScoreFilter,
        PurchaseChannelFilter,
        make_purchase_date_filter("purchased_from", _("bought on or after")),
        make_purchase_date_filter("purchased_to", _("bought on or before")),
        make_purchase_date_filter("first_purchase_from", _("first purchase on or after")),
        make_purchase_date_filter("first_purchase_to", _("first purchase on or before")),
        PurchaseMonthFilter,
        ("kind", ChoicesDropdownFilter),
        ("gender", ChoicesDropdownFilter),
        make_distinct_filter("province", _("province")),
        make_exact_text_filter("city", _("city")),
        make_distinct_filter("source_channel", _("source channel")),
        make_distinct_filter("age_band", _("age band")),
        make_distinct_filter("income_band", _("income band")),
        TagFilter,
        SegmentFilter,
        ("created_at", DayRangeFilter),
    )
    list_filter_submit = True
    # Export buttons (CSV, Excel) for the rows as filtered; see kequn.dashboard.list_export.
    # Beside them, "save as segment" turns the filters into a rule (kequn.segments.builder).
    list_before_template = "segments/admin/customer_list_before.html"
    search_fields = ("name",)
    search_help_text = _("Name (beginning), customer id, email, phone, WeChat openid or system:id")
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_per_page = 50
    readonly_fields = ("created_at", "updated_at", "processing_restricted")
    raw_id_fields = ("merged_into",)
    fieldsets = (
        (None, {"fields": (("kind", "name"), ("gender", "birthday", "preferred_language"))}),
        (
            _("Demographics"),
            {"fields": (("age_band", "income_band"), ("occupation", "industry"))},
        ),
        (_("Location"), {"fields": (("country", "province", "city"),)}),
        (
            _("Origin"),
            {
                "fields": (
                    ("source_channel", "external_ref"),
                    "merged_into",
                    "processing_restricted",
                    ("created_at", "updated_at"),
                )
            },
        ),
    )
    inlines = (
        IdentityInline,
        AddressInline,
        ConsentInline,
        CustomerTagInline,
        ContactInline,
        EmployerInline,
    )
    actions_detail = ("open_360",)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Show a customer restricted on a data-subject request read-only."""
        if obj is not None and obj.processing_restricted:
            return False
        return super().has_change_permission(request, obj)

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        """Allow the RFM digit filters, whose parameters look like field lookups."""
        if lookup in {RScoreFilter.parameter_name, FScoreFilter.parameter_name}:
            return True
        # The birth year is part of the birthday: filtering by it would unmask the year.
        if lookup.split("__")[0] in ("birth_year", BIRTHDAY) and (
            request is None or BIRTHDAY not in get_unmasked_groups(request.user)
        ):
            return False
        return super().lookup_allowed(lookup, value, request)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        """Search by id, name prefix and normalised identity values, all through indexes."""
        return search_customers(queryset, search_term), False

    def get_inlines(self, request: HttpRequest, obj: Customer | None) -> list:
        """Show contacts on a company and employers on a person."""
        inlines = list(self.inlines)
        if obj is not None and obj.kind == Customer.Kind.COMPANY:
            inlines.remove(EmployerInline)
        else:
            inlines.remove(ContactInline)
        unmasked = get_unmasked_groups(request.user)
        if not {PHONE, EMAIL} <= unmasked:
            inlines[inlines.index(IdentityInline)] = make_masked_identity_inline(unmasked)
        if ADDRESS not in unmasked:
            inlines[inlines.index(AddressInline)] = MaskedAddressInline
        return inlines

    def get_fieldsets(self, request: HttpRequest, obj: Customer | None = None) -> Any:
        """Show the birthday masked and read-only to users who may not see it."""
        fieldsets = super().get_fieldsets(request, obj)
        if BIRTHDAY in get_unmasked_groups(request.user):
            return fieldsets

        def swap(fields: Any) -> Any:
            if isinstance(fields, list | tuple):
                return type(fields)(swap(f) for f in fields)
            return "masked_birthday" if fields == BIRTHDAY else fields

        return [(name, {**opts, "fields": swap(opts["fields"])}) for name, opts in fieldsets]

    def get_readonly_fields(self, request: HttpRequest, obj: Customer | None = None) -> Any:
        """Add the masked birthday for users who may not see it."""
        fields = tuple(super().get_readonly_fields(request, obj))
        if BIRTHDAY in get_unmasked_groups(request.user):
            return fields
        return (*fields, "masked_birthday")

    @display(description=_("birthday"))
    def masked_birthday(self, obj: Customer) -> str:
        """Show the birthday with the year hidden."""
        return mask_birthday(obj.birthday) or "—"

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        """Record who opened a customer with personal fields unmasked."""
        response = super().change_view(request, object_id, form_url, extra_context)
        if request.method == "GET" and response.status_code == 200:
            record_personal_view(request.user, [object_id], via="admin")
        return response

    def save_model(self, request: HttpRequest, obj: Customer, form: Any, change: bool) -> None:
        """Save; a customer a sales rep adds is theirs, so it stays in their list."""
        # The service marks the fields as set here: they outrank every import (survivorship).
        customer_services.save_customer(obj, changed=form.changed_data, by=request.user)
        if not change:
            claim_customer(request.user, obj.pk)

    def delete_model(self, request: HttpRequest, obj: Customer) -> None:
        """Delete the customer with its identities, consents and tags."""
        customer_services.delete_customer(obj, by=request.user)

    @display(description=_("source channel"), ordering="source_channel")
    def source_channel_label(self, obj: Customer) -> str:
        """Show the source channel code by its label (门店, 天猫 ...)."""
        return get_code_label(obj.source_channel) or "—"

    @display(description=_("name"), ordering="name")
    def name_link(self, obj: Customer) -> str:
        """Link the name to the customer 360 page."""
        url = get_object_url("admin:customers_customer_360", obj.pk)
        return format_html('<a class="kequn-link" href="{}">{}</a>', url, str(obj))

    @display(description=_("RFM segment"), ordering="score__rfm_segment")
    def rfm_segment(self, obj: Customer) -> str:
        """Show the RFM segment of the latest refresh."""
        score = getattr(obj, "score", None)
        return score.get_rfm_segment_display() if score and score.rfm_segment else "—"

    @display(description=_("lifecycle stage"), ordering="score__lifecycle_stage")
    def lifecycle_stage(self, obj: Customer) -> str:
        """Show the lifecycle stage of the latest refresh."""
        score = getattr(obj, "score", None)
        return score.get_lifecycle_stage_display() if score and score.lifecycle_stage else "—"

    @display(description=_("CLV"), ordering="score__clv")
    def clv(self, obj: Customer) -> str:
        """Show the customer lifetime value of the latest refresh."""
        score = getattr(obj, "score", None)
        return f"{score.clv:,.0f}" if score and score.clv is not None else "—"

    @action(
        description=_("Customer 360"),
        url_path="open-360",
        icon="person_search",
        permissions=["view"],
    )
    def open_360(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """Open the 360 page of the customer being edited."""
        return HttpResponseRedirect(reverse("admin:customers_customer_360", args=[object_id]))

    def get_urls(self) -> list:
        """Add the customer 360 page."""
        view = self.admin_site.admin_view(customer_360_view(self))
        extra = [path("<int:object_id>/360/", view, name="customers_customer_360")]
        return extra + super().get_urls()
