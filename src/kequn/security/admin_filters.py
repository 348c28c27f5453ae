"""Back-office list filters that know no business model: whole days, exact text, distinct values.

The audit trail's list uses them; apps above may subclass them (customers adds place spelling).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import admin
from django.core.cache import cache
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_date
from unfold.contrib.filters.admin import DropdownFilter, RangeDateFilter, TextFilter

from kequn.labels import get_code_label

CHOICES_CACHE_SECONDS = 600


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

    def normalize(self, value: str) -> Any:
        """Return the typed value in stored form (as typed here)."""
        return value

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        """Keep rows whose column equals the typed value."""
        value = (self.value() or "").strip()
        if not value:
            return queryset
        return queryset.filter(**{self.field_name: self.normalize(value)})


class DistinctValuesFilter(DropdownFilter):
    """A dropdown of the distinct values of one column, cached for a few minutes."""

    field_name = ""
    # Bounds the scan on very large tables: values seen in the most recent rows are offered.
    sample_size: int | None = None

    def normalize(self, value: str) -> Any:
        """Return the chosen value in stored form (as chosen here)."""
        return value

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
            return queryset.filter(**{self.field_name: self.normalize(self.value())})
        return queryset


def make_distinct_filter(
    field_name: str,
    title: Any,
    sample_size: int | None = None,
    base: type[DistinctValuesFilter] = DistinctValuesFilter,
) -> type[DistinctValuesFilter]:
    """Build a dropdown filter over the distinct values of one column."""
    return type(
        f"{field_name.title()}DistinctFilter",
        (base,),
        {
            "field_name": field_name,
            "parameter_name": field_name,
            "title": title,
            "sample_size": sample_size,
        },
    )


def make_exact_text_filter(
    field_name: str, title: Any, base: type[ExactTextFilter] = ExactTextFilter
) -> type[ExactTextFilter]:
    """Build an exact-match text filter for one column."""
    return type(
        f"{field_name.title()}ExactFilter",
        (base,),
        {"field_name": field_name, "parameter_name": field_name, "title": title},
    )
