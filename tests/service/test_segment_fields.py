"""Segment rules on service: customers with open tickets, with complaints in a window."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from kequn.segments.services import count_members
from kequn.service import services
from tests.factories import make_customer
from tests.service.helpers import BY


def rule(field: str, operator: str, value, days: int | None = None) -> dict:
    condition = {"field": field, "operator": operator, "value": value}
    if days:
        condition["days"] = days
    return {"match": "all", "conditions": [condition]}


@pytest.mark.django_db
def test_open_tickets_and_recent_complaints():
    angry, calm, quiet = make_customer("甲"), make_customer("乙"), make_customer("丙")
    old = timezone.now() - dt.timedelta(days=200)
    for customer, kind, opened in [(angry, "complaint", None), (angry, "complaint", old),
                                   (calm, "complaint", old), (calm, "inquiry", None)]:  # fmt: skip
        services.open_ticket(customer_id=customer.pk, subject="x", body="y", type=kind,
                             source="phone", opened_at=opened, by=BY)  # fmt: skip
    ticket = calm.tickets.get(type="inquiry")
    services.change_status(ticket=ticket, status="closed", by=BY)
    assert count_members(rule("open_tickets", "gte", 1)) == 2  # angry 2, calm 1 (old complaint)
    assert count_members(rule("open_tickets", "gte", 2)) == 1
    assert count_members(rule("complaints", "gte", 1, days=90)) == 1
    assert count_members(rule("complaints", "gte", 1)) == 2
    assert count_members(rule("open_tickets", "eq", 0)) == 1  # quiet
    assert quiet.pk
