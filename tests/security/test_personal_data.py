"""The personal-data registry: what an app declares is exported and erased; nothing is forgotten."""

from __future__ import annotations

import pytest
from django.core import checks

from kequn.customers.models import Address, Customer
from kequn.privacy.services import collect_customer_data, erase_customer
from kequn.recommend.models import Recommendation
from kequn.security import personal_data
from kequn.security.actors import system_actor
from kequn.security.audit.signals import customer_id_of, get_personal_models
from tests.factories import make_customer, make_order, make_product

pytestmark = pytest.mark.django_db
ACTOR = system_actor("test")


@pytest.fixture
def registry():
    """Let a test change the declarations; put them back after it."""
    personal_data.discover()
    saved = dict(personal_data._entries)
    yield personal_data
    personal_data._entries.clear()
    personal_data._entries.update(saved)


def test_every_relation_to_the_customer_is_declared():
    assert personal_data.find_undeclared() == []
    assert personal_data.get_subject_model() is Customer
    assert not [m for m in checks.run_checks() if m.id == "kequn.E020"]


def test_an_undeclared_link_to_the_customer_fails_the_check(registry):
    registry.unregister(Recommendation)
    errors = [m for m in checks.run_checks() if m.id == "kequn.E020"]
    assert [e.obj for e in errors] == [Recommendation]
    assert "recommend.Recommendation.customer" in errors[0].msg
    assert "recommend.personal_data" in errors[0].hint


def test_a_declared_table_is_exported_and_erased_without_edits_to_privacy(registry):
    person = make_customer("张伟", email="zw@example.com")
    make_order(person)
    Recommendation.objects.create(customer=person, rank=1, product=make_product(), score=0.5)
    registry.unregister(Recommendation)
    # As a new app would: its own table name, its own way to erase, counted in the result.
    registry.register(
        Recommendation,
        path="customer",
        export_as="suggestions",
        position=999,
        fields=["customer_id", "rank", "product__sku"],
        erase=personal_data.Erase.DELETE,
        erase_count="suggestions_deleted",
    )
    tables = collect_customer_data(person)
    assert list(tables)[-1] == "suggestions"
    [row] = tables["suggestions"]
    assert (row["customer_id"], row["rank"]) == (person.pk, 1)
    assert set(row) == {"customer_id", "rank", "product__sku"}
    counts = erase_customer(person, by=ACTOR)
    assert counts["suggestions_deleted"] == 1
    assert list(counts)[-2:] == ["suggestions_deleted", "rows_deleted"]
    assert not Recommendation.objects.exists()


def test_a_blanking_erasure_empties_the_declared_fields(registry):
    person = make_customer("张伟")
    Address.objects.create(customer=person, city="上海", line="南京西路 1 号")
    registry.register(
        Address,
        path="customer",
        export_as="addresses",
        position=30,
        erase=personal_data.Erase.BLANK,
        blank_fields=["line"],
        erase_count="addresses_blanked",
    )
    counts = erase_customer(person, by=ACTOR)
    assert counts["addresses_blanked"] == 1
    assert not Address.objects.exists()  # and then gone with the customer (on_delete=CASCADE)


def test_audited_models_and_their_customer_come_from_the_declarations():
    person = make_customer("张伟", email="zw@example.com")
    audited = {m._meta.label for m in get_personal_models()}
    assert audited == {
        "customers.Customer", "customers.Identity", "customers.Address", "customers.Consent",
        "customers.CustomerTag", "service.Ticket", "feedback.Response",
    }  # fmt: skip
    assert customer_id_of(person) == person.pk
    assert customer_id_of(person.identities.first()) == person.pk
    assert personal_data.get_masked_fields(Customer) == {"birthday": "birthday"}


def test_a_declaration_needs_what_its_erasure_uses():
    with pytest.raises(ValueError, match="eraser function"):
        personal_data.register(Customer, path="pk", erase=personal_data.Erase.CUSTOM)
    with pytest.raises(ValueError, match="blank_fields"):
        personal_data.register(Customer, path="pk", erase=personal_data.Erase.BLANK)
