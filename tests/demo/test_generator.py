"""The demo data generator: tables, relationships, determinism, behaviour patterns."""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Count, F, Sum

from kequn.commerce.models import Category, Channel, Order, OrderLine, Product
from kequn.customers.identities import normalize_email, normalize_phone
from kequn.customers.models import (
    Address,
    CompanyContact,
    Consent,
    Customer,
    CustomerTag,
    Identity,
)
from kequn.demo.generator import generate_demo_data, has_demo_data
from kequn.events.models import Event

TODAY = date(2026, 11, 20)
N = 200

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def demo(tmp_path):
    """Generate the small demo set once per test and return its summary."""
    return generate_demo_data(N, seed=7, today=TODAY, progress=False, truth_dir=tmp_path)


def hash_rows(model, fields: list[str]) -> str:
    """Hash all rows of a model ordered by id, ids included."""
    digest = hashlib.sha256()
    for row in model.objects.order_by("id").values_list("id", *fields):
        digest.update(repr(row).encode())
    return digest.hexdigest()


def hash_database() -> dict[str, str]:
    """Hash every generated table."""
    return {
        "customer": hash_rows(
            Customer, ["name", "kind", "gender", "birthday", "city", "created_at"]
        ),
        "identity": hash_rows(Identity, ["customer_id", "kind", "system", "value"]),
        "order": hash_rows(
            Order, ["number", "customer_id", "status", "total_amount", "ordered_at"]
        ),
        "line": hash_rows(OrderLine, ["order_id", "product_id", "quantity", "amount"]),
        "event": hash_rows(Event, ["name", "customer_id", "occurred_at", "properties"]),
        "consent": hash_rows(Consent, ["customer_id", "channel", "granted", "recorded_at"]),
    }


def reset_demo_tables() -> None:
    """Empty the generated tables (reference tables stay) so ids start from 1 again."""
    for model in (
        Event,
        OrderLine,
        Order,
        CustomerTag,
        CompanyContact,
        Consent,
        Address,
        Identity,
        Customer,
    ):
        model.objects.all().delete()
    if connection.vendor == "sqlite":
        with connection.cursor() as cur:
            cur.execute("DELETE FROM sqlite_sequence")


def test_summary_matches_tables(demo):
    assert has_demo_data()
    assert demo.customers == Customer.objects.count() == N
    assert demo.orders == Order.objects.count()
    assert demo.order_lines == OrderLine.objects.count()
    assert demo.events == Event.objects.count()
    assert demo.identities == Identity.objects.count()
    assert demo.products == Product.objects.count() >= 130
    assert Channel.objects.filter(kind="store").count() >= 15
    assert Category.objects.filter(parent__isnull=True).count() == 5
    assert 6 <= demo.orders / N <= 14
    assert 1.3 <= demo.order_lines / demo.orders <= 2.0


def test_order_amounts_add_up(demo):
    bad = (
        Order.objects.annotate(lines_sum=Sum("lines__amount"))
        .exclude(lines_sum=F("total_amount") + F("discount_amount"))
        .count()
    )
    assert bad == 0
    assert not Order.objects.filter(lines__isnull=True).exists()
    for line in OrderLine.objects.all()[:300]:
        assert line.amount == line.unit_price * line.quantity
    assert Order.objects.filter(discount_amount__gt=0).exists()
    statuses = set(Order.objects.values_list("status", flat=True))
    assert {"completed", "cancelled", "refunded"} <= statuses


def test_identities_are_normalised_and_unique(demo):
    phones = list(Identity.objects.filter(kind="phone").values_list("value", flat=True))
    emails = list(Identity.objects.filter(kind="email").values_list("value", flat=True))
    assert len(phones) > N * 0.8 and len(emails) > N * 0.6
    assert all(normalize_phone(p) == p for p in phones)
    assert all(normalize_email(e) == e for e in emails)
    assert any(p.startswith("+861") for p in phones)
    externals = Identity.objects.filter(kind="external", system="demo")
    assert externals.count() == N
    # Every customer has exactly one demo external id.
    assert externals.values("customer").distinct().count() == N


