"""Back office: ticket pages with the customer beside them, the 360 panel, the SLA report,
the command line, and personal data export and erasure."""

from __future__ import annotations

import datetime as dt
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from kequn.privacy.services.erasure import erase_customer
from kequn.security.personal_data import get_exported
from kequn.service import services
from kequn.service.models import BusinessCalendar, InboundEmail, Ticket, TicketMessage
from tests.factories import make_customer, make_order
from tests.service.helpers import BY, at, make_policy

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n%%EOF\n"


def make_ticket(customer, **fields):
    return services.open_ticket(
        customer_id=customer.pk, subject="屏幕闪烁", body="新买的手机屏幕闪烁", type="complaint",
        priority="high", source="store", by=BY, **fields,
    )  # fmt: skip


def test_ticket_page_shows_the_customer_value_and_recent_orders(admin_client):
    customer = make_customer("赵敏", email="zhao.min@example.cn")
    order = make_order(customer)
    ticket = make_ticket(customer, order_id=order.pk)
    page = admin_client.get(reverse("admin:service_ticket_change", args=[ticket.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert order.number in text
    assert "屏幕闪烁" in text
    listing = admin_client.get(reverse("admin:service_ticket_changelist"), {"status": "new"})
    assert listing.status_code == 200 and "屏幕闪烁" in listing.content.decode()


def test_customer_360_lists_the_tickets(admin_client):
    customer = make_customer("赵敏")
    make_ticket(customer)
    page = admin_client.get(reverse("admin:customers_customer_360", args=[customer.pk]))
    assert page.status_code == 200
    assert "屏幕闪烁" in page.content.decode()


def test_agent_logs_a_phone_call_and_replies_in_the_admin(admin_client):
    customer = make_customer("赵敏")
    response = admin_client.post(
        reverse("admin:service_ticket_add"),
        {"customer": customer.pk, "subject": "电话咨询保修", "type": "inquiry", "priority": "normal",
         "status": "new", "source": "phone", "body": "问保修期多长",
         "messages-TOTAL_FORMS": 0, "messages-INITIAL_FORMS": 0},
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    ticket = Ticket.objects.get(subject="电话咨询保修")
    assert ticket.messages.get().body == "问保修期多长"
    page = admin_client.get(reverse("admin:service_ticket_change", args=[ticket.pk]))
    assert page.status_code == 200


def test_sla_report_counts_met_and_missed_targets(admin_client):
    make_policy()
    customer = make_customer("赵敏")
    on_time = make_ticket(customer, opened_at=at(2025, 3, 3, 9, 0))
    services.add_reply(ticket=on_time, body="好的", by=BY, at=at(2025, 3, 3, 9, 20))
    late = make_ticket(customer, opened_at=at(2025, 3, 3, 9, 0))
    services.add_reply(ticket=late, body="抱歉", by=BY, at=at(2025, 3, 3, 11, 0))
    services.change_status(ticket=late, status="resolved", by=BY, at=at(2025, 3, 3, 12, 0))
    from kequn.service.selectors import compute_sla_report

    report = compute_sla_report()
    assert (report.first_response_met, report.first_response_missed) == (1, 1)
    assert report.resolution_met == 1 and report.first_response_rate == 0.5
    assert report.median_first_response_hours == pytest.approx((20 / 60 + 2) / 2, abs=0.01)
    page = admin_client.get(reverse("admin:service_ticket_sla_report"))
    assert page.status_code == 200
    out = StringIO()
    call_command("service", "report", stdout=out)
    assert json.loads(out.getvalue())["first_response_missed"] == 1


def test_overlapping_hours_are_refused_in_the_admin_form(admin_client):
    response = admin_client.post(
        reverse("admin:service_businesscalendar_add"),
        {"name": "门店", "country": "CN", "time_zone": "Asia/Shanghai",
         "hours": json.dumps({"sat": [["10:00", "14:00"], ["13:00", "21:00"]]}),
         "days-TOTAL_FORMS": 0, "days-INITIAL_FORMS": 0},
    )  # fmt: skip
    assert response.status_code == 200
    assert "sat: 10:00-14:00 overlaps 13:00-21:00" in response.content.decode()
    assert not BusinessCalendar.objects.exists()


def test_holidays_command_loads_a_file_and_names_bad_rows(tmp_path):
    policy = make_policy()
    good = tmp_path / "days.csv"
    good.write_text("date,workday,name,hours\n2027-02-06,0,春节,\n2027-02-20,1,调休,09:00-18:00\n")
    out = StringIO()
    call_command("service", "holidays", str(good), "--calendar", policy.calendar.name, stdout=out)
    assert "loaded 2 days" in out.getvalue()
    assert policy.calendar.days.get(date=dt.date(2027, 2, 20)).hours == [["09:00", "18:00"]]
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "date,workday,name,hours\n2027-02-07,0,x,\n2027-02-08,1,y,09:00-12:00 11:00-13:00\n"
    )
    with pytest.raises(
        CommandError, match=r"bad.csv: row 3 .2027-02-08.: 09:00-12:00 overlaps 11:00-13:00"
    ):
        call_command("service", "holidays", str(bad), "--calendar", policy.calendar.name)
    with pytest.raises(CommandError, match="no business calendar 'nope'"):
        call_command("service", "holidays", str(good), "--calendar", "nope")
    with pytest.raises(CommandError, match="no inbound mailbox"):
        call_command("service", "fetch-mail")


def test_export_and_erasure_cover_tickets_messages_files_and_raw_email():
    customer = make_customer("钱多多", email="qian@example.cn")
    raw = (
        b"From: qian@example.cn\r\nTo: support@shop.example\r\nSubject: refund\r\n"
        b"Message-ID: <r1@example.cn>\r\n\r\nplease refund\r\n"
    )
    record = services.receive_email(raw, by=BY)
    ticket = record.ticket
    services.add_reply(ticket=ticket, body="附件是发票", attachments=[("发票.pdf", PDF)], by=BY)
    # This app's declared tables, read the way the data-subject export reads every table.
    data = {
        entry.export_as: list(entry.rows_of([customer.pk]).values(*entry.export_fields()))
        for entry in get_exported()
        if entry.model._meta.app_label == "service"
    }
    assert [t["subject"] for t in data["tickets"]] == ["refund"]
    assert {m["body"] for m in data["ticket_messages"]} == {"please refund", "附件是发票"}
    assert data["ticket_attachments"][0]["file_name"] == "发票.pdf"
    assert data["inbound_emails"][0]["sender"] == "qian@example.cn"
    stored = ticket.messages.get(kind="reply").attachments.get().file
    path = stored.path
    counts = erase_customer(customer, by=BY)
    assert counts["tickets"] >= 1 and counts["inbound_emails"] == 1  # with messages and events
    assert not Ticket.objects.exists() and not TicketMessage.objects.exists()
    assert not InboundEmail.objects.exists()
    import os

    assert not os.path.exists(path)
