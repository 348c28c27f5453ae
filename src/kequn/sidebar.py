"""The back office's sidebar: its items, who may see each, and one highlighted item at a time.

settings.UNFOLD names build_navigation by its dotted path, so settings (loaded first, at the
bottom of the layers) never import this module or the admin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlparse

from django.http import HttpRequest
from django.urls import get_script_prefix, reverse, reverse_lazy
from django.utils.translation import gettext_lazy as _

from kequn.engage import navigation as engage_navigation
from kequn.feedback import navigation as feedback_navigation
from kequn.journeys import navigation as journeys_navigation
from kequn.loyalty import navigation as loyalty_navigation
from kequn.monitoring import navigation as monitoring_navigation
from kequn.sales import navigation as sales_navigation
from kequn.security.menu import can_open_list, has_perms
from kequn.service import navigation as service_navigation

# The second half's apps declare their own groups; they come before Administration.
APP_NAVIGATIONS = (
    engage_navigation,
    journeys_navigation,
    loyalty_navigation,
    service_navigation,
    feedback_navigation,
    sales_navigation,
    monitoring_navigation,
)


def find_active_link(path: str, links: Iterable[str], home: str = "/admin/") -> str | None:
    """Return the link the page at path belongs to: the longest link that prefixes it.

    unfold marks every item whose link is a prefix of the page, so "Segments" and "Tag
    customers in bulk" (a page below it) were highlighted together. The home page (the
    dashboard) is a prefix of every page: it matches only itself.
    """
    best = None
    for link in links:
        link_path = urlparse(link).path
        below = link_path.endswith("/") and link_path != home and path.startswith(link_path)
        longer = best is None or len(link_path) > len(urlparse(best).path)
        if (path == link_path or below) and longer:
            best = link
    return best


# The request attribute holding the page's active sidebar link, found once per request.
ACTIVE_LINK = "_kequn_sidebar_active_link"


def highlight_one_item(navigation: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give every sidebar item an `active` callback so that only the best match is active."""
    items = [item for group in navigation for item in group["items"]]
    # The items' links, resolved once per script prefix (the only part of a link that can
    # change while the process runs): a reverse() per item on every page cost 6 ms.
    resolved: dict[str, list[str]] = {}

    def get_links() -> list[str]:
        prefix = get_script_prefix()
        if prefix not in resolved:
            resolved[prefix] = [str(item["link"]) for item in items]
        return resolved[prefix]

    def active_link(request: HttpRequest) -> str | None:
        # Once per request, not once per item: resolving every item's link for each of
        # them cost thousands of reverse() calls, a quarter of a second, on every page.
        if not hasattr(request, ACTIVE_LINK):
            found = find_active_link(request.path, get_links(), home=reverse("admin:index"))
            setattr(request, ACTIVE_LINK, found)
        active: str | None = getattr(request, ACTIVE_LINK)
        return active

    def make_check(index: int) -> Callable[[HttpRequest], bool]:
        def check(request: HttpRequest) -> bool:
            return active_link(request) == get_links()[index]

        return check

    for index, item in enumerate(items):
        item["active"] = make_check(index)
    return navigation


