"""What a user may learn through segments: counts of visible customers, rules within their rights.

A count is an answer about customers: a sales rep who sees only their own accounts gets counts
of those accounts, or one question at a time ("phone = X and city = Y: 1 or 0?") would reveal
other reps' customers. Birth year and age are part of the birthday: a user who sees birthdays
masked may not ask about them in a rule either, or "birth_year = 1990: 1 or 0?" would unmask it.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _

from kequn.customers.models import Customer
from kequn.security.masking import BIRTHDAY, get_unmasked_groups
from kequn.security.permissions import can_view_all_customers, scope_customers
from kequn.segments import services

BIRTHDAY_FIELDS = frozenset({"age", "birth_year"})
MAX_DEPTH = 20  # segment references followed; validation refuses cycles already


def find_birthday_conditions(rule: Any, depth: int = 0, seen: frozenset[int] = frozenset()) -> bool:
    """Return whether a rule (or a dynamic segment it refers to) asks about birth year or age."""
    if not isinstance(rule, dict) or depth > MAX_DEPTH:
        return False
    for child in rule.get("conditions") or []:
        if not isinstance(child, dict):
            continue
        if "conditions" in child:
            if find_birthday_conditions(child, depth + 1, seen):
                return True
        elif isinstance(child.get("field"), str) and child["field"] in BIRTHDAY_FIELDS:
            return True
        elif child.get("field") == "in_segment" and isinstance(child.get("value"), int):
            ref = child["value"]
            found = None if ref in seen else services.lookup_segment(ref)
            if found and found[1] and find_birthday_conditions(found[0], depth + 1, seen | {ref}):
                return True
    return False


def check_rule_access(user: Any, rule: Any) -> None:
    """Raise PermissionDenied if the rule asks about birthdays the user may not see."""
    if user is None or BIRTHDAY in get_unmasked_groups(user):
        return
    if find_birthday_conditions(rule):
        raise PermissionDenied(
            _(
                "rules: age and birth_year are part of the birthday, which you may not see; "
                "use age_band, or ask a user who may see birthdays"
            )
        )


def count_visible_members(user: Any, segment: Any) -> int:
    """Return the segment's member count as the user may know it (own accounts only, if so)."""
    if user is None or can_view_all_customers(user):
        return segment.member_count
    members = Customer.objects.filter(segment_memberships__segment=segment)
    return scope_customers(user, members).count()


def count_visible_matches(user: Any, rule: Any, segment_id: int | None = None) -> int:
    """Validate a rule and count the customers matching it that the user may see."""
    check_rule_access(user, rule)
    if user is None or can_view_all_customers(user):
        return services.count_rule(rule, segment_id)
    services.check_rule(rule, segment_id)
    return scope_customers(user, services.select_rule_members(rule)).count()
