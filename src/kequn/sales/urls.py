"""Sales: pages outside the admin site (kequn.urls includes them at the root)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from kequn.sales import views

app_name = "sales"

urlpatterns: list[URLPattern | URLResolver] = [
    path("sales/calendar/", views.calendar_page, name="calendar"),
    path("sales/calendar/<str:token>.ics", views.calendar_feed, name="calendar_feed"),
]
