"""Demo set-up services: who loaded the demo and created the admin is on the audit trail."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from kequn.customers.models import Customer
from kequn.demo.services import ensure_admin, load_demo_data
from kequn.security.actors import system_actor
from kequn.security.audit.models import AuditEntry

pytestmark = pytest.mark.django_db(transaction=True)


def test_load_demo_data_is_audited():
    summary = load_demo_data(30, seed=3, progress=False, by=system_actor("demo-test"))
    assert summary.customers == 30 == Customer.objects.count()
    entry = AuditEntry.objects.get(action="demo.generate")
    assert entry.actor_username == "system:demo-test"
    assert entry.detail["customers"] == 30


def test_ensure_admin_once():
    password = ensure_admin(by=system_actor("demo-test"))
    assert password
    assert get_user_model().objects.filter(is_superuser=True).count() == 1
    assert ensure_admin(by=system_actor("demo-test")) is None
