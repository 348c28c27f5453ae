"""Back-office saves and deletions go through the customers services, naming the user."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from kequn.customers import services as customer_services


class SavedThroughServicesMixin:
    """Admin mixin: save, delete and save inline rows with the services, by the request's user."""

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        """Save the row the form has filled in."""
        customer_services.save_record(obj, by=request.user)

    def delete_model(self, request: HttpRequest, obj: Model) -> None:
        """Delete one row."""
        customer_services.delete_record(obj, by=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Delete the selected rows, one by one so each is audited, all or none."""
        with transaction.atomic():
            for obj in queryset:
                self.delete_model(request, obj)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        """Save the rows of an inline tab (a new tag link records who added it)."""
        for instance in formset.save(commit=False):
            customer_services.save_record(instance, by=request.user)
        for instance in formset.deleted_objects:
            customer_services.delete_record(instance, by=request.user)
        formset.save_m2m()
