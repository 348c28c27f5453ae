"""Back office for customers: lists that stay fast at a million rows, and the customer 360 page."""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.cache import cache
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin, StackedInline, TabularInline
from unfold.contrib.filters.admin import (
    ChoicesDropdownFilter,
    DropdownFilter,
    RangeDateFilter,
    RangeNumericFilter,
    TextFilter,
)
from unfold.decorators import action, display

from kequn.customers import services as customer_services
from kequn.customers.access import (
    CustomerChoicesMixin,
    CustomerScopedAdminMixin,
    claim_customer,
)
from kequn.customers.identities import (
    IdentityError,
    fold_text,
    normalize_email,
    normalize_identity,
    normalize_phone,
)
from kequn.customers.models import (
    Address,
    CompanyContact,
    Consent,
    Customer,
    CustomerTag,
    Identity,
    Tag,
    TagGroup,
)
from kequn.customers.places import normalize_place
from kequn.datefilters import DateSearchForm, MonthSearchForm
from kequn.labels import get_code_label
from kequn.security.keyring.services import blind_index
from kequn.security.masking import (
    ADDRESS,
    BIRTHDAY,
    EMAIL,
    PHONE,
    get_unmasked_groups,
    mask_address_line,
    mask_birthday,
    mask_identity_for,
)
from kequn.security.permissions import record_personal_view

# Distinct values of a column are cached: computing them scans an index of up to a million rows.
CHOICES_CACHE_SECONDS = 600


class EstimatedCountPaginator(Paginator):
    """Count exactly when filtered; use the planner's estimate for a whole PostgreSQL table."""

    @cached_property
    def count(self) -> int:
        """Return the number of rows, estimated for an unfiltered table on PostgreSQL."""
        query = getattr(self.object_list, "query", None)
        if query is not None and not query.where and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                    [self.object_list.model._meta.db_table],
                )
                row = cursor.fetchone()
            # reltuples is -1 before the first ANALYZE; small tables are cheap to count anyway.
            if row and row[0] > 100_000:
                return int(row[0])
        return super().count


class DayRangeFilter(RangeDateFilter):
    """Filter a datetime column by whole local days, using the column's index."""

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        """Keep rows from the start of the first day to the end of the last one."""
        filters: dict[str, dt.datetime] = {}
        start = parse_date(str(self.used_parameters.get(f"{self.parameter_name}_from") or ""))
        end = parse_date(str(self.used_parameters.get(f"{self.parameter_name}_to") or ""))
        zone = timezone.get_current_timezone()
        if start:
            filters[f"{self.field_path}__gte"] = dt.datetime.combine(start, dt.time(), zone)
        if end:
            next_day = end + dt.timedelta(days=1)
            filters[f"{self.field_path}__lt"] = dt.datetime.combine(next_day, dt.time(), zone)
        return queryset.filter(**filters)


class ExactTextFilter(TextFilter):
    """A text box matching one column exactly, so the column's index answers it."""

    field_name = ""

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        """Keep rows whose column equals the typed value."""
        value = (self.value() or "").strip()
        if not value:
            return queryset
        # A place matches in any spelling (深圳 / 深圳市 / Shenzhen): it is stored in one form.
        return queryset.filter(**{self.field_name: normalize_place(self.field_name, value)})


def make_exact_text_filter(field_name: str, title: Any) -> type[ExactTextFilter]:
    """Build an exact-match text filter for one column."""
    return type(
        f"{field_name.title()}ExactFilter",
        (ExactTextFilter,),
        {"field_name": field_name, "parameter_name": field_name, "title": title},
    )


class DistinctValuesFilter(DropdownFilter):
    """A dropdown of the distinct values of one column, cached for a few minutes."""

    field_name = ""
    # Bounds the scan on very large tables: values seen in the most recent rows are offered.
    sample_size: int | None = None

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        """Offer the distinct non-empty values of the column."""
        model = model_admin.model
        key = f"kequn:distinct:{model._meta.label_lower}:{self.field_name}"
        values = cache.get(key)
        if values is None:
            queryset = model._default_manager.exclude(**{self.field_name: ""})
            if self.sample_size:
                recent = queryset.order_by("-pk").values("pk")[: self.sample_size]
                queryset = model._default_manager.filter(pk__in=recent)
            values = sorted(
                set(queryset.order_by().values_list(self.field_name, flat=True).distinct())
            )
            cache.set(key, values, CHOICES_CACHE_SECONDS)
        return [(value, get_code_label(value)) for value in values]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        """Keep rows whose column equals the chosen value."""
        if self.value():
            # Links and saved URLs may spell a place another way (Guangdong for 广东).
            value = normalize_place(self.field_name, self.value())
            return queryset.filter(**{self.field_name: value})
        return queryset


