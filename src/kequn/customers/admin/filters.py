"""Filters and search of the customer list (and the date and place filters other lists reuse).

Purchases, channels and segments belong to apps above customers (commerce, segments), which
customers may not import: their models are reached through the customer's relations instead.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Exists, Min, Model, OuterRef, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from unfold.contrib.filters.admin import DropdownFilter, TextFilter

from kequn.customers.identities import IdentityError, fold_text, normalize_email, normalize_phone
from kequn.customers.models import Customer, Identity, Tag
from kequn.customers.places import normalize_place
from kequn.datefilters import DateSearchForm, MonthSearchForm
from kequn.security import admin_filters
from kequn.security.keyring.services import blind_index


def get_order_model() -> type[Model]:
    """Return the order model (commerce's) through the customer's `orders` relation."""
    return Customer._meta.get_field("orders").related_model


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


class ExactTextFilter(admin_filters.ExactTextFilter):
    """An exact-match text box where a place matches in any spelling (深圳 / 深圳市 / Shenzhen)."""

    def normalize(self, value: str) -> Any:
        """Return the place in its stored form (other columns as typed)."""
        return normalize_place(self.field_name, value)


class DistinctValuesFilter(admin_filters.DistinctValuesFilter):
    """A distinct-values dropdown; links and saved URLs may spell a place another way."""

    def normalize(self, value: str) -> Any:
        """Return the place in its stored form (Guangdong → 广东; other columns as chosen)."""
        return normalize_place(self.field_name, value)


def make_exact_text_filter(field_name: str, title: Any) -> type[ExactTextFilter]:
    """Build an exact-match text filter for one column (places in any spelling)."""
    return admin_filters.make_exact_text_filter(field_name, title, base=ExactTextFilter)


def make_distinct_filter(
    field_name: str, title: Any, sample_size: int | None = None
) -> type[DistinctValuesFilter]:
    """Build a dropdown filter over the distinct values of one column (places in any spelling)."""
    return admin_filters.make_distinct_filter(
        field_name, title, sample_size, base=DistinctValuesFilter
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
    order_model = get_order_model()
    params = request.GET
    zone = timezone.get_current_timezone()

    def day(name: str, next_day: bool = False) -> dt.datetime | None:
        parsed = parse_date(params.get(name, "").strip())
        if parsed is None:
            return None
        return dt.datetime.combine(parsed + dt.timedelta(days=int(next_day)), dt.time(), zone)

    purchases = order_model.objects.filter(
        customer=OuterRef("pk"), status__in=order_model.PURCHASE_STATUSES
    )
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
        channels = get_order_model()._meta.get_field("channel").related_model.objects
        return [(str(pk), name) for pk, name in channels.values_list("pk", "name")]

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
        memberships = Customer._meta.get_field("segment_memberships").related_model
        segments = memberships._meta.get_field("segment").related_model.objects
        return [(str(pk), name) for pk, name in segments.values_list("pk", "name")]

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
