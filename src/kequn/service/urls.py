"""Service: pages outside the admin site (kequn.urls includes them at the root)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from kequn.service import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("contact/", views.contact_view, name="service-contact"),
]