def make_distinct_filter(
    field_name: str, title: Any, sample_size: int | None = None
) -> type[DistinctValuesFilter]:
    """Build a dropdown filter over the distinct values of one column."""
    return type(
        f"{field_name.title()}DistinctFilter",
        (DistinctValuesFilter,),
        {
            "field_name": field_name,
            "parameter_name": field_name,
            "title": title,
            "sample_size": sample_size,
        },
    )


class ScoreDigitFilter(DropdownFilter):
    """Pick customers by one RFM score digit (1-5), e.g. from a cell of the RFM grid."""

    field_name = ""

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        """Offer the five score values."""
        return [(str(n), str(n)) for n in range(1, 6)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        """Keep customers whose latest score has this digit."""
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(**{f"score__{self.field_name}": int(value)})
        return queryset


class RScoreFilter(ScoreDigitFilter):
    title = _("R score")
    parameter_name = "score__r_score__exact"
    field_name = "r_score"


class FScoreFilter(ScoreDigitFilter):
    title = _("F score")
    parameter_name = "score__f_score__exact"
    field_name = "f_score"


def parse_month(text: str) -> dt.date | None:
    """Return the first day of a YYYY-MM month, or None if the text is not one."""
    year, sep, month = text.strip().partition("-")
    if not (sep and len(year) == 4 and year.isdigit() and month.isdigit() and len(month) <= 2):
        return None
    if not 1 <= int(month) <= 12 or int(year) < 1:
        return None
    return dt.date(int(year), int(month), 1)


def filter_by_purchases(request: HttpRequest, queryset: QuerySet) -> QuerySet:
    """Apply the purchase filters together: channel, purchase dates, first-purchase dates.

    The dashboard links combine them ("customers who bought in this channel this month"), so
    they must mean one condition on the same orders, not independent ones.
    """
    from django.db.models import Exists, Min, OuterRef

    from kequn.commerce.models import Order

    params = request.GET
    zone = timezone.get_current_timezone()

    def day(name: str, next_day: bool = False) -> dt.datetime | None:
        parsed = parse_date(params.get(name, "").strip())
        if parsed is None:
            return None
        return dt.datetime.combine(parsed + dt.timedelta(days=int(next_day)), dt.time(), zone)

    purchases = Order.objects.filter(customer=OuterRef("pk"), status__in=Order.PURCHASE_STATUSES)
    channel = params.get("purchase_channel", "").strip()
    if channel.isdigit():
        purchases = purchases.filter(channel_id=int(channel))
    since, until = day("purchased_from"), day("purchased_to", next_day=True)
    in_range = purchases
    if since:
        in_range = in_range.filter(ordered_at__gte=since)
    if until:
        in_range = in_range.filter(ordered_at__lt=until)
    if channel.isdigit() or since or until:
        queryset = queryset.filter(Exists(in_range))
    first_since = day("first_purchase_from")
    first_until = day("first_purchase_to", next_day=True)
    month = parse_month(params.get("first_purchase_month", ""))
    if month is not None:
        # A cohort of the dashboard: first purchase (in the channel, if one is chosen) that month.
        month_start = dt.datetime.combine(month, dt.time(), zone)
        next_month = dt.datetime.combine(
            (month + dt.timedelta(days=32)).replace(day=1), dt.time(), zone
        )
        first_since = max(first_since, month_start) if first_since else month_start
        first_until = min(first_until, next_month) if first_until else next_month
    if first_since or first_until:
        firsts = purchases.values("customer").annotate(first=Min("ordered_at"))
        if first_since:
            firsts = firsts.filter(first__gte=first_since)
        if first_until:
            firsts = firsts.filter(first__lt=first_until)
        queryset = queryset.filter(Exists(firsts))
    return queryset


class PurchaseChannelFilter(DropdownFilter):
    title = _("bought in channel")
    parameter_name = "purchase_channel"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        """Offer the stores and channels."""
        from kequn.commerce.models import Channel

        return [(str(pk), name) for pk, name in Channel.objects.values_list("pk", "name")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        """Apply every purchase filter at once (this one runs them for the others)."""
        return filter_by_purchases(request, queryset)


class PurchaseDateFilter(TextFilter):
    """A date box (YYYY-MM-DD) whose condition is applied by PurchaseChannelFilter."""

    form_class = DateSearchForm

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        """Leave filtering to filter_by_purchases, which combines all purchase parameters."""
        if self.value() and parse_date(self.value().strip()) is None:
            messages.warning(
                request, _("%(value)s is not a date: use YYYY-MM-DD") % {"value": self.value()}
            )
        return queryset


def make_purchase_date_filter(parameter: str, title: Any) -> type[PurchaseDateFilter]:
    """Build one of the purchase-date boxes."""
    return type(
        f"{parameter.title()}Filter",
        (PurchaseDateFilter,),
        {"parameter_name": parameter, "title": title},
    )


class PurchaseMonthFilter(TextFilter):
    """A month box (YYYY-MM): customers whose first purchase fell in it (a dashboard cohort)."""

    form_class = MonthSearchForm

    title = _("first purchase in month")
    parameter_name = "first_purchase_month"

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        """Leave filtering to filter_by_purchases; say so when the month cannot be read."""
        if self.value() and parse_month(self.value()) is None:
            messages.warning(
                request, _("%(value)s is not a month: use YYYY-MM") % {"value": self.value()}
            )
        return queryset


class SegmentFilter(DropdownFilter):
    title = _("segment")
    parameter_name = "segment"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        """Offer every segment."""
        from kequn.segments.models import Segment

        return [(str(pk), name) for pk, name in Segment.objects.values_list("pk", "name")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        """Keep the segment's current members."""
        value = self.value()
        if value and value.isdigit():
            # One membership row per (segment, customer), so the join cannot duplicate rows.
            return queryset.filter(segment_memberships__segment_id=int(value))
        return queryset


class TagFilter(DropdownFilter):
    title = _("tag")
    parameter_name = "tag"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        """Offer every tag, grouped name first."""
        return [(str(tag.pk), str(tag)) for tag in Tag.objects.select_related("group")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        """Keep customers carrying the chosen tag."""
        value = self.value()
        if value and value.isdigit():
            # One link per (customer, tag), so the join cannot duplicate rows.
            return queryset.filter(tag_links__tag_id=int(value))
        return queryset


def get_identity_match(term: str) -> Q | None:
    """Return a condition matching identities whose normalised value equals the search term."""
    text = fold_text(term)
    if not text:
        return None
    # Values are encrypted: each branch matches the keyed hash (blind index) of the candidate
    # value, so the (value_index, kind, system) unique index answers it.
    match = Q(kind=Identity.Kind.WECHAT, system="", value_index=blind_index(text))
    if "@" in text:
        with contextlib.suppress(IdentityError):
            email = blind_index(normalize_email(text))
            match |= Q(kind=Identity.Kind.EMAIL, system="", value_index=email)
    elif any(ch.isdigit() for ch in text):
        with contextlib.suppress(IdentityError):
            phone = blind_index(normalize_phone(text))
            match |= Q(kind=Identity.Kind.PHONE, system="", value_index=phone)
    system, sep, value = text.partition(":")
    if sep and system and value:
        external = blind_index(value.strip())
        match |= Q(kind=Identity.Kind.EXTERNAL, system=system.strip(), value_index=external)
    return match


def search_customers(queryset: QuerySet, term: str) -> QuerySet:
    """Filter customers by id, name prefix or any identity value (email, phone, WeChat, system:id)."""
    term = term.strip()
    if not term:
        return queryset
    condition = Q(name__startswith=term)
    if term.isdigit() and len(term) < 19:
        condition |= Q(pk=int(term))
    match = get_identity_match(term)
    if match is not None:
        condition |= Q(pk__in=Identity.objects.filter(match).values("customer_id"))
    return queryset.filter(condition)


class IdentityForm(forms.ModelForm):
    def clean(self) -> dict[str, Any]:
        """Store the value normalised, as the services do."""
        data = super().clean()
        kind, value = data.get("kind"), data.get("value")
        if kind and value:
            try:
                data["value"] = normalize_identity(kind, value)
            except IdentityError as exc:
                self.add_error("value", str(exc))
            if kind != Identity.Kind.EXTERNAL:
                data["system"] = ""
            # The unique constraint is on the blind index, which the form does not show.
            if "value" not in self.errors and (
                Identity.objects.with_value(data["value"])
                .filter(kind=kind, system=data.get("system") or "")
                .exclude(pk=self.instance.pk)
                .exists()
            ):
                self.add_error("value", _("This identity already belongs to a customer."))
        return data


class IdentityInline(TabularInline):
    model = Identity
    form = IdentityForm
    fields = ("kind", "system", "value", "verified", "created_at")
    readonly_fields = ("created_at",)
    extra = 0
    tab = True


class AddressInline(StackedInline):
    model = Address
    fields = (
        ("label", "is_default"),
        ("country", "province", "city", "district"),
        ("line", "postcode"),
    )
    extra = 0
    tab = True


def make_masked_identity_inline(unmasked: frozenset[str]) -> type[IdentityInline]:
    """Return an identities tab showing values masked for this viewer, read-only."""

    class MaskedIdentityInline(IdentityInline):
        fields = ("kind", "system", "shown_value", "verified", "created_at")
        readonly_fields = fields
        hide_title = True  # the row title is the identity's text, value unmasked
        can_delete = False

        def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
            """Refuse: a value this user may not see cannot be entered or checked either."""
            return False

        def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
            """Refuse edits of masked values."""
            return False

        @display(description=_("value"))
        def shown_value(self, obj: Identity) -> str:
            """Show the value masked for this viewer."""
            return mask_identity_for(unmasked, obj.kind, obj.value)

    return MaskedIdentityInline


class MaskedAddressInline(AddressInline):
    """Addresses readable down to the district, the street line masked, read-only."""

    fields = (("label", "is_default"), ("country", "province", "city", "district"), "masked_line")
    readonly_fields = ("label", "is_default", "country", "province", "city", "district")
    readonly_fields += ("masked_line",)
    hide_title = True  # the title is the address's text, street line unmasked
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Refuse: without seeing addresses this user does not enter them."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Refuse edits of masked addresses."""
        return False

    @display(description=_("street address"))
    def masked_line(self, obj: Address) -> str:
        """Show the street line masked."""
        return mask_address_line(obj.line)


class ConsentInline(TabularInline):
    """Consents are append-only: past decisions are shown, a new decision is added."""

    model = Consent
    fields = ("channel", "purpose", "granted", "source", "recorded_at")
    readonly_fields = ("recorded_at",)
    extra = 0
    can_delete = False
    tab = True

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Refuse edits: a consent record is evidence and is never changed."""
        return False


class CustomerTagInline(TabularInline):
    model = CustomerTag
    fields = ("tag", "added_by", "added_at")
    readonly_fields = ("added_by", "added_at")
    autocomplete_fields = ("tag",)
    extra = 0
    tab = True
    verbose_name_plural = _("tags")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        """Load tags and their authors with the links."""
        return super().get_queryset(request).select_related("tag__group", "added_by")


class ContactInline(CustomerChoicesMixin, TabularInline):
    model = CompanyContact
    fk_name = "company"
    fields = ("contact", "title", "is_primary")
    autocomplete_fields = ("contact",)
    extra = 0
    tab = True
    verbose_name = _("contact")
    verbose_name_plural = _("contacts")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        """Load the contact people with the links."""
        return super().get_queryset(request).select_related("contact")


class EmployerInline(CustomerChoicesMixin, TabularInline):
    model = CompanyContact
    fk_name = "contact"
    fields = ("company", "title", "is_primary")
    autocomplete_fields = ("company",)
    extra = 0
    tab = True
    verbose_name = _("company")
    verbose_name_plural = _("companies")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        """Load the companies with the links."""
        return super().get_queryset(request).select_related("company")


@admin.register(Customer)
class CustomerAdmin(CustomerScopedAdminMixin, ModelAdmin):
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
        # Edits made here outrank every import (import survivorship keeps them).
        customer_services.mark_field_sources(obj, form.changed_data, customer_services.BACKOFFICE)
        super().save_model(request, obj, form, change)
        if not change:
            claim_customer(request.user, obj.pk)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        """Record who added a tag."""
        instances = formset.save(commit=False)
        for instance in instances:
            if isinstance(instance, CustomerTag) and instance.added_by_id is None:
                instance.added_by = request.user
            instance.save()
        for instance in formset.deleted_objects:
            instance.delete()
        formset.save_m2m()

    @display(description=_("source channel"), ordering="source_channel")
    def source_channel_label(self, obj: Customer) -> str:
        """Show the source channel code by its label (门店, 天猫 ...)."""
        return get_code_label(obj.source_channel) or "—"

    @display(description=_("name"), ordering="name")
    def name_link(self, obj: Customer) -> str:
        """Link the name to the customer 360 page."""
        url = reverse("admin:customers_customer_360", args=[obj.pk])
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
        from kequn.customers.views import customer_360_view

        view = self.admin_site.admin_view(customer_360_view(self))
        extra = [path("<int:object_id>/360/", view, name="customers_customer_360")]
        return extra + super().get_urls()


@admin.register(Identity)
class IdentityAdmin(CustomerScopedAdminMixin, ModelAdmin):
    form = IdentityForm
    list_display = ("value", "kind", "system", "verified", "customer", "created_at")
    sortable_by = ("kind", "system", "verified", "customer", "created_at")  # value is encrypted
    list_filter = (("kind", ChoicesDropdownFilter), "verified")
    list_select_related = ("customer",)
    search_fields = ("value",)
    search_help_text = _("Exact email, phone, WeChat openid or system:id")
    autocomplete_fields = ("customer",)
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    readonly_fields = ("created_at",)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        """Match the normalised value exactly, through the unique index."""
        match = get_identity_match(search_term)
        return (queryset.filter(match) if match is not None else queryset), False

    def _masked_value(self, request: HttpRequest) -> Any:
        """Return a display of the value masked for this viewer, or None when nothing is masked."""
        unmasked = get_unmasked_groups(request.user)
        if {PHONE, EMAIL} <= unmasked:
            return None

        @display(description=_("value"))
        def shown_value(obj: Identity) -> str:
            return mask_identity_for(unmasked, obj.kind, obj.value)

        return shown_value

    def _may_see(self, request: HttpRequest, obj: Identity | None) -> bool:
        """Return whether the user may see this identity's value (titles and logs show it)."""
        return (
            obj is None
            or mask_identity_for(get_unmasked_groups(request.user), obj.kind, obj.value)
            == obj.value
        )

    def has_view_permission(self, request: HttpRequest, obj: Identity | None = None) -> bool:
        """Refuse to open an identity whose value the user may not see."""
        return super().has_view_permission(request, obj) and self._may_see(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Identity | None = None) -> bool:
        """Refuse to change an identity whose value the user may not see."""
        return super().has_change_permission(request, obj) and self._may_see(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Identity | None = None) -> bool:
        """Refuse to delete an identity whose value the user may not see."""
        return super().has_delete_permission(request, obj) and self._may_see(request, obj)

    def get_list_display(self, request: HttpRequest) -> Any:
        """Show values masked to users who may not see phones or emails."""
        shown = self._masked_value(request)
        fields = super().get_list_display(request)
        return fields if shown is None else [shown if f == "value" else f for f in fields]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        """Record who opened an identity with its value unmasked."""
        response = super().change_view(request, object_id, form_url, extra_context)
        if request.method == "GET" and response.status_code == 200:
            customer_id = self.get_queryset(request).filter(pk=object_id).values("customer_id")
            record_personal_view(
                request.user, list(customer_id.values_list("customer_id", flat=True)), via="admin"
            )
        return response


class TagInline(TabularInline):
    model = Tag
    fields = ("name", "kind", "created_at")
    readonly_fields = ("created_at",)
    extra = 0


@admin.register(Tag)
class TagAdmin(ModelAdmin):
    list_display = ("name", "group", "kind", "created_at", "customers_link")
    list_filter = (("kind", ChoicesDropdownFilter), ("group", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("group",)
    search_fields = ("name", "group__name")
    fields = ("group", "name", "kind", "created_at")
    readonly_fields = ("created_at",)
    # Deleting asks first and lists the segment and tag rules that name it.
    delete_confirmation_template = "segments/admin/delete_confirmation_rules.html"
    delete_selected_confirmation_template = "segments/admin/delete_selected_confirmation_rules.html"

    @display(description=_("customers"))
    def customers_link(self, obj: Tag) -> str:
        """Link to the customer list filtered by this tag."""
        url = reverse("admin:customers_customer_changelist") + f"?tag={obj.pk}"
        return format_html('<a class="kequn-link" href="{}">{}</a>', url, _("Show customers"))


@admin.register(TagGroup)
class TagGroupAdmin(ModelAdmin):
    list_display = ("name", "description", "tag_count")
    search_fields = ("name",)
    inlines = (TagInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        """Count the tags of each group in the same query."""
        return super().get_queryset(request).annotate(tag_total=Count("tags"))

    @display(description=_("tags"), ordering="tag_total")
    def tag_count(self, obj: TagGroup) -> int:
        """Return the number of tags in the group."""
        return obj.tag_total
