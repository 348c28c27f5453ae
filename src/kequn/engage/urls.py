"""Engagement: pages outside the admin site (kequn.urls includes them at the root)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from kequn.engage import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("unsubscribe/<str:token>/", views.unsubscribe_view, name="engage-unsubscribe"),
]
