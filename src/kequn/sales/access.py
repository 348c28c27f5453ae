"""Who sees which accounts, deals, activities and tasks: a rep their own, a manager the team's.

A user who may see every customer (customers.view_all_customers) sees every sales row. Anyone
else sees the rows owned by themselves and, when they manage a team, by the members of that
team and of every team below it. Rows outside the scope answer 404, like missing ones.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from kequn.sales.models import Team
from kequn.security.permissions import can_view_all_customers


def get_managed_team_ids(user: Any) -> set[int]:
    """Return the ids of the teams the user manages and of every team below them."""
    if user is None or not getattr(user, "pk", None):
        return set()
    parents = dict(Team.objects.values_list("id", "parent_id"))
    managed = set(Team.objects.filter(manager_id=user.pk).values_list("id", flat=True))
    found = set(managed)
    changed = True
    while changed:  # walk down the hierarchy (a handful of levels)
        below = {team for team, parent in parents.items() if parent in found} - found
        changed = bool(below)
        found |= below
    return found


def get_visible_owner_ids(user: Any) -> set[int] | None:
    """Return the users whose rows this user sees (None: everybody's)."""
    if can_view_all_customers(user):
        return None
    if user is None or not getattr(user, "pk", None):
        return set()
    owners = {user.pk}
    teams = get_managed_team_ids(user)
    if teams:
        owners |= set(
            Team.members.through.objects.filter(team_id__in=teams).values_list("user_id", flat=True)
        )
    return owners


def scope_owned(user: Any, queryset: QuerySet, path: str = "owner") -> QuerySet:
    """Return the rows whose owner (at `path`) the user may see."""
    owners = get_visible_owner_ids(user)
    if owners is None:
        return queryset
    return queryset.filter(**{f"{path}__in": owners})


def scope_accounts(user: Any, queryset: QuerySet, path: str = "") -> QuerySet:
    """Return the customers (or rows of customers at `path`) owned in the user's scope."""
    return scope_owned(user, queryset, f"{path}__owner" if path else "owner")


def scope_activities(user: Any, queryset: QuerySet) -> QuerySet:
    """Return the activities the user sees: their scope's own, or on their scope's accounts."""
    owners = get_visible_owner_ids(user)
    if owners is None:
        return queryset
    return queryset.filter(Q(owner__in=owners) | Q(account__owner__in=owners))


def is_owner_visible(user: Any, owner_id: int | None) -> bool:
    """Return whether rows owned by owner_id are in the user's scope."""
    owners = get_visible_owner_ids(user)
    return owners is None or (owner_id is not None and owner_id in owners)
