"""The dashboard's service panel: SLA compliance, response times, open tickets by queue."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from kequn.dashboard.services import refresh_dashboard
from kequn.service import services
from kequn.service.models import Queue
from tests.conftest import kpi, role_client
from tests.factories import make_customer
from tests.service.helpers import BY, make_calendar, make_policy

pytestmark = pytest.mark.django_db
ALL_DAY = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def refresh() -> None:
    """Compute the dashboard: its panels show once figures exist."""
    refresh_dashboard(by=BY)


@pytest.fixture
def tickets():
    """Three tickets on a round-the-clock calendar: one on time, one late, one breached open."""
    calendar = make_calendar(hours=ALL_DAY, country="")
    make_policy(calendar, first_response_minutes=60, resolution_minutes=240)
    aftersales = Queue.objects.create(name="售后")
    customer = make_customer("赵敏")
    now = timezone.now().replace(microsecond=0)

    def ticket(hours_ago: float, **fields):
        return services.open_ticket(
            customer_id=customer.pk, subject="屏幕闪烁", body="屏幕闪烁", by=BY,
            opened_at=now - dt.timedelta(hours=hours_ago), **fields,
        )  # fmt: skip

    on_time = ticket(10)
    services.add_reply(ticket=on_time, body="好的", by=BY, at=now - dt.timedelta(hours=9.5))
    services.change_status(ticket=on_time, status="resolved", by=BY, at=now - dt.timedelta(hours=8))
    late = ticket(5)
    services.add_reply(ticket=late, body="抱歉", by=BY, at=now - dt.timedelta(hours=3))
    ticket(2, queue=aftersales)
    services.check_slas(by=BY, now=now)
    ticket(40 * 24)  # outside the panel's 30 days: counted among the open, not in the rates
    refresh()
    return now


def test_service_panel_shows_compliance_times_and_queues(tickets):
    html = role_client("analyst").get("/admin/").content.decode()
    assert 'data-chart="service"' in html
    # First responses: one met; one late reply and one still missing count as missed.
    # Resolution (4 h): one met, the late one's passed unresolved, the newest is not due.
    assert kpi(html, "first-response-rate") == "33.3 %"
    assert kpi(html, "resolution-rate") == "50.0 %"
    # First responses took 0.5 h and 2 h: 1.25 h on average; the one resolution 2 h.
    assert kpi(html, "first-response-hours") == "1.2"
    assert kpi(html, "resolution-hours") == "2.0"
    # Two first responses and one resolution missed.
    assert kpi(html, "breaches") == "3"
    assert kpi(html, "tickets") == "3"
    queues = re.search(r'id="kq-service-queues">(.*?)</table>', html, re.S).group(1)
    assert re.search(r"售后</th><td[^>]*>1</td><td[^>]*>0</td><td>1</td>", queues)
    assert re.search(r"No queue</th><td[^>]*>2</td>", queues)


def test_service_panel_is_hidden_from_marketing(tickets):
    # Marketing sees the dashboard but not tickets; reps see only their accounts' tickets.
    response = role_client("marketing").get("/admin/")
    html = response.content.decode()
    assert response.status_code == 200 and 'id="kequn-dashboard"' in html
    assert 'data-chart="service"' not in html


def test_service_panel_without_tickets(db):
    make_customer("赵敏")
    refresh()
    html = role_client("analyst").get("/admin/").content.decode()
    assert kpi(html, "first-response-rate") == "—"
    assert "No open tickets." in html
