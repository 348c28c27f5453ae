"""Back-office lists filter only by their declared filters, never by a lookup in the URL.

Django's change list applies any query parameter that names a field as an ORM lookup, so
`?name__regex=^(a+)+$` ran a catastrophic regular expression in the database and
`?created_at__gte=0001-01-01` overflowed the date conversion. Installed once for every
ModelAdmin: parameters that no declared list filter (or the date hierarchy) consumes are
refused with 400 Bad Request, and a filter value the database cannot take (a date in year 1,
an id above 2^63) is shown as an invalid filter rather than a server error.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.exceptions import DisallowedModelAdminLookup
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db import DataError

_INSTALLED = False


# Comparisons a declared filter field may take straight from the URL (links such as
# ?kind=company or ?channel__id__exact=3); pattern lookups (regex, contains) are not here.
SAFE_SUFFIXES = (
    "__id__exact",
    "__id__in",
    "__exact",
    "__iexact",
    "__isnull",
    "__in",
    "__gte",
    "__lte",
    "__gt",
    "__lt",
    "__id",
    "__pk",
    "",
)


def _declared_paths(change_list: ChangeList) -> set[str]:
    """Return the field paths the list declares as filters (and its date hierarchy)."""
    paths = {change_list.date_hierarchy} if change_list.date_hierarchy else set()
    for list_filter in change_list.list_filter:
        field = list_filter[0] if isinstance(list_filter, tuple | list) else list_filter
        if isinstance(field, str):
            paths.add(field)
        elif hasattr(field, "name") and not callable(field):
            paths.add(field.name)
    return paths


def _is_declared(key: str, paths: set[str]) -> bool:
    return any(
        key.endswith(suffix) and key[: len(key) - len(suffix)] in paths for suffix in SAFE_SUFFIXES
    )


def _get_filters_declared_only(self: ChangeList, request):
    filter_specs, has_filters, remaining, may_have_duplicates, has_active = _original(self, request)
    paths = _declared_paths(self)
    refused = sorted(key for key in remaining if not _is_declared(key, paths))
    if refused:
        raise DisallowedModelAdminLookup(
            f"Filtering by {', '.join(refused)} not allowed: use the filters beside the list"
        )
    return filter_specs, has_filters, remaining, may_have_duplicates, has_active


def _get_queryset_bounded(self: ChangeList, request, exclude_parameters=None):
    # Compile the query now (not while the template renders): a date in year 1 overflows
    # its conversion to UTC here and becomes "invalid filter" (?e=1) instead of a 500.
    try:
        queryset = _original_queryset(self, request, exclude_parameters)
        queryset.query.get_compiler(using=queryset.db).as_sql()
    except (EmptyResultSet, FullResultSet):
        pass
    except (OverflowError, ValueError, DataError) as exc:
        raise IncorrectLookupParameters(exc) from exc
    return queryset


def _get_object_bounded(self: admin.ModelAdmin, request, object_id, from_field=None):
    try:
        return _original_get_object(self, request, object_id, from_field)
    except OverflowError:
        # /admin/app/model/99999999999999999999/change/ is "no such object", not a 500.
        return None


_original = ChangeList.get_filters
_original_queryset = ChangeList.get_queryset
_original_get_object = admin.ModelAdmin.get_object


def install() -> None:
    """Restrict every back-office change list to its declared filters (idempotent)."""
    global _INSTALLED
    if _INSTALLED:
        return
    ChangeList.get_filters = _get_filters_declared_only
    ChangeList.get_queryset = _get_queryset_bounded
    admin.ModelAdmin.get_object = _get_object_bounded
    _INSTALLED = True
