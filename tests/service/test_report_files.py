"""The SLA report as Excel and PDF: the files open and carry the report's figures."""

from __future__ import annotations

import io

import openpyxl
import pytest
from django.test import RequestFactory
from django.urls import reverse
from django.utils import translation

from kequn.dashboard import exports as dashboard_exports
from kequn.security import reportfiles
from kequn.security.audit.models import AuditEntry
from kequn.security.reportfiles import ReportFontError
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
    assert b"WenQuanYi" in response.content  # the Chinese face is embedded (a subset)


def test_sla_report_files_need_the_report_permission(tickets):  # noqa: F811
    response = role_client("marketing").get(
        reverse("admin:service_ticket_sla_report"), {"format": "xlsx"}
    )
    assert response.status_code == 403


def test_a_font_setting_changed_to_a_missing_file_is_one_clear_line(tickets, settings, tmp_path):  # noqa: F811
    client = role_client("analyst")
    url = reverse("admin:service_ticket_sla_report")
    assert client.get(url, {"format": "pdf"})["Content-Type"] == "application/pdf"
    # The font was registered for the first file; the new setting is read all the same.
    settings.PDF_FONT = str(tmp_path / "nowhere.ttc")
    with translation.override("en"):
        response = client.get(url, {"format": "pdf"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    [message] = [str(m) for m in response.context["messages"]]
    assert "\n" not in message and "nowhere.ttc" in message and "KEQUN_PDF_FONT" in message
    # The dashboard's files stop on the same error.
    with pytest.raises(ReportFontError):
        dashboard_exports.build_list_pdf("t", "", ["a"], [["张伟"]])


def test_report_writer_keeps_cells_as_text_and_audits_the_download(admin_user):
    request = RequestFactory().get("/report", {"format": "xlsx", "store": "1"})
    request.user = admin_user
    tables = [
        ("报表/一", ["Name", "Amount"], [["=1+1", 2.5], ["张伟", None]]),
        ("报表/一", ["Name"], [["@SUM(A1)"]]),
    ]
    response = reportfiles.render_file(
        request, tables=tables, title="T", name="demo-report", kind="xlsx", label="demo.thing"
    )
    assert response["Content-Disposition"].startswith('attachment; filename="demo-report-')
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    assert len(set(book.sheetnames)) == 2  # the same title twice gets two sheets
    first, second = book.worksheets
    rows = list(first.iter_rows(values_only=True))
    assert rows[0] == ("Name", "Amount") and first["A1"].font.b
    assert rows[1][0] != "=1+1" and rows[1][0].endswith("=1+1") and rows[1][1] == 2.5
    assert first["A2"].data_type == "s" and second["A2"].data_type == "s"
    entry = AuditEntry.objects.get(action="export", target_type="demo.thing")
    assert entry.detail == {
        "report": "demo-report",
        "format": "xlsx",
        "filters": ["format", "store"],
    }


def test_pdf_cells_are_formatted_per_report_kind():
    assert reportfiles.format_cell(None) == "—" and reportfiles.format_cell(1234567) == "1,234,567"
    assert reportfiles.format_cell(1234.56) == "1,234.6" and reportfiles.format_cell(True) == "True"
    assert reportfiles.choose_font("12.5%") == reportfiles.LATIN_FONT
    assert reportfiles.choose_font("售后") == reportfiles.CJK_FONT
