"""Roles and what they may do: functions (permissions), objects (own accounts) and fields.

Each role is a Django group holding a set of permissions (ROLE_PERMISSIONS below, synchronised
by a data migration, after every migrate, and by `kequn roles sync`). Per-object checks scope
customer querysets: a user without customers.view_all_customers sees only the customers they
own (Customer.owner), and everything hanging off them (orders, events, scores,
recommendations, segment memberships). An object outside the scope answers 404, exactly like
one that does not exist, so ids cannot be probed. Per-field masking lives in
kequn.security.masking.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from typing import Any

from django.apps import apps as global_apps
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from kequn.security import roles
from kequn.security.audit.services import VIEW_PERSONAL, record_event
from kequn.security.masking import FIELD_GROUPS, UNMASK_PERMISSIONS, get_unmasked_groups

VIEW_ALL_CUSTOMERS = "customers.view_all_customers"

# Permissions that are not model defaults: (app_label, model, codename, name).
CUSTOM_PERMISSIONS: list[tuple[str, str, str, Any]] = [
    (
        "customers",
        "customer",
        "view_all_customers",
        _("Can see every customer, not only the accounts they own"),
    ),
    ("customers", "customer", "view_customer_phone", _("Can see phone numbers unmasked")),
    ("customers", "customer", "view_customer_email", _("Can see email addresses unmasked")),
    ("customers", "customer", "view_customer_address", _("Can see street addresses unmasked")),
    ("customers", "customer", "view_customer_birthday", _("Can see birthdays unmasked")),
    (
        "segments",
        "segment",
        "export_without_consent",
        _("Can export segment members for service or analysis, without the consent filter"),
    ),
]
EXPORT_WITHOUT_CONSENT = "segments.export_without_consent"
# These widen what a role sees; a wildcard never grants them, only their exact name does.
SPECIAL_PERMISSIONS = {f"{app}.{codename}" for app, _model, codename, _name in CUSTOM_PERMISSIONS}

ANALYTIC_APPS = ("commerce", "events", "scoring", "segments", "recommend", "dashboard")

# Each role's permissions as app_label.codename patterns (fnmatch); see README "Roles".
ROLE_PERMISSIONS: dict[str, list[str]] = {
    roles.ADMINISTRATOR: ["*", *sorted(SPECIAL_PERMISSIONS)],
    roles.MARKETING: [
        "customers.view_customer",
        VIEW_ALL_CUSTOMERS,
        "customers.view_identity",
        "customers.view_address",
        "customers.view_consent",
        "customers.view_companycontact",
        "customers.*_tag",
        "customers.*_taggroup",
        "customers.*_customertag",
        "commerce.view_*",
        "events.view_*",
        "scoring.view_*",
        "segments.*",
        "recommend.view_*",
        "dashboard.view_*",
        "dashboard.export_lists",
        "ingest.*",
    ],
    roles.SALES: [
        "customers.view_customer",
        "customers.add_customer",
        "customers.change_customer",
        "customers.view_identity",
        "customers.add_identity",
        "customers.change_identity",
        "customers.view_address",
        "customers.add_address",
        "customers.change_address",
        "customers.view_consent",
        "customers.add_consent",
        "customers.view_tag",
        "customers.view_taggroup",
        "customers.view_customertag",
        "customers.add_customertag",
        "customers.*_companycontact",
        *UNMASK_PERMISSIONS.values(),
        "commerce.view_order",
        "commerce.view_orderline",
        "commerce.view_product",
        "commerce.view_category",
        "commerce.view_channel",
        "events.view_event",
        "scoring.view_customerscore",
        "scoring.view_stagechange",
        "recommend.view_recommendation",
        "recommend.view_alsobought",
        "segments.view_segment",
        EXPORT_WITHOUT_CONSENT,  # follow-up of their own accounts is not marketing
    ],
    roles.SERVICE: [
        "customers.view_customer",
        VIEW_ALL_CUSTOMERS,
        "customers.change_customer",
        "customers.view_identity",
        "customers.add_identity",
        "customers.change_identity",
        "customers.view_address",
        "customers.view_consent",
        "customers.add_consent",
        "customers.view_tag",
        "customers.view_taggroup",
        "customers.*_customertag",
        "customers.view_companycontact",
        UNMASK_PERMISSIONS["phone"],
        UNMASK_PERMISSIONS["email"],
        "commerce.view_order",
        "commerce.view_orderline",
        "commerce.view_product",
        "commerce.view_category",
        "commerce.view_channel",
        "events.view_event",
        "scoring.view_customerscore",
        "recommend.view_recommendation",
        "privacy.view_privacyrequest",
        "privacy.add_privacyrequest",
        EXPORT_WITHOUT_CONSENT,
    ],
    roles.ANALYST: [
        "customers.view_*",
        VIEW_ALL_CUSTOMERS,
        *(f"{app}.view_*" for app in ANALYTIC_APPS),
        "dashboard.export_lists",
        EXPORT_WITHOUT_CONSENT,  # masked rows, for analysis
        # Quarantined rows show their personal values masked to roles without the unmasking
        # permissions; merges and the review queue stay with the roles that act on them.
        "ingest.view_importrun",
        "ingest.view_quarantinedrow",
    ],
    roles.AUDITOR: ["audit.view_auditentry"],
}


def register_role_permissions(
    grants: dict[str, list[str]],
    custom: Iterable[tuple[str, str, str, Any]] = (),
) -> None:
    """Add an app's permissions to the roles (call from the app's AppConfig.ready()).

    grants maps a role to app_label.codename patterns, as ROLE_PERMISSIONS does; custom lists
    the app's permissions that are not model defaults, (app_label, model, codename, name).
    A custom permission is granted to the administrator and only where grants name it exactly.
    """
    for app_label, model, codename, name in custom:
        if (app_label, model, codename, name) not in CUSTOM_PERMISSIONS:
            CUSTOM_PERMISSIONS.append((app_label, model, codename, name))
        perm = f"{app_label}.{codename}"
        SPECIAL_PERMISSIONS.add(perm)
        if perm not in ROLE_PERMISSIONS[roles.ADMINISTRATOR]:
            ROLE_PERMISSIONS[roles.ADMINISTRATOR].append(perm)
    for role, patterns in grants.items():
        ROLE_PERMISSIONS[role].extend(p for p in patterns if p not in ROLE_PERMISSIONS[role])


def ensure_custom_permissions(apps: Any = None) -> None:
    """Create the custom permissions (unmasking, every account) if they are missing."""
    apps = apps or global_apps
    Permission = apps.get_model("auth", "Permission")
    ContentType = apps.get_model("contenttypes", "ContentType")
    for app_label, model, codename, name in CUSTOM_PERMISSIONS:
        content_type, _created = ContentType.objects.get_or_create(app_label=app_label, model=model)
        Permission.objects.update_or_create(
            content_type=content_type, codename=codename, defaults={"name": str(name)[:255]}
        )


def select_role_permissions(role: str, available: Iterable[str]) -> set[str]:
    """Return which of the available permissions (app_label.codename) a role holds."""
    patterns = ROLE_PERMISSIONS[role]
    chosen = set()
    for perm in available:
        if perm in SPECIAL_PERMISSIONS:
            if perm in patterns:
                chosen.add(perm)
        elif any(fnmatch.fnmatchcase(perm, pattern) for pattern in patterns):
            chosen.add(perm)
    return chosen


def sync_roles(apps: Any = None) -> dict[str, int]:
    """Create or update every role group with exactly its permissions; return their counts.

    Idempotent: run it any number of times (permissions a role should no longer have are
    removed, so a group edited by hand is put back to the documented matrix).
    """
    apps = apps or global_apps
    ensure_custom_permissions(apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    by_name = {
        f"{app}.{codename}": pk
        for pk, app, codename in Permission.objects.values_list(
            "pk", "content_type__app_label", "codename"
        )
    }
    counts = {}
    for role in roles.ROLES:
        group, _created = Group.objects.get_or_create(name=role)
        wanted = {by_name[p] for p in select_role_permissions(role, by_name)}
        group.permissions.set(wanted)
        counts[role] = len(wanted)
    return counts


def sync_roles_after_migrate(sender: Any, apps: Any = None, **kwargs: Any) -> None:
    """Keep the role groups in step with the permissions after every migrate (and flush).

    post_migrate is sent once per app, and each app's default permissions are created in its
    own turn; the roles are synchronised in the last app's turn, when all of them exist.
    """
    if sender.label != list(global_apps.get_app_configs())[-1].label:
        return
    sync_roles(apps)


# --- function checks (what a user may do) ----------------------------------------------


def has_permission(user: Any, *perms: str) -> bool:
    """Return whether an active user holds every permission named (app_label.codename)."""
    if user is None or not getattr(user, "is_active", False):
        return False
    return all(user.has_perm(perm) for perm in perms)


def require_permission(user: Any, *perms: str) -> None:
    """Raise PermissionDenied naming the first permission the user lacks.

    Every write path calls this (or an admin permission that leads here): admin views and
    actions, the API, uploads, bulk tagging and privacy actions.
    """
    for perm in perms:
        if not has_permission(user, perm):
            raise PermissionDenied(perm)


def get_model_permission(model: Any, action: str) -> str:
    """Return the name of a model's default permission ("add", "change", "delete", "view")."""
    opts = model._meta
    return f"{opts.app_label}.{action}_{opts.model_name}"


