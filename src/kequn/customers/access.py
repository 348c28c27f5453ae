"""Who may see which customer: the admin mixins and checks that scope rows to a user's customers.

They live with the customers (not in security) because they name the Customer model; security
keeps the generic scope (get_customer_scope, scope_customers) that needs no model.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin.widgets import ForeignKeyRawIdWidget
from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import QuerySet

from kequn.customers.models import Customer
from kequn.security.permissions import can_view_all_customers, scope_customers


def is_customer_visible(user: Any, customer_id: int | None) -> bool:
    """Return whether one customer is in the user's scope."""

    if customer_id is None:
        return can_view_all_customers(user)
    return scope_customers(user, Customer.objects.filter(pk=customer_id)).exists()


def claim_customer(user: AbstractBaseUser | None, customer_id: int) -> None:
    """Make a user who sees only own accounts the owner of a customer they just created.

    Without this a sales rep's new customer would vanish from their own lists at once.
    """
    if user is not None and user.pk and not can_view_all_customers(user):
        Customer.objects.filter(pk=customer_id, owner__isnull=True).update(owner=user)


class CustomerChoicesMixin:
    """Admin (or inline) mixin: customer fields offer, accept and show only visible customers.

    Foreign keys to a customer (merged_into, contact links, raw-id and autocomplete widgets)
    would otherwise accept another rep's customer by id and then display its name.
    """

    def formfield_for_foreignkey(self, db_field: Any, request: Any, **kwargs: Any) -> Any:
        """Limit a customer field's choices (and so its validation and labels) to the scope."""
        if db_field.related_model is Customer and not can_view_all_customers(request.user):
            kwargs["queryset"] = scope_customers(request.user, Customer.objects.all())
            if db_field.name in getattr(self, "raw_id_fields", ()):
                kwargs["widget"] = make_scoped_raw_id_widget(
                    db_field, self.admin_site, request.user, kwargs.get("using")
                )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


def make_scoped_raw_id_widget(db_field: Any, admin_site: Any, user: Any, using: Any) -> Any:
    """Return a raw-id widget that names a customer only when the user may see it."""

    class ScopedRawIdWidget(ForeignKeyRawIdWidget):
        def label_and_url_for_value(self, value: Any) -> tuple[str, str]:
            try:
                visible = value not in (None, "") and is_customer_visible(user, int(value))
            except (TypeError, ValueError):
                visible = False
            return super().label_and_url_for_value(value) if visible else ("", "")

    return ScopedRawIdWidget(db_field.remote_field, admin_site, using=using)


class CustomerScopedAdminMixin(CustomerChoicesMixin):
    """Admin mixin: list and open only rows of customers the user may see (others are absent).

    Set customer_path to the lookup from the model to its customer ("" for Customer itself).
    """

    customer_path = "customer"

    def get_queryset(self, request: Any) -> QuerySet:
        """Return the rows of the user's customers only."""
        return scope_customers(request.user, super().get_queryset(request), self.customer_path)
