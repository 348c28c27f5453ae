"""Service: pages outside the admin site (kequn.urls includes them at the root)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
