"""The customer 360 page: one customer's profile, identities, consents and tags, and the panels
other apps add to it (totals and orders, value scores, recommendations, events; see profile.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.admin import ModelAdmin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _

from kequn.customers.models import Consent, Customer
from kequn.customers.profile import build_panel_context
from kequn.customers.services import PROFILE_FIELDS, get_current_consents
from kequn.labels import get_code_label
from kequn.security.masking import (
    BIRTHDAY,
    FIELD_GROUPS,
    get_unmasked_groups,
    mask_addresses,
    mask_birthday,
    mask_identities,
)
from kequn.security.permissions import record_personal_view, scope_customers


def get_profile_rows(
    customer: Customer, unmasked: frozenset[str] = frozenset(FIELD_GROUPS)
) -> list[tuple[str, Any]]:
    """Return (label, display value) for every profile field (the birthday masked by role)."""
    rows: list[tuple[str, Any]] = [(_("customer id"), customer.pk)]
    for name in (*PROFILE_FIELDS, "created_at", "updated_at"):
        field = customer._meta.get_field(name)
        display = getattr(customer, f"get_{name}_display", None)
        value = display() if field.choices and display else getattr(customer, name)
        if name == "source_channel":
            value = get_code_label(value)
        if name == BIRTHDAY and BIRTHDAY not in unmasked:
            value = mask_birthday(value)
        rows.append((str(field.verbose_name), value))
    return rows


def get_consent_rows(customer: Customer) -> tuple[list[Consent], list[Consent]]:
    """Return the consents in force (one per channel and purpose) and the whole history."""
    current = sorted(get_current_consents(customer).values(), key=lambda c: (c.channel, c.purpose))
    history = list(customer.consents.order_by("-recorded_at", "-id"))
    return current, history


def build_360_context(
    customer: Customer, unmasked: frozenset[str] = frozenset(FIELD_GROUPS)
) -> dict[str, Any]:
    """Gather everything the 360 page shows, in a fixed number of queries.

    unmasked: the personal field groups the viewer may see (kequn.security.masking).
    """
    current_consents, consent_history = get_consent_rows(customer)
    return {
        "customer": customer,
        "profile_rows": get_profile_rows(customer, unmasked),
        # Sorted here: the stored values are ciphertext, whose order means nothing.
        "identities": mask_identities(
            unmasked,
            sorted(customer.identities.all(), key=lambda i: (i.kind, i.system, i.value)),
        ),
        "current_consents": current_consents,
        "consent_history": consent_history,
        "tag_links": list(
            customer.tag_links.select_related("tag__group", "added_by").order_by("-added_at")
        ),
        "addresses": mask_addresses(unmasked, customer.addresses.order_by("-is_default", "id")),
        "contacts": list(customer.contact_links.select_related("contact").order_by("id")),
        "companies": list(customer.company_links.select_related("company").order_by("id")),
        "change_url": reverse("admin:customers_customer_change", args=[customer.pk]),
        "merged_into": customer.merged_into,
        # Totals, scores, recommendations, orders and events: the panels of the apps above.
        **build_panel_context(customer),
    }


def customer_360_view(model_admin: ModelAdmin) -> Callable[..., HttpResponse]:
    """Build the admin view showing one customer's 360 page."""

    def view(request: HttpRequest, object_id: int) -> HttpResponse:
        """Render the 360 page of one customer."""
        if not model_admin.has_view_permission(request):
            raise PermissionDenied
        # Another sales rep's customer is a 404, like one that does not exist.
        customers = scope_customers(request.user, Customer.objects.select_related("merged_into"))
        customer = get_object_or_404(customers, pk=object_id)
        if customer is None:
            raise Http404
        unmasked = get_unmasked_groups(request.user)
        context = {
            **model_admin.admin_site.each_context(request),
            "opts": model_admin.model._meta,
            "title": _("Customer 360: %(name)s") % {"name": customer},
            "subtitle": None,
            "has_change_permission": model_admin.has_change_permission(request, customer),
            **build_360_context(customer, unmasked),
        }
        record_personal_view(request.user, [customer.pk], via="360", groups=unmasked)
        return TemplateResponse(request, "admin/customers/customer_360.html", context)

    return view