NAVIGATION: list[dict[str, Any]] = [
    {
        "title": _("Overview"),
        "items": [
            {
                "title": _("Dashboard"),
                "icon": "dashboard",
                "link": reverse_lazy("admin:index"),
            },
            {
                "title": _("Reports"),
                "icon": "summarize",
                "link": reverse_lazy("dashboard:reports"),
                "permission": has_perms("dashboard.view_dashboard"),
            },
        ],
    },
    {
        "title": _("Customers"),
        "separator": True,
        "items": [
            {
                "title": _("Customers"),
                "icon": "person",
                "link": reverse_lazy("admin:customers_customer_changelist"),
                "permission": can_open_list("customers.customer"),
            },
            {
                "title": _("Identities"),
                "icon": "badge",
                "link": reverse_lazy("admin:customers_identity_changelist"),
                "permission": can_open_list("customers.identity"),
            },
            {
                "title": _("Tags"),
                "icon": "sell",
                "link": reverse_lazy("admin:customers_tag_changelist"),
                "permission": can_open_list("customers.tag"),
            },
            {
                "title": _("Tag groups"),
                "icon": "folder",
                "link": reverse_lazy("admin:customers_taggroup_changelist"),
                "permission": can_open_list("customers.taggroup"),
            },
        ],
    },
    {
        "title": _("Commerce"),
        "separator": True,
        "items": [
            {
                "title": _("Orders"),
                "icon": "shopping_cart",
                "link": reverse_lazy("admin:commerce_order_changelist"),
                "permission": can_open_list("commerce.order"),
            },
            {
                "title": _("Products"),
                "icon": "inventory_2",
                "link": reverse_lazy("admin:commerce_product_changelist"),
                "permission": can_open_list("commerce.product"),
            },
            {
                "title": _("Categories"),
                "icon": "account_tree",
                "link": reverse_lazy("admin:commerce_category_changelist"),
                "permission": can_open_list("commerce.category"),
            },
            {
                "title": _("Stores and channels"),
                "icon": "storefront",
                "link": reverse_lazy("admin:commerce_channel_changelist"),
                "permission": can_open_list("commerce.channel"),
            },
        ],
    },
    {
        "title": _("Data import"),
        "separator": True,
        "items": [
            {
                "title": _("Import a file"),
                "icon": "upload_file",
                "link": reverse_lazy("admin:ingest_upload"),
                "permission": has_perms("ingest.add_importrun"),
            },
            {
                "title": _("Import runs"),
                "icon": "history",
                "link": reverse_lazy("admin:ingest_importrun_changelist"),
                "permission": can_open_list("ingest.importrun"),
            },
            {
                "title": _("Quarantine"),
                "icon": "report",
                "link": reverse_lazy("admin:ingest_quarantinedrow_changelist"),
                "permission": can_open_list("ingest.quarantinedrow"),
            },
            {
                "title": _("Review queue"),
                "icon": "compare_arrows",
                "link": reverse_lazy("admin:ingest_matchcandidate_changelist"),
                "permission": can_open_list("ingest.matchcandidate"),
            },
            {
                "title": _("Merges"),
                "icon": "merge",
                "link": reverse_lazy("admin:ingest_merge_changelist"),
                "permission": can_open_list("ingest.merge"),
            },
        ],
    },
    {
        "title": _("Behaviour"),
        "separator": True,
        "items": [
            {
                "title": _("Events"),
                "icon": "timeline",
                "link": reverse_lazy("admin:events_event_changelist"),
                "permission": can_open_list("events.event"),
            },
            {
                "title": _("Event sources"),
                "icon": "key",
                "link": reverse_lazy("admin:events_source_changelist"),
                "permission": can_open_list("events.source"),
            },
        ],
    },
    {
        "title": _("Segments"),
        "separator": True,
        "items": [
            {
                "title": _("Segments"),
                "icon": "filter_alt",
                "link": reverse_lazy("admin:segments_segment_changelist"),
                "permission": can_open_list("segments.segment"),
            },
            {
                "title": _("Tag rules"),
                "icon": "label",
                "link": reverse_lazy("admin:segments_tagrule_changelist"),
                "permission": can_open_list("segments.tagrule"),
            },
            {
                "title": _("Tag customers in bulk"),
                "icon": "new_label",
                "link": reverse_lazy("admin:segments_tag_customers"),
                "permission": has_perms("customers.add_customertag"),
            },
            {
                "title": _("Personas"),
                "icon": "diversity_3",
                "link": reverse_lazy("admin:segments_persona_changelist"),
                "permission": can_open_list("segments.persona"),
            },
            {
                "title": _("Recommendations"),
                "icon": "recommend",
                "link": reverse_lazy("admin:recommend_recommendation_changelist"),
                "permission": can_open_list("recommend.recommendation"),
            },
        ],
    },
    *(group for navigation in APP_NAVIGATIONS for group in navigation.GROUPS),
    {
        "title": _("Administration"),
        "separator": True,
        "items": [
            {
                "title": _("Users"),
                "icon": "manage_accounts",
                "link": reverse_lazy("admin:auth_user_changelist"),
                "permission": can_open_list("auth.user"),
            },
            {
                "title": _("Roles"),
                "icon": "shield_person",
                "link": reverse_lazy("admin:auth_group_changelist"),
                "permission": can_open_list("auth.group"),
            },
            {
                "title": _("Data-subject requests"),
                "icon": "privacy_tip",
                "link": reverse_lazy("admin:privacy_privacyrequest_changelist"),
                "permission": can_open_list("privacy.privacyrequest"),
                "badge": "kequn.privacy.admin.overdue_badge",
            },
            {
                "title": _("Suppression list"),
                "icon": "person_off",
                "link": reverse_lazy("admin:privacy_suppression_changelist"),
                "permission": can_open_list("privacy.suppression"),
            },
            {
                "title": _("Audit trail"),
                "icon": "history_edu",
                "link": reverse_lazy("admin:audit_auditentry_changelist"),
                "permission": can_open_list("audit.auditentry"),
            },
            {
                "title": _("API tokens"),
                "icon": "key",
                "link": reverse_lazy("admin:security_apitoken_changelist"),
                "permission": can_open_list("security.apitoken"),
            },
            {
                "title": _("API documentation"),
                "icon": "api",
                "link": "/api/docs",
            },
        ],
    },
]
highlight_one_item(NAVIGATION)


def build_navigation(request: HttpRequest) -> list[dict[str, Any]]:
    """Return the sidebar groups (unfold drops the items the user may not open)."""
    return NAVIGATION
