"""Every change to a customer names who made it on the audit trail: back office, API, job."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from kequn.customers.models import Address, Customer, CustomerTag, Identity, Tag, TagGroup
from kequn.customers.services import (
    IdentityInput,
    add_identity,
    delete_customer,
    record_consent,
    tag_customers,
    update_customer,
)
from kequn.security.actors import system_actor
from kequn.security.audit import services as audit
from kequn.security.audit.models import AuditEntry
from tests.factories import make_customer


def entries(action: str, target: object) -> list[AuditEntry]:
    """Return the audit entries of one action on one row."""
    return list(
        AuditEntry.objects.filter(
            action=action, target_type=target._meta.label_lower, target_id=str(target.pk)
        )
    )


def form_data(client, url: str, **values: str) -> dict:
    """Return the admin form's current values with the inline tabs left empty."""
    response = client.get(url)
    form = response.context["adminform"].form
    data = {name: form[name].value() or "" for name in form.fields}
    data = {k: v for k, v in data.items() if v is not None}
    for inline in response.context["inline_admin_formsets"]:
        prefix = inline.formset.prefix
        total = inline.formset.total_form_count()
        data[f"{prefix}-TOTAL_FORMS"] = total
        data[f"{prefix}-INITIAL_FORMS"] = inline.formset.initial_form_count()
        for i, sub in enumerate(inline.formset.forms[:total]):
            for name in sub.fields:
                value = sub[name].value()
                if value is not None and value is not False:
                    data[f"{prefix}-{i}-{name}"] = value
    data.update(values)
    return data


@pytest.mark.django_db
def test_a_job_or_command_is_named_on_the_audit_trail():
    job = system_actor("nightly-test")
    customer = make_customer(phone="13800138000")
    update_customer(customer, {"city": "成都"}, by=job)
    (change,) = entries(audit.CHANGE, customer)
    assert change.actor_username == "system:nightly-test" and change.actor_id is None
    assert "city" in change.detail["fields"]
    consent = record_consent(customer, "sms", "marketing", True, by=job)
    assert entries(audit.CREATE, consent)[0].actor_username == "system:nightly-test"
    identity = customer.identities.get()
    delete_customer(customer, by=job)
    assert entries(audit.DELETE, identity)[0].actor_username == "system:nightly-test"


@pytest.mark.django_db
def test_a_new_customer_names_its_creator(admin_user):
    customer = make_customer(phone="13800138001")  # created by system:tests
    assert entries(audit.CREATE, customer)[0].actor_username == "system:tests"
    identity = customer.identities.get()
    assert entries(audit.CREATE, identity)[0].actor_username == "system:tests"


@pytest.mark.django_db
def test_tagging_in_bulk_records_one_entry_by_the_actor(admin_user):
    tag = Tag.objects.create(group=TagGroup.objects.create(name="价值"), name="VIP")
    tag_customers([make_customer(), make_customer()], tag, by=admin_user)
    (entry,) = entries(audit.CREATE, tag)
    assert entry.actor_id == admin_user.pk and entry.detail["added"] == 2


@pytest.mark.django_db
def test_an_api_change_names_the_token_user(make_api_client):
    client = make_api_client(superuser=True)
    customer = make_customer()
    response = client.send_json("patch", f"/api/v1/customers/{customer.pk}", {"city": "杭州"})
    assert response.status_code == 200, response.content
    (change,) = entries(audit.CHANGE, customer)
    assert change.actor_id == client.user.pk


@pytest.mark.django_db
def test_back_office_saves_go_through_the_services(admin_client, admin_user):
    customer = make_customer(phone="13800138002")
    url = reverse("admin:customers_customer_change", args=[customer.pk])
    response = admin_client.post(url, form_data(admin_client, url, city="苏州"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    customer.refresh_from_db()
    assert customer.city == "苏州"
    assert customer.field_sources["city"] == "backoffice"
    (change,) = entries(audit.CHANGE, customer)
    assert change.actor_id == admin_user.pk and "city" in change.detail["fields"]


@pytest.mark.django_db
def test_back_office_tag_links_and_deletions_name_the_user(admin_client, admin_user):
    customer = make_customer()
    tag = Tag.objects.create(group=TagGroup.objects.create(name="兴趣"), name="摄影")
    address = Address.objects.create(customer=customer, city="上海", line="1 Road")
    url = reverse("admin:customers_customer_change", args=[customer.pk])
    data = form_data(admin_client, url)
    tags = next(k[: -len("-TOTAL_FORMS")] for k in data if k.startswith("tag_links"))
    data[f"{tags}-TOTAL_FORMS"] = 1
    data[f"{tags}-0-tag"] = tag.pk
    addresses = next(k[: -len("-TOTAL_FORMS")] for k in data if k.startswith("addresses"))
    data[f"{addresses}-0-id"] = address.pk
    data[f"{addresses}-0-customer"] = customer.pk
    data[f"{addresses}-0-DELETE"] = "on"
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context
    link = CustomerTag.objects.get(customer=customer, tag=tag)
    assert link.added_by == admin_user
    assert entries(audit.CREATE, link)[0].actor_id == admin_user.pk
    assert not Address.objects.filter(pk=address.pk).exists()
    assert entries(audit.DELETE, address)[0].actor_id == admin_user.pk


@pytest.mark.django_db
def test_deleting_in_the_back_office_goes_through_the_service(admin_client, admin_user):
    customer = make_customer(phone="13800138003")
    identity = Identity.objects.get(customer=customer)
    url = reverse("admin:customers_customer_delete", args=[customer.pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 302
    assert not Customer.objects.filter(pk=customer.pk).exists()
    assert entries(audit.DELETE, identity)[0].actor_id == admin_user.pk


@pytest.mark.django_db
def test_adding_an_identity_twice_is_refused():
    customer = make_customer(phone="13800138004")
    with pytest.raises(ValidationError, match="already belongs"):
        add_identity(make_customer(), IdentityInput("phone", "13800138004"), by=system_actor("t"))
    assert customer.identities.count() == 1
