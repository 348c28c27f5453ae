"""Sidebar rules: show a user only the pages their role can open, highlight one item at a time.

settings.UNFOLD refers to these; they import the admin lazily, since settings load first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from urllib.parse import urlparse

from django.http import HttpRequest


def can_open_list(model_label: str) -> Callable[[HttpRequest], bool]:
    """Return a check that the user may open the model's admin list (as the list itself checks)."""

    def check(request: HttpRequest) -> bool:
        from django.apps import apps
        from django.contrib import admin

        model_admin = admin.site._registry.get(apps.get_model(model_label))
        return model_admin is not None and model_admin.has_view_or_change_permission(request)

    return check


def has_perms(*perms: str) -> Callable[[HttpRequest], bool]:
    """Return a check that the user holds every permission named (app_label.codename)."""

    def check(request: HttpRequest) -> bool:
        from kequn.security.permissions import has_permission

        return has_permission(request.user, *perms)

    return check


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


def highlight_one_item(navigation: list[dict]) -> list[dict]:
    """Give every sidebar item an `active` callback so that only the best match is active."""
    items = [item for group in navigation for item in group["items"]]

    def make_check(item: dict) -> Callable[[HttpRequest], bool]:
        def check(request: HttpRequest) -> bool:
            from django.urls import reverse

            links = [str(other["link"]) for other in items]
            active = find_active_link(request.path, links, home=reverse("admin:index"))
            return active == str(item["link"])

        return check

    for item in items:
        item["active"] = make_check(item)
    return navigation
