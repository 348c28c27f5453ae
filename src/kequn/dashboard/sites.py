"""The back office's admin site: unfold's, without building the unused app list on every page.

Django's admin adds every registered model, with four permission checks and a link each
(available_apps), to the context of every page; unfold shows that list only when its
sidebar shows all applications, which Kequn's does not (its sidebar is kequn.sidebar). The
list is now built when a page reads it (the app index, unfold's search), about 5 ms a page.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin import sites
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject
from unfold.apps import BasicAppConfig
from unfold.sites import UnfoldAdminSite


class KequnAdminSite(UnfoldAdminSite):
    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> Any:
        """Return the apps and models the user may see, built when first read."""
        build = super().get_app_list
        return SimpleLazyObject(lambda: build(request, app_label))


class UnfoldConfig(BasicAppConfig):
    """unfold's app (its templates and static files) with Kequn's admin site as the site."""

    def ready(self) -> None:
        site = KequnAdminSite()
        admin.site = site
        sites.site = site
