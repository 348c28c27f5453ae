"""Reads of the golden record shared by the importers and event collection."""

from __future__ import annotations

from kequn.customers.models import Identity

# Values per IN list: well under SQLite's bound parameters, and short PostgreSQL plans.
BATCH = 5000


def find_identity_owners(keys: set[tuple[str, str, str]]) -> dict[tuple[str, str, str], int]:
    """Return the surviving customer id owning each known (kind, system, value) identity key."""
    owners: dict[tuple[str, str, str], int] = {}
    values = list({v for _k, _s, v in keys})
    for start in range(0, len(values), BATCH):
        rows = Identity.objects.with_values(values[start : start + BATCH]).values_list(
            "kind", "system", "value", "customer_id", "customer__merged_into_id"
        )
        for kind, system, value, customer_id, merged_into in rows:
            if (kind, system, value) in keys:
                owners[(kind, system, value)] = merged_into or customer_id
    return owners
