"""Back office for customers: lists that stay fast at a million rows, and the customer 360 page.

filters: the list's filters and search; inlines: the customer form's tabs; customer: the
customer list, form and 360 page; records: identities, tags and tag groups; base: saving
through the services.
"""

from kequn.customers.admin.customer import CustomerAdmin
from kequn.customers.admin.filters import (
    DistinctValuesFilter,
    EstimatedCountPaginator,
    ExactTextFilter,
    filter_by_purchases,
    get_identity_match,
    make_distinct_filter,
    make_exact_text_filter,
    search_customers,
)
from kequn.customers.admin.records import IdentityAdmin, TagAdmin, TagGroupAdmin

__all__ = [
    "CustomerAdmin",
    "DistinctValuesFilter",
    "EstimatedCountPaginator",
    "ExactTextFilter",
    "IdentityAdmin",
    "TagAdmin",
    "TagGroupAdmin",
    "filter_by_purchases",
    "get_identity_match",
    "make_distinct_filter",
    "make_exact_text_filter",
    "search_customers",
]
