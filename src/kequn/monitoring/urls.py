"""Monitoring: pages outside the admin site (kequn.urls includes them at the root)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from kequn.monitoring import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("metrics", views.metrics_view, name="metrics"),
    path("readyz", views.readyz, name="readyz"),
]
