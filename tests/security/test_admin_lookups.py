"""Back-office lists take only their declared filters; bad ids and dates are no 500.

Walks every ModelAdmin registered on the site, so a list added later is covered too.
"""

from __future__ import annotations

import time

import pytest
from django.contrib import admin
from django.db import models
from django.urls import NoReverseMatch, reverse

from tests.factories import make_customer

pytestmark = pytest.mark.django_db

CATASTROPHIC = "^(a+)+$"


@pytest.fixture(autouse=True)
def no_lockout_bookkeeping(settings):
    """Skip django-axes here: force_login has no client address."""
    settings.AXES_ENABLED = False


def registered_admins() -> list[tuple[str, admin.ModelAdmin]]:
    """Return (url name prefix, model admin) of every list on the site."""
    return [
        (f"admin:{model._meta.app_label}_{model._meta.model_name}", model_admin)
        for model, model_admin in admin.site._registry.items()
    ]


def first_text_field(model) -> str | None:
    """Return a text column of the model (the target of a regex lookup), or None."""
    for field in model._meta.concrete_fields:
        if isinstance(field, models.CharField | models.TextField):
            return field.name
    return None


@pytest.mark.parametrize(
    ("prefix", "model_admin"), registered_admins(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_list_refuses_undeclared_lookups(admin_client, prefix, model_admin):
    url = reverse(f"{prefix}_changelist")  # every registered admin has a change list
    assert admin_client.get(url).status_code == 200
    if model_admin.search_fields:
        assert admin_client.get(url, {"q": "a" * 24}).status_code == 200
    text = first_text_field(model_admin.model)
    attempts = [{"pk__gt": "0"}, {"id__in": "1,2"}, {"nonexistent__regex": "x"}]
    if text:
        attempts += [{f"{text}__regex": CATASTROPHIC}, {f"{text}__iregex": "(a|a)*b"}]
    for params in attempts:
        response = admin_client.get(url, params)
        assert response.status_code == 400, (url, params, response.status_code)


def test_a_catastrophic_regex_is_never_run(admin_client):
    make_customer(name="a" * 30 + "!")
    url = reverse("admin:customers_customer_changelist")
    started = time.perf_counter()
    response = admin_client.get(url, {"name__regex": CATASTROPHIC})
    assert response.status_code == 400
    # Run, the regex would take minutes on this name (1.8 s at 24 characters, doubling).
    assert time.perf_counter() - started < 5.0


def test_declared_filters_still_work(admin_client):
    alice = make_customer(name="Alice Wang", city="Shenzhen")
    make_customer(name="Bob Li", city="Beijing")
    html = admin_client.get(
        reverse("admin:customers_customer_changelist"), {"city": "Shenzhen"}
    ).content.decode()
    assert "Alice Wang" in html and "Bob Li" not in html
    orders = reverse("admin:commerce_order_changelist")
    assert admin_client.get(orders, {"customer": str(alice.pk)}).status_code == 200


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31"])
@pytest.mark.parametrize(
    ("name", "param"),
    [
        ("customers_customer", "created_at"),
        ("commerce_order", "ordered_at"),
        ("events_event", "occurred_at"),
    ],
)
def test_extreme_dates_in_admin_date_filters_are_no_server_error(admin_client, name, param, day):
    make_customer(name="Someone")
    url = reverse(f"admin:{name}_changelist")
    for params in ({f"{param}_from": day}, {f"{param}_to": day}):
        response = admin_client.get(url, params)
        assert response.status_code in (200, 302, 400), (name, params, response.status_code)


@pytest.mark.parametrize("object_id", [2**63, 10**30])
def test_ids_above_the_64_bit_range_in_admin_urls_are_not_found(admin_client, object_id):
    for prefix, _model_admin in registered_admins():
        try:
            url = reverse(f"{prefix}_change", args=[object_id])
        except NoReverseMatch:
            continue
        response = admin_client.get(url)
        # Django answers a missing object with a redirect to the list and a message.
        assert response.status_code in (302, 404), (url, response.status_code)
