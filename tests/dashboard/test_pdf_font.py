"""PDF reports embed a real Chinese TrueType font (a subset), so Chinese reads back everywhere."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from django.test import Client
from django.utils import translation
from pypdf import PdfReader

from kequn.customers.services import create_customer
from kequn.dashboard import exports, reports, services
from kequn.security.actors import system_actor
from kequn.security.reportfiles import ReportFontError

FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")


@pytest.fixture
def zh_client(admin_user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(admin_user)
    client.cookies["django_language"] = "zh-hans"
    return client


@pytest.fixture
def refreshed(base):
    services.refresh_dashboard(by=system_actor("test"), now=base.now)
    return base


def embedded_fonts(content: bytes) -> list[dict]:
    """Return each font of the PDF's pages: base name, subtype, embedded file size, ToUnicode."""
    fonts = {}
    for page in PdfReader(io.BytesIO(content)).pages:
        for ref in page["/Resources"]["/Font"].values():
            font = ref.get_object()
            descriptor = font.get("/FontDescriptor")
            file2 = descriptor.get_object().get("/FontFile2") if descriptor else None
            fonts[str(font["/BaseFont"])] = {
                "subtype": str(font["/Subtype"]),
                "file_bytes": len(file2.get_object().get_data()) if file2 else 0,
                "to_unicode": "/ToUnicode" in font,
            }
    return [{"name": name, **info} for name, info in fonts.items()]


def pdf_plain_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def assert_chinese_font_embedded(content: bytes) -> None:
    cjk = [f for f in embedded_fonts(content) if "WenQuanYi" in f["name"]]
    assert cjk, embedded_fonts(content)
    for font in cjk:
        # "ABCDEF+Name": a subset, embedded as TrueType outlines with a Unicode map.
        assert re.match(r"^/[A-Z]{6}\+WenQuanYiMicroHei", font["name"]), font
        assert font["subtype"] == "/TrueType" and font["to_unicode"], font
        assert 0 < font["file_bytes"] < FONT.stat().st_size / 10, font
    assert not any("STSong" in f["name"] for f in embedded_fonts(content))


def test_dashboard_pdf_embeds_the_font_and_chinese_reads_back(refreshed, zh_client):
    response = zh_client.get("/admin/dashboard/export.pdf?period=7")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert_chinese_font_embedded(response.content)
    text = pdf_plain_text(response.content)
    with translation.override("zh-hans"):
        title = str(translation.gettext("Kequn dashboard"))
        revenue = str(translation.gettext("Revenue"))
    assert not title.isascii() and title in text
    assert revenue in text and "250.00" in text


def test_list_pdf_keeps_chinese_names(db, zh_client):
    for name, city in [("张伟", "深圳"), ("李娜", "广州"), ("王芳", "东莞")]:
        create_customer({"name": name, "province": "广东", "city": city}, by=system_actor("tests"))
    response = zh_client.get("/admin/dashboard/export/customers/customer.pdf?province=广东")
    assert response.status_code == 200
    assert_chinese_font_embedded(response.content)
    text = pdf_plain_text(response.content)
    for word in ("张伟", "李娜", "王芳", "深圳", "广州", "东莞", "广东"):
        assert word in text


def test_missing_font_is_one_clear_line(refreshed, zh_client, settings, tmp_path):
    settings.PDF_FONT = str(tmp_path / "nowhere.ttc")
    with translation.override("en"), pytest.raises(ReportFontError) as caught:
        exports.register_pdf_font()
    message = str(caught.value)
    assert "\n" not in message and "nowhere.ttc" in message
    assert "fonts-wqy-microhei" in message and "KEQUN_PDF_FONT" in message

    # The download page says so instead of failing, and keeps the filters.
    response = zh_client.get("/admin/dashboard/export.pdf?period=7")
    assert response.status_code == 302 and response["Location"].endswith("?period=7")
    page = zh_client.get(response["Location"]).content.decode()
    assert "nowhere.ttc" in page


def test_a_file_that_is_not_truetype_is_refused(db, settings, tmp_path):
    fake = tmp_path / "fake.otf"
    fake.write_bytes(b"OTTO" + b"\0" * 64)
    settings.PDF_FONT = str(fake)
    with translation.override("en"), pytest.raises(ReportFontError) as caught:
        exports.register_pdf_font()
    assert "fake.otf" in str(caught.value) and "TrueType" in str(caught.value)


def test_weekly_report_keeps_the_excel_file_when_the_font_is_missing(refreshed, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    settings.PDF_FONT = str(tmp_path / "nowhere.ttf")
    with pytest.raises(ReportFontError):
        reports.write_weekly_report(now=refreshed.now)
    assert [p.suffix for p in reports.list_reports()] == [".xlsx"]
    settings.PDF_FONT = str(FONT)
    written = reports.write_weekly_report(now=refreshed.now)
    assert sorted(p.suffix for p in written) == [".pdf", ".xlsx"]
    assert_chinese_font_embedded(written[0].read_bytes())
