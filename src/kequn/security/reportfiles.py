"""Excel and PDF report files built in memory, for every app's reports and list exports.

It sits beside kequn.security.formulas (cells safe from formulas) and the audit log (each
download is an audited export), low enough for the dashboard, service, feedback and sales
reports to share one writer and one embedded Chinese font.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.html import escape
from django.utils.translation import gettext as _

from kequn.security.audit import services as audit
from kequn.security.formulas import escape_row, make_sheet_title

# (title, header, rows): one sheet of the workbook, one table of the PDF.
Table = tuple[str, list[str], list[list[Any]]]
# A TrueType font embedded (as a subset) in every PDF, so Chinese shows on any machine.
CJK_FONT = "KequnCJK"
LATIN_FONT = "Helvetica"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMATS = ("xlsx", "pdf")


class ReportFontError(RuntimeError):
    """The Chinese font the PDFs embed is missing or unreadable."""


_registered_font_path: str | None = None


def register_pdf_font() -> None:
    """Register the Chinese TrueType font named by KEQUN_PDF_FONT (again only if it changed)."""
    from reportlab.pdfbase import pdfmetrics  # noqa: PLC0415 -- only for the file
    from reportlab.pdfbase.ttfonts import TTFError, TTFont  # noqa: PLC0415

    global _registered_font_path
    path = str(settings.PDF_FONT)
    if path == _registered_font_path:
        return
    hint = _(
        "install Debian's fonts-wqy-microhei (apt-get install fonts-wqy-microhei) or set "
        "KEQUN_PDF_FONT to a TrueType .ttf/.ttc file"
    )
    if not Path(path).is_file():
        raise ReportFontError(
            _("PDF export needs a Chinese font and %(path)s does not exist: %(hint)s.")
            % {"path": path, "hint": hint}
        )
    try:
        # In a collection (.ttc) the first face is the proportional one (Micro Hei, not Mono).
        font = TTFont(CJK_FONT, path, subfontIndex=0)
    except (OSError, TTFError) as exc:
        # reportlab reads TrueType outlines only: an OpenType/CFF font (.otf) ends here too.
        raise ReportFontError(
            _("PDF export cannot use the font %(path)s (%(error)s): %(hint)s.")
            % {"path": path, "error": exc, "hint": hint}
        ) from None
    pdfmetrics.registerFont(font)
    _registered_font_path = path


def choose_font(text: str) -> str:
    """Return the font to set the text in: Helvetica for Latin, the embedded font otherwise."""
    # Latin text stays in Helvetica so that numbers remain plain, searchable text in the file.
    return LATIN_FONT if text.isascii() else CJK_FONT


def _group_whole(value: int) -> str:
    return f"{value:,}"


def _group_decimal(value: float) -> str:
    return f"{value:,.1f}"


def format_cell(
    value: Any,
    *,
    empty: str = "—",
    whole: Callable[[int], str] = _group_whole,
    decimal: Callable[[float], str] = _group_decimal,
) -> str:
    """Return a table value as the text a PDF cell shows."""
    if value is None:
        return empty
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return whole(value)
    if isinstance(value, float):
        return decimal(value)
    return str(value)


def add_table_sheet(book: Any, title: str, header: list[str], rows: list[list[Any]]) -> Any:
    """Add a sheet of the table to an openpyxl workbook: a bold header, cells safe from formulas."""
    from openpyxl.styles import Font  # noqa: PLC0415 -- only for the file

    sheet = book.create_sheet(make_sheet_title(title, book.sheetnames))
    sheet.append(escape_row(header))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append(escape_row(row))
    return sheet


def build_xlsx(tables: Sequence[Table]) -> bytes:
    """Return the tables as an Excel workbook, one sheet each, cells safe from formulas."""
    from openpyxl import Workbook  # noqa: PLC0415 -- only for the file

    book = Workbook()
    book.remove(book.active)
    for title, header, rows in tables:
        sheet = add_table_sheet(book, title, header, rows)
        for index, _header in enumerate(header):
            letter = sheet.cell(row=1, column=index + 1).column_letter
            sheet.column_dimensions[letter].width = 18 if index else 28
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def build_pdf(tables: Sequence[Table], title: str, subtitle: str = "") -> bytes:
    """Return the tables as an A4 PDF with the Chinese font embedded."""
    from reportlab.lib import colors  # noqa: PLC0415 -- only for the file
    from reportlab.lib.pagesizes import A4  # noqa: PLC0415
    from reportlab.lib.styles import ParagraphStyle  # noqa: PLC0415
    from reportlab.lib.units import mm  # noqa: PLC0415
    from reportlab.platypus import (  # noqa: PLC0415
        Paragraph,
        SimpleDocTemplate,
        Spacer,
    )
    from reportlab.platypus import Table as PdfTable  # noqa: PLC0415

    register_pdf_font()

    def style(size: int, text: str) -> ParagraphStyle:
        return ParagraphStyle("p", fontName=choose_font(text), fontSize=size, leading=size + 3)

    story: list[Any] = [Paragraph(escape(title), style(14, title))]
    if subtitle:
        story.append(Paragraph(escape(subtitle), style(8, subtitle)))
    story.append(Spacer(1, 6 * mm))
    for name, header, rows in tables:
        story.append(Paragraph(escape(name), style(11, name)))
        cells = [[str(h) for h in header], *[[format_cell(v) for v in row] for row in rows]]
        # Long text (comments) wraps inside its cell.
        wrapped = [
            [Paragraph(escape(c), style(8, c)) if len(c) > 40 else c for c in row] for row in cells
        ]
        table = PdfTable(wrapped, repeatRows=1, hAlign="LEFT")
        commands: list[Any] = [
            ("FONTNAME", (0, 0), (-1, -1), CJK_FONT),
            ("FONTSIZE", (0, 0), (-1, -1), 8),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e0e7ff")),
            ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#c7c7c7")),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ]
        commands += [
            ("FONTNAME", (c, r), (c, r), LATIN_FONT)
            for r, row in enumerate(cells)
            for c, text in enumerate(row)
            if text.isascii()
        ]
        table.setStyle(commands)
        story += [table, Spacer(1, 5 * mm)]
    buffer = io.BytesIO()
    SimpleDocTemplate(
        buffer, pagesize=A4, title=title, leftMargin=15 * mm, rightMargin=15 * mm
    ).build(story)
    return buffer.getvalue()


def render_file(
    request: HttpRequest, *, tables: Sequence[Table], title: str, name: str, kind: str, label: str
) -> HttpResponse:
    """Return the report as an Excel or PDF download and audit the export."""
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    subtitle = _("Exported %(when)s") % {"when": timezone.localtime().strftime("%Y-%m-%d %H:%M")}
    if kind == "xlsx":
        response = HttpResponse(build_xlsx(tables), content_type=XLSX_TYPE)
    else:
        response = HttpResponse(build_pdf(tables, title, subtitle), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.{kind}"'
    audit.record_event(
        audit.EXPORT,
        actor=request.user,
        target_type=label,
        detail={"report": name, "format": kind, "filters": sorted(request.GET.keys())},
        request=request,
    )
    return response
