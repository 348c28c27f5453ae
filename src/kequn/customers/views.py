"""The customer 360 page: one customer's profile, identities, consents, tags, orders and events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.admin import ModelAdmin
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from kequn.customers.models import Consent, Customer
from kequn.customers.services import PROFILE_FIELDS, get_current_consents, get_customer_totals
from kequn.labels import get_code_label
from kequn.recommend.reasons import get_reason_label
from kequn.recommend.services import get_recommendations_for_customer
from kequn.security.masking import (
    BIRTHDAY,
    FIELD_GROUPS,
    get_unmasked_groups,
    mask_addresses,
    mask_birthday,
    mask_identities,
)
from kequn.security.permissions import record_personal_view, scope_customers

# The timelines show the latest rows only; the full history is one click away in the lists.
RECENT_ORDERS = 20
RECENT_EVENTS = 30


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


def get_recent_orders(customer: Customer) -> list[Any]:
    """Return the latest orders with their channel, lines and products."""
    from kequn.commerce.models import Order, OrderLine

    lines = OrderLine.objects.select_related("product").order_by("id")
    return list(
        Order.objects.filter(customer=customer)
        .select_related("channel")
        .prefetch_related(Prefetch("lines", queryset=lines))
        .order_by("-ordered_at", "-id")[:RECENT_ORDERS]
    )


def get_recent_events(customer: Customer) -> list[Any]:
    """Return the latest behavioural events."""
    from kequn.events.models import Event

    events = list(
        Event.objects.filter(customer=customer).order_by("-occurred_at", "-id")[:RECENT_EVENTS]
    )
    for event in events:
        event.name_label = get_code_label(event.name)
        event.channel_label = get_code_label(event.channel)
    return events


def get_score_context(customer: Customer) -> dict[str, Any]:
    """Return the latest value scores, churn reasons in the user's language, stage history."""
    from kequn.scoring.models import CustomerScore, StageChange

    score = CustomerScore.objects.filter(customer=customer).first()
    reasons: list[str] = []
    if score and isinstance(score.churn_reasons, dict):
        language = "zh-hans" if get_language().lower().startswith("zh") else "en"
        found = score.churn_reasons.get(language) or []
        reasons = [found] if isinstance(found, str) else list(found)
    return {
        "score": score,
        # BG/NBD and Gamma-Gamma learn nothing about a customer from a single purchase: their
        # P(alive) is 1 and their expected order value the average of all customers, which
        # would contradict a churned stage and the one order shown beside them.
        "one_time_buyer": bool(score and (score.orders or 0) <= 1),
        "churn_risk_percent": score.churn_risk * 100
        if score and score.churn_risk is not None
        else None,
        "churn_reasons": [r for r in reasons if r],
        "stage_changes": list(
            StageChange.objects.filter(customer=customer).order_by("-changed_at", "-id")[:10]
        ),
    }


def build_360_context(
    customer: Customer, unmasked: frozenset[str] = frozenset(FIELD_GROUPS)
) -> dict[str, Any]:
    """Gather everything the 360 page shows, in a fixed number of queries.

    unmasked: the personal field groups the viewer may see (kequn.security.masking).
    """
    current_consents, consent_history = get_consent_rows(customer)
    orders = get_recent_orders(customer)
    events = get_recent_events(customer)
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
        "totals": get_customer_totals(customer),
        "orders": orders,
        "orders_more": len(orders) == RECENT_ORDERS,
        "events": events,
        "events_more": len(events) == RECENT_EVENTS,
        "orders_url": reverse("admin:commerce_order_changelist") + f"?customer={customer.pk}",
        "events_url": reverse("admin:events_event_changelist") + f"?customer={customer.pk}",
        "change_url": reverse("admin:customers_customer_change", args=[customer.pk]),
        "merged_into": customer.merged_into,
        **get_score_context(customer),
        "recommendations": get_recommendation_rows(customer),
    }


def get_recommendation_rows(customer: Customer) -> list[dict[str, Any]]:
    """Return the customer's recommendations, each with its reason in the user's language."""
    rows = get_recommendations_for_customer(customer.pk)
    for row in rows:
        row["reason"] = get_reason_label(row.get("source", ""))
    return rows


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
