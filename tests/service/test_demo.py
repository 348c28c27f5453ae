"""Demo tickets: created through the services, so the SLA report has numbers."""

from __future__ import annotations

import pytest

from kequn.demo.service import create_demo_tickets
from kequn.service.models import SlaEvent, Ticket
from kequn.service.selectors import compute_sla_report
from tests.factories import make_customer
from tests.service.helpers import BY


@pytest.mark.django_db
def test_demo_tickets_fill_the_sla_report():
    for i in range(100):
        make_customer(f"客户{i}")
    made = create_demo_tickets(by=BY, limit=40)
    assert made == Ticket.objects.count() == 2  # one customer in fifty
    assert create_demo_tickets(by=BY) == 0  # idempotent
    assert SlaEvent.objects.filter(kind="applied").count() == 2
    assert compute_sla_report().tickets == 2
