"""The admin home dashboard, its exports, list exports and the weekly report."""

from __future__ import annotations

import base64
import io
import re
import zlib

import openpyxl
import pytest
from django.contrib.auth.models import User
from django.test import Client

from kequn.dashboard import services
from kequn.security.actors import system_actor
from tests.conftest import grant


def pdf_text(content: bytes) -> str:
    """Return the page streams of a PDF, inflated, as text (enough to find numbers)."""
    chunks = []
    for raw in re.findall(rb"stream\r?\n(.*?)endstream", content, re.S):
        data = raw.strip()
        if data.endswith(b"~>"):  # reportlab wraps streams in ASCII85
            data = base64.a85decode(data[:-2].replace(b"\n", b""))
        try:
            chunks.append(zlib.decompress(data).decode("latin-1"))
        except zlib.error:
            chunks.append(data.decode("latin-1"))
    return "\n".join(chunks)


@pytest.fixture
def admin_client_en(admin_user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(admin_user)
    client.cookies["django_language"] = "en"
    return client


@pytest.fixture
def refreshed(base):
    services.refresh_dashboard(by=system_actor("test"), now=base.now)
    return base


def test_home_shows_the_dashboard(refreshed, admin_client_en, django_assert_max_num_queries):
    # The dashboard, its sidebar and badges, and the apps' panels: campaigns, service,
    # feedback and sales read a few grouped queries each, loyalty's figures come from the
    # refresh. A panel that reads per row breaks this budget.
    with django_assert_max_num_queries(32):
        response = admin_client_en.get("/admin/?period=7")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="kequn-dashboard"' in html
    assert 'data-kpi="revenue"' in html and "250.00" in html
    assert "▲ +150.0%" in html
    assert 'for="kq-period"' in html and 'for="kq-channel"' in html
    assert "?score__lifecycle_stage__exact=at_risk" in html
    assert 'data-chart="cohorts"' in html and 'data-chart="rfm"' in html


def test_home_does_not_scan_orders(refreshed, admin_client_en, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert (
            admin_client_en.get(f"/admin/?period=30&channel={refreshed.web.pk}").status_code == 200
        )
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    assert "commerce_order" not in sql and "scoring_customerscore" not in sql


def test_channel_filter_on_the_page(refreshed, admin_client_en):
    html = admin_client_en.get(f"/admin/?period=7&channel={refreshed.web.pk}").content.decode()
    assert re.search(r'data-kpi="revenue">.*?200\.00', html, re.S)
    assert f'<option value="{refreshed.web.pk}" selected>' in html


def test_empty_database_shows_next_step(db, admin_client_en):
    html = admin_client_en.get("/admin/").content.decode()
    assert 'data-testid="empty-state"' in html
    assert "kequn demo" in html and "Import customers" in html
    assert "<canvas" not in html and 'data-chart="rfm"' not in html


def test_customers_without_refresh_offer_to_compute(base, admin_client_en):
    html = admin_client_en.get("/admin/").content.decode()
    assert "kequn analytics refresh" in html and "/admin/dashboard/refresh/" in html


def test_impossible_filters_say_so(refreshed, admin_client_en):
    html = admin_client_en.get("/admin/?period=9999&channel=12345").content.decode()
    assert html.count('data-testid="filter-error"') == 2
    assert "9999" in html and "12345" in html


def test_period_without_purchases_says_so(refreshed, admin_client_en):
    services.refresh_dashboard(by=system_actor("test"), now=refreshed.now.replace(year=2027))
    html = admin_client_en.get("/admin/?period=7").content.decode()
    assert "No purchases in the last 7 days" in html


def test_refresh_button_queues_a_task(base, admin_client_en, django_capture_on_commit_callbacks):
    from django_tasks_db.models import DBTaskResult

    # The task is queued once the request's transaction commits.
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_en.post("/admin/dashboard/refresh/")
    assert response.status_code == 302
    assert DBTaskResult.objects.filter(task_path__endswith="refresh_dashboard_task").exists()


def test_excel_export_has_the_numbers(refreshed, admin_client_en):
    response = admin_client_en.get("/admin/dashboard/export.xlsx?period=7")
    assert response.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    rows = {row[0]: row for row in book["Summary"].iter_rows(values_only=True) if row[0]}
    # The change is stored as a fraction and shown as a percentage: +150.0%.
    assert rows["Revenue"][1:] == (250, 100, 1.5)
    assert rows["Active customers"][1:3] == (2, 1)
    cells = {row[0].value: row for row in book["Summary"].iter_rows() if row[0].value}
    assert cells["Revenue"][1].number_format == "#,##0.00"
    assert cells["Active customers"][1].number_format == "#,##0"
    assert cells["Revenue"][3].number_format.startswith("+0.0%")
    assert cells["Repeat-purchase rate"][1].number_format == "0.0%"
    assert len(book.sheetnames) > 5
    rfm_sheet = next(name for name in book.sheetnames if name.startswith("RFM"))
    rfm = list(book[rfm_sheet].iter_rows(values_only=True))
    assert (5, 3, 1, 600) in rfm


def test_pdf_export_has_the_numbers_and_charts(refreshed, admin_client_en):
    response = admin_client_en.get(
        f"/admin/dashboard/export.pdf?period=7&channel={refreshed.web.pk}"
    )
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    text = pdf_text(response.content)
    assert "(200.00)" in text and "(Web shop" in text
    assert " re " in text or " re\n" in text  # rectangles: bars and heatmap cells are drawn


def test_empty_exports_explain(db, admin_client_en):
    book = openpyxl.load_workbook(
        io.BytesIO(admin_client_en.get("/admin/dashboard/export.xlsx").content)
    )
    assert "kequn demo" in " ".join(
        str(r[0]) for r in book.active.iter_rows(values_only=True) if r[0]
    )
    assert admin_client_en.get("/admin/dashboard/export.pdf").content.startswith(b"%PDF")


def test_list_export_keeps_the_list_filters(refreshed, admin_client_en):
    response = admin_client_en.get(
        "/admin/dashboard/export/customers/customer.xlsx?province=Guangdong"
    )
    assert response.status_code == 200
    rows = list(
        openpyxl.load_workbook(io.BytesIO(response.content)).active.iter_rows(values_only=True)
    )
    assert len(rows) == 2 and "Alice" in rows[1]
    pdf = admin_client_en.get("/admin/dashboard/export/commerce/order.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert "(T-1)" in pdf_text(pdf.content)
    assert admin_client_en.get("/admin/dashboard/export/customers/nothing.xlsx").status_code == 404
    assert admin_client_en.get("/admin/dashboard/export/customers/customer.csv").status_code == 404


def test_exports_need_permission(refreshed):
    user = User.objects.create_user("clerk", password="x", is_staff=True)
    client = Client()
    client.force_login(user)
    assert client.get("/admin/dashboard/export.xlsx").status_code == 403
    assert 'id="kequn-dashboard"' not in client.get("/admin/").content.decode()
    assert client.get("/admin/dashboard/export/customers/customer.xlsx").status_code == 403
    client.force_login(grant(user, "dashboard.view_dashboard"))
    assert client.get("/admin/dashboard/export.xlsx").status_code == 200


def test_weekly_report_files(refreshed, settings, tmp_path, admin_client_en):
    from kequn.dashboard.tasks import write_weekly_report_task

    settings.DATA_DIR = tmp_path
    paths = write_weekly_report_task.call()
    names = sorted(p.rsplit("/", 1)[-1] for p in paths)
    assert names == ["kequn-weekly-2026-W25.pdf", "kequn-weekly-2026-W25.xlsx"] or len(names) == 2
    pdf = (tmp_path / "reports" / names[0]).read_bytes()
    assert pdf.startswith(b"%PDF") and "(250.00)" in pdf_text(pdf)
    page = admin_client_en.get("/admin/dashboard/reports/").content.decode()
    assert names[0] in page
    download = admin_client_en.get(f"/admin/dashboard/reports/{names[1]}")
    assert download.status_code == 200
    assert admin_client_en.get("/admin/dashboard/reports/..%2Fsecret_key").status_code == 404


def test_weekly_report_is_scheduled():
    from kequn.jobs.services import DEFAULT_SCHEDULES

    spec = DEFAULT_SCHEDULES["dashboard-weekly-report"]
    assert spec.task_path == "kequn.dashboard.tasks.write_weekly_report_task"
    assert spec.interval_minutes == 7 * 24 * 60
