"""Feedback: the public survey answer and opt-out pages (outside the admin, no login)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from kequn.feedback import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("s/<str:token>/", views.answer_view, name="feedback-answer"),
    path("s/<str:token>/opt-out/", views.opt_out_view, name="feedback-opt-out"),
]
