"""Back-office pages: the board's totals, the reports and their files, the calendar feed, home."""

from __future__ import annotations

import re
from datetime import timedelta

import openpyxl
import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from kequn.sales import services
from kequn.sales.calendar import make_feed_token
from kequn.security.audit import services as audit
from kequn.security.audit.models import AuditEntry
from tests.sales.helpers import make_deal, make_pipeline, make_rep

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_board_shows_own_deals_with_totals_and_move_refusal():
    rep, other = make_rep(), make_rep()
    pipeline = make_pipeline()
    mine = make_deal(rep, pipeline, "Proposal", "3000")
    theirs = make_deal(other, pipeline, "Proposal", "7000")
    client = logged_in(rep)
    page = client.get(reverse("admin:sales_deal_board"), {"pipeline": pipeline.pk})
    assert page.status_code == 200
    proposal = next(c for c in page.context["columns"] if c.stage.name == "Proposal")
    assert [d.pk for d in proposal.deals] == [mine.pk]
    assert proposal.total == 3000 and proposal.weighted == 1500
    won = pipeline.stages.get(name="Won")
    move = client.post(reverse("admin:sales_deal_board_move"), {"deal": theirs.pk, "stage": won.pk})
    assert move.status_code == 404  # another rep's deal is invisible
    services.update_deal(mine, {"amount": None}, by=rep)
    refused = client.post(
        reverse("admin:sales_deal_board_move"), {"deal": mine.pk, "stage": won.pk}
    )
    assert refused.status_code == 422 and "needs its amount" in refused.json()["error"]


def test_reports_page_and_excel_file():
    rep = make_rep()
    make_deal(rep)
    client = logged_in(rep)
    assert client.get(reverse("admin:sales_reports")).status_code == 200
    response = client.get(reverse("admin:sales_reports"), {"format": "xlsx"})
    book = openpyxl.load_workbook(__import__("io").BytesIO(response.content))
    assert book.sheetnames[0] == "销售预测"  # the default language is Chinese
    assert book.worksheets[0].max_row >= 2  # the header and at least one month
    pdf = client.get(reverse("admin:sales_reports"), {"format": "pdf"})
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    assert b"WenQuanYi" in pdf.content or b"wqy" in pdf.content.lower()  # the font is embedded
    exported = AuditEntry.objects.filter(action=audit.EXPORT, target_type="sales.deal")
    assert sorted(e.detail["format"] for e in exported) == ["pdf", "xlsx"]


def test_calendar_feed_is_signed_and_lists_open_tasks():
    rep = make_rep()
    due = timezone.now() + timedelta(days=1)
    services.create_task(
        by=rep, title="拜访, 华强; 门店", due_at=due, remind_at=due - timedelta(minutes=15)
    )
    token = make_feed_token(rep)
    # URL-safe whatever the password hash holds, and no piece of the hash is in the address.
    assert re.fullmatch(r"[0-9]+\.[0-9a-f]{16}:[A-Za-z0-9_-]+", token)
    assert rep.password[-12:] not in token
    url = reverse("sales:calendar_feed", args=[token])
    body = Client().get(url).content.decode()
    assert "BEGIN:VCALENDAR" in body and "SUMMARY:拜访\\, 华强\\; 门店" in body
    assert "TRIGGER:-PT15M" in body
    assert Client().get(url.replace(".ics", "x.ics")).status_code == 404
    rep.set_password("changed")
    rep.save()
    assert Client().get(url).status_code == 404  # a new password retires the old address


def test_home_page_lists_overdue_tasks():
    rep = make_rep()
    services.create_task(by=rep, title="逾期回访", due_at=timezone.now() - timedelta(hours=2))
    page = logged_in(rep).get(reverse("admin:index"))
    assert "逾期回访" in page.content.decode()
