"""The SLA report as Excel and PDF: the files open and carry the report's figures."""

from __future__ import annotations

import io

import openpyxl
import pytest
from django.urls import reverse

from kequn.security.audit.models import AuditEntry
from tests.service.helpers import pdf_text
from tests.service.test_dashboard_panel import role_client, tickets  # noqa: F401 -- fixture

pytestmark = pytest.mark.django_db


def test_sla_report_page_links_its_files(tickets):  # noqa: F811
    html = role_client("analyst").get(reverse("admin:service_ticket_sla_report")).content.decode()
    assert '?format=xlsx"' in html and '?format=pdf"' in html


def test_sla_report_as_excel(tickets):  # noqa: F811
    response = role_client("analyst").get(
        reverse("admin:service_ticket_sla_report"), {"format": "xlsx"}
    )
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="sla-report-')
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    summary = {row[0]: row[1] for row in book.worksheets[0].iter_rows(values_only=True)}
    # Four tickets (one outside the dashboard's 30 days); first responses: 1 on time, 2 late.
    assert summary["Tickets"] == 4
    assert (summary["First responses on time"], summary["First responses late"]) == (1, 2)
    assert summary["First responses on time (%)"] == 33.3
    assert summary["Resolutions on time"] == 1 and summary["Resolutions late"] == 1
    queues = list(book["Open tickets by queue"].iter_rows(values_only=True))
    assert queues[0] == ("Queue", "Open tickets", "Due soon", "Breached")
    assert ("售后", 1, 0, 1) in queues
    assert AuditEntry.objects.filter(target_type="service.ticket", action="export").exists()


def test_sla_report_as_pdf(tickets):  # noqa: F811
    response = role_client("analyst").get(
        reverse("admin:service_ticket_sla_report"), {"format": "pdf"}
    )
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    text = pdf_text(response.content)
    assert "(33.3)" in text and "(50.0)" in text  # first-response and resolution rates
    assert b"KequnServiceCJK" in response.content or b"WenQuanYi" in response.content


def test_sla_report_files_need_the_report_permission(tickets):  # noqa: F811
    response = role_client("marketing").get(
        reverse("admin:service_ticket_sla_report"), {"format": "xlsx"}
    )
    assert response.status_code == 403
