"""Checks the sidebar's items use: may the user open a model's list, hold these permissions."""

from __future__ import annotations

from collections.abc import Callable

from django.apps import apps
from django.contrib import admin
from django.http import HttpRequest

from kequn.security.permissions import has_permission


def can_open_list(model_label: str) -> Callable[[HttpRequest], bool]:
    """Return a check that the user may open the model's admin list (as the list itself checks)."""

    def check(request: HttpRequest) -> bool:
        model_admin = admin.site._registry.get(apps.get_model(model_label))
        return model_admin is not None and model_admin.has_view_or_change_permission(request)

    return check


def has_perms(*perms: str) -> Callable[[HttpRequest], bool]:
    """Return a check that the user holds every permission named (app_label.codename)."""

    def check(request: HttpRequest) -> bool:
        return has_permission(request.user, *perms)

    return check
