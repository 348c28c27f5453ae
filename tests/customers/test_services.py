"""The customer services: identities, consents with history, tags, totals."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from kequn.customers.identities import IdentityError, normalize_identity
from kequn.customers.models import Consent, Customer, CustomerTag, Identity, Tag, TagGroup
from kequn.customers.services import (
    IdentityInput,
    add_identity,
    create_customer,
    find_customer_by_identity,
    get_current_consents,
    record_consent,
    tag_customers,
    update_customer,
)
from kequn.security.actors import system_actor
from tests.factories import make_customer


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        ("phone", "138 0013 8000", "+8613800138000"),
        ("phone", "+86-138-0013-8000", "+8613800138000"),
        ("phone", "(021) 6234 5678", "+862162345678"),
        ("phone", "+65 6123 4567", "+6561234567"),
        ("email", "  Wang.Fang@QQ.com ", "wang.fang@qq.com"),
        ("email", "ｌｉ＠163.com", "li@163.com"),
        ("wechat", " oABC123 ", "oABC123"),
    ],
)
def test_identities_are_normalised(kind, raw, expected):
    assert normalize_identity(kind, raw) == expected


@pytest.mark.parametrize(
    ("kind", "raw"),
    [("phone", "12"), ("phone", "call me"), ("email", "no-at-sign"), ("email", ""), ("fax", "1")],
)
def test_bad_identities_are_refused_with_reason(kind, raw):
    with pytest.raises(IdentityError) as info:
        normalize_identity(kind, raw)
    assert str(info.value)


@pytest.mark.django_db
def test_create_is_all_or_nothing():
    make_customer(email="a@example.com")
    with pytest.raises(ValidationError):
        create_customer(
            {"name": "B"},
            [IdentityInput("phone", "13900001111"), IdentityInput("email", "A@example.com")],
            by=system_actor("tests"),
        )
    assert Customer.objects.count() == 1
    assert not Identity.objects.filter(value="+8613900001111").exists()


@pytest.mark.django_db
def test_identity_is_idempotent_for_its_owner_and_external_needs_system():
    customer = make_customer(phone="13800138000")
    again = add_identity(
        customer, IdentityInput("phone", "+86 138 0013 8000"), by=system_actor("tests")
    )
    assert again.customer_id == customer.pk
    assert customer.identities.count() == 1
    with pytest.raises(ValidationError, match="system"):
        add_identity(customer, IdentityInput("external", "X1"), by=system_actor("tests"))
    add_identity(
        customer, IdentityInput("external", "X1", system="shopify"), by=system_actor("tests")
    )
    add_identity(
        customer, IdentityInput("external", "X1", system="zoho"), by=system_actor("tests")
    )  # other system: ok
    assert find_customer_by_identity("external", "X1", "zoho") == customer
    assert find_customer_by_identity("external", "X1") is None


@pytest.mark.django_db
def test_consent_history_is_kept_and_latest_wins():
    customer = make_customer()
    record_consent(
        customer, "sms", "marketing", True, source="store signup", by=system_actor("tests")
    )
    record_consent(customer, "email", "marketing", True, by=system_actor("tests"))
    record_consent(
        customer, "sms", "marketing", False, source="unsubscribe link", by=system_actor("tests")
    )
    current = get_current_consents(customer)
    assert current[("sms", "marketing")].granted is False
    assert current[("email", "marketing")].granted is True
    assert Consent.objects.filter(customer=customer, channel="sms").count() == 2
    with pytest.raises(ValidationError):
        record_consent(customer, "pigeon", "marketing", True, by=system_actor("tests"))


@pytest.mark.django_db
def test_tagging_is_idempotent_and_records_who():
    user = User.objects.create_user("op")
    tag = Tag.objects.create(group=TagGroup.objects.create(name="兴趣"), name="摄影")
    a, b = make_customer(), make_customer()
    assert tag_customers([a, b], tag, by=user) == 2
    assert tag_customers([a], tag, by=user) == 0
    assert CustomerTag.objects.get(customer=a, tag=tag).added_by == user


@pytest.mark.django_db
def test_update_validates_fields():
    customer = make_customer()
    update_customer(customer, {"city": "成都", "gender": "f"}, by=system_actor("tests"))
    customer.refresh_from_db()
    assert (customer.city, customer.gender) == ("成都", "f")
    with pytest.raises(ValidationError):
        update_customer(customer, {"gender": "x"}, by=system_actor("tests"))
    with pytest.raises(ValidationError, match="unknown customer field"):
        update_customer(customer, {"password": "x"}, by=system_actor("tests"))