# --- per-object checks ----------------------------------------------------------------


def can_view_all_customers(user: Any) -> bool:
    """Return whether the user sees every customer, not only the accounts they own."""
    return bool(
        user is not None
        and getattr(user, "is_active", False)
        and (user.is_superuser or user.has_perm(VIEW_ALL_CUSTOMERS))
    )


def get_customer_scope(user: Any, path: str = "") -> Q | None:
    """Return the condition limiting rows to the user's own customers, or None for all.

    path leads from the rows to their customer ("" for customers, "customer" for orders …).
    Rows without a customer are outside a limited scope.
    """
    if can_view_all_customers(user):
        return None
    owner = f"{path}__owner" if path else "owner"
    if user is None or not getattr(user, "pk", None):
        return Q(pk__in=[])
    return Q(**{owner: user.pk})


def scope_customers(user: Any, queryset: QuerySet, path: str = "") -> QuerySet:
    """Return the queryset limited to the customers the user may see (see get_customer_scope)."""
    condition = get_customer_scope(user, path)
    return queryset if condition is None else queryset.filter(condition)


# --- audit of unmasked personal data -----------------------------------------------------


def record_personal_view(
    user: Any, customer_ids: Iterable[int], via: str, groups: frozenset[str] | None = None
) -> None:
    """Record on the audit trail that the user was shown these customers' personal data unmasked.

    Nothing is recorded when every field was masked or no customer was shown.
    """
    groups = get_unmasked_groups(user) if groups is None else groups
    ids = sorted({int(i) for i in customer_ids})
    if not groups or not ids:
        return
    fields = [g for g in FIELD_GROUPS if g in groups]
    detail = {"via": via, "fields": fields}
    if len(ids) == 1:
        record_event(
            VIEW_PERSONAL,
            actor=user,
            target_type="customers.customer",
            target_id=str(ids[0]),
            detail=detail,
        )
    else:
        record_event(
            VIEW_PERSONAL,
            actor=user,
            target_type="customers.customer",
            detail={**detail, "customers": ids, "count": len(ids)},
        )
