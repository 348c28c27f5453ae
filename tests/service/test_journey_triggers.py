"""Complaints start journeys: one opened (a win-back) and one resolved, once per ticket."""

from __future__ import annotations

import pytest

from kequn.journeys.models import Enrollment
from kequn.service.models import TicketType
from kequn.service.services import (
    COMPLAINT_OPENED,
    COMPLAINT_RESOLVED,
    change_status,
    open_ticket,
)
from tests.feedback.conftest import BY, make_customer
from tests.journeys.conftest import make_journey  # noqa: F401 -- the journey builder fixture

pytestmark = pytest.mark.django_db(transaction=True)  # triggers fire after the commit
EXIT = [{"id": "x", "kind": "exit"}]


def test_a_complaint_enters_the_journeys_of_its_events_once(make_journey):  # noqa: F811
    win_back = make_journey(EXIT, trigger_kind=COMPLAINT_OPENED)
    urgent_only = make_journey(
        EXIT, trigger_kind=COMPLAINT_OPENED, trigger_config={"priority": "urgent"}
    )
    check_in = make_journey(EXIT, trigger_kind=COMPLAINT_RESOLVED)
    angry, curious = make_customer("angry@example.com"), make_customer("curious@example.com")
    complaint = open_ticket(
        customer_id=angry.pk, subject="屏幕碎了", body="刚买就坏", type=TicketType.COMPLAINT, by=BY
    )
    question = open_ticket(customer_id=curious.pk, subject="发票", body="怎么开", by=BY)
    assert list(Enrollment.objects.values_list("journey_id", "customer_id")) == [
        (win_back.pk, angry.pk)
    ]  # not the urgent-only journey (a normal complaint), not the inquiry
    for status in ("resolved", "closed"):
        change_status(ticket=complaint, status=status, by=BY)
        change_status(ticket=question, status=status, by=BY)
    entered = Enrollment.objects.filter(journey=check_in)
    assert list(entered.values_list("customer_id", flat=True)) == [angry.pk]  # once, not twice
    assert not Enrollment.objects.filter(journey=urgent_only).exists()