def test_companies_have_person_contacts(demo):
    companies = Customer.objects.filter(kind="company")
    assert demo.companies == companies.count() > 0
    links = CompanyContact.objects.select_related("company", "contact")
    assert links.exists()
    for link in links:
        assert link.company.kind == "company"
        assert link.contact.kind == "person"
    per_company = Counter(links.values_list("company_id", flat=True))
    assert set(per_company.values()) <= {1, 2, 3, 4}
    assert sum(link.is_primary for link in links) == len(per_company)
    assert all(c.name.endswith(("有限公司", "Ltd.", "Bhd.", "Limited")) for c in companies)


def test_consent_history_and_profiles(demo):
    per_key = Counter(Consent.objects.values_list("customer_id", "channel", "purpose"))
    assert max(per_key.values()) >= 2  # withdrawn later: history kept as several rows
    withdrawn = Consent.objects.filter(
        granted=False, source__in=["退订链接", "App 内撤回", "客服来电"]
    )
    for row in withdrawn[:50]:
        earlier = Consent.objects.filter(
            customer_id=row.customer_id,
            channel=row.channel,
            purpose=row.purpose,
            recorded_at__lt=row.recorded_at,
        )
        assert earlier.exists()
    assert Address.objects.filter(is_default=True).count() > N * 0.5
    assert CustomerTag.objects.values("tag__group__name").distinct().count() == 3
    persons = Customer.objects.filter(kind="person")
    assert persons.filter(birthday__isnull=True).exists()  # realistic gaps
    assert persons.filter(gender="").exists()
    assert persons.filter(city="上海").exists()
    assert persons.filter(gender__in=["m", "f"]).count() > N * 0.7


def test_behaviour_types_show_in_orders(demo, tmp_path):
    counts = Counter(dict(Customer.objects.annotate(n=Count("orders")).values_list("id", "n")))
    values = list(counts.values())
    assert sum(v >= 8 for v in values) > N * 0.15
    assert sum(v == 1 for v in values) > N * 0.15
    months = Counter(o.month for o in Order.objects.values_list("ordered_at", flat=True))
    assert months[11] > 1.5 * (sum(months.values()) / 12)
    last = Order.objects.order_by("-ordered_at").first().ordered_at
    assert last.date() < TODAY
    with (tmp_path / "demo-truth.csv").open(encoding="utf-8") as fh:
        truth = list(csv.DictReader(fh))
    assert len(truth) == N
    kinds = Counter(row["behaviour"] for row in truth)
    assert {"loyal", "one_time", "seasonal", "lapser"} <= set(kinds)


def test_events_have_properties(demo):
    viewed = Event.objects.filter(name="Product Viewed").first()
    assert viewed is not None and viewed.type == "track"
    assert {"sku", "price", "category"} <= set(viewed.properties)
    assert Event.objects.filter(customer__isnull=True).exclude(anonymous_id="").exists()
    assert Event.objects.filter(type="screen", channel="app").exists()


def test_same_seed_gives_identical_rows():
    generate_demo_data(150, seed=3, today=TODAY, progress=False, chunk_size=64)
    first = hash_database()
    reset_demo_tables()
    generate_demo_data(150, seed=3, today=TODAY, progress=False, chunk_size=64)
    assert hash_database() == first
    reset_demo_tables()
    generate_demo_data(150, seed=4, today=TODAY, progress=False, chunk_size=64)
    assert hash_database()["order"] != first["order"]


def test_second_run_appends_without_collisions():
    a = generate_demo_data(50, seed=1, today=TODAY, progress=False)
    b = generate_demo_data(50, seed=1, today=TODAY, progress=False)
    assert Customer.objects.count() == 100
    assert Order.objects.count() == a.orders + b.orders
    # The id sequences continue after the explicit ids.
    created = Customer.objects.create(name="after")
    assert created.pk > Customer.objects.exclude(pk=created.pk).order_by("-id").first().pk
    assert Decimal(0) <= Order.objects.order_by("id").first().total_amount
