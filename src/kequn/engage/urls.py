"""Engagement: pages outside the admin site (kequn.urls includes them at the root)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from kequn.engage import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("unsubscribe/<str:token>/", views.unsubscribe_view, name="engage-unsubscribe"),
    path("t/o/<str:token>.gif", views.open_pixel_view, name="engage-track-open"),
    path("t/c/<str:token>", views.click_view, name="engage-track-click"),
]
