"""The survey (NPS and CSAT) report as Excel and PDF: the files open and carry the figures."""

from __future__ import annotations

import io

import openpyxl
import pytest
from django.urls import reverse

from kequn.feedback.models import Survey
from tests.feedback.test_dashboard_panel import answers, role_client  # noqa: F401 -- fixture
from tests.service.helpers import pdf_text

pytestmark = pytest.mark.django_db


def report_url(kind: str) -> str:
    return reverse("admin:feedback_survey_report", args=[Survey.objects.get(kind=kind).pk])


def test_nps_report_as_excel(answers):  # noqa: F811
    client = role_client("analyst")
    assert '?format=xlsx"' in client.get(report_url("nps")).content.decode()
    response = client.get(report_url("nps"), {"format": "xlsx"})
    assert response.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    summary = {row[0]: row[1] for row in book["Summary"].iter_rows(values_only=True)}
    # 8 answers: 4 promoters, 1 passive, 3 detractors: NPS 12.5.
    assert summary["NPS"] == 12.5 and summary["Answers"] == 8
    assert (summary["Promoters"], summary["Passives"], summary["Detractors"]) == (4, 1, 3)
    months = list(book["By month"].iter_rows(values_only=True))
    assert [row[2] for row in months[1:]] == [0.0, 16.7]  # last month's NPS, then this month's
    topics = list(book["Top complaint topics"].iter_rows(values_only=True))
    assert topics[1] == ("物流 / 慢", 2, "物流太慢，等了两周")


def test_csat_report_as_pdf(answers):  # noqa: F811
    response = role_client("analyst").get(report_url("csat"), {"format": "pdf"})
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    text = pdf_text(response.content)
    # CSAT: one of two satisfied; 2 of 3 invitations answered (66.7 %).
    assert "(50.0)" in text and "(66.7)" in text


def test_survey_report_files_need_read_access(answers):  # noqa: F811
    response = role_client("sales").get(report_url("nps"), {"format": "xlsx"})
    assert response.status_code == 403
