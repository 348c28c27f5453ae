"""Points on orders sent through the event API ("Order Completed"): earned once, taken back."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from kequn.events.models import Event
from kequn.events.services import create_source
from kequn.ingest.runs import import_file
from kequn.loyalty import selectors, services
from kequn.loyalty.models import LedgerEntry, Member
from kequn.loyalty.tasks import nightly_loyalty_task
from tests.loyalty.conftest import BY


@pytest.fixture
def send(client, programme):
    """POST Segment track messages to the event API with a server key."""
    _source, key = create_source(name="shop", by=BY, key_type="server")
    auth = base64.b64encode(f"{key}:".encode()).decode()

    def post(event: str, order_id: str, total, user: str = "u-1", message_id: str = ""):
        message = {
            "userId": user,
            "event": event,
            "timestamp": (timezone.now() - timedelta(days=10)).isoformat(),
            "properties": {"order_id": order_id, "total": total, "currency": "CNY"},
            **({"messageId": message_id} if message_id else {}),
        }
        response = client.post(
            "/v1/track",
            json.dumps(message),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Basic {auth}",
        )
        assert response.status_code == 200, response.content

    return post


def buyer() -> int:
    """Return the customer the order events were matched to."""
    return Event.objects.filter(name="Order Completed").values_list("customer_id", flat=True)[0]


def test_the_same_order_event_twice_earns_once(send):
    send("Order Completed", "W-1", 250.9)
    send("Order Completed", "W-1", 250.9)  # the shop sent it again (a new message id)
    done = services.earn_for_order_events(by=BY)
    assert (done["events"], done["earned"], done["points"]) == (2, 1, 250)
    member = Member.objects.get(customer_id=buyer())
    assert member.balance == 250  # ten days old: past the 7 pending days
    assert LedgerEntry.objects.filter(key="order:W-1").count() == 1
    # Read again (and later events of the same order): nothing more.
    send("Order Completed", "W-1", 250.9)
    assert services.earn_for_order_events(by=BY)["earned"] == 0
    assert services.earn_for_order_events(by=BY)["events"] == 0
    assert LedgerEntry.objects.filter(member=member).count() == 1
    assert list(selectors.find_differences()) == []


def test_a_refund_event_takes_the_points_back(send):
    send("Order Completed", "W-2", 80)
    send("Order Refunded", "W-2", 80)  # both in one batch: the earn is read first
    done = services.earn_for_order_events(by=BY)
    assert (done["earned"], done["reversed"]) == (1, 1)
    member = Member.objects.get(customer_id=buyer())
    assert member.balance == 0 and list(selectors.find_differences()) == []


def test_an_order_both_imported_and_sent_earns_once(send, tmp_path):
    path = tmp_path / "o.csv"
    day = (timezone.localdate() - timedelta(days=10)).isoformat()
    path.write_text(f"订单号,手机,下单时间,订单金额,状态\nW-3,13800138009,{day},120,已付款\n")
    import_file(path, "orders", by=BY)
    send("Order Completed", "W-3", 120, user="u-9")
    assert services.earn_for_order_events(by=BY)["earned"] == 0
    assert LedgerEntry.objects.filter(key="order:W-3").count() == 1


def test_an_import_of_earned_and_new_orders_earns_the_new_ones(send, tmp_path):
    send("Order Completed", "W-8", 60)
    services.earn_for_order_events(by=BY)
    member = Member.objects.get(customer_id=buyer())
    path = tmp_path / "o.csv"
    day = (timezone.localdate() - timedelta(days=10)).isoformat()
    rows = [f"W-8,13800138010,{day},60,已付款", f"W-9,13800138010,{day},90,已付款"]
    path.write_text("订单号,手机,下单时间,订单金额,状态\n" + "\n".join(rows) + "\n")
    import_file(path, "orders", by=BY)
    keys = LedgerEntry.objects.filter(kind="earn").values_list("key", flat=True)
    assert sorted(keys) == ["order:W-8", "order:W-9"]
    importer = LedgerEntry.objects.get(key="order:W-9").member
    assert importer.balance == 90 and Member.objects.get(pk=member.pk).balance == 60
    assert list(selectors.find_differences()) == []


def test_events_without_a_usable_order_earn_nothing(send):
    send("Order Completed", "", 50)
    send("Order Completed", "W-4", "a lot")
    send("Order Completed", "W-5", -5)
    done = services.earn_for_order_events(by=BY)
    assert (done["events"], done["earned"]) == (3, 0)


def test_the_nightly_task_and_the_command_read_order_events(send, capsys):
    send("Order Completed", "W-6", 30)
    result = nightly_loyalty_task.call()
    assert result["earned_from_events"] == 1
    send("Order Completed", "W-7", 40)
    call_command("loyalty", "earn-events")
    assert "1 orders earned 40 points" in capsys.readouterr().out
