"""Excel and PDF files of the service and survey reports, built in memory.

Feedback sits above service and builds its survey report files with these functions too.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
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
CJK_FONT = "KequnServiceCJK"
LATIN_FONT = "Helvetica"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMATS = ("xlsx", "pdf")


class ReportFontError(RuntimeError):
    """The Chinese font the PDF embeds is missing or unreadable."""


def build_xlsx(tables: Sequence[Table]) -> bytes:
    """Return the tables as an Excel workbook, one sheet each, cells safe from formulas."""
    from openpyxl import Workbook  # noqa: PLC0415 -- only for the file
    from openpyxl.styles import Font  # noqa: PLC0415

    book = Workbook()
    book.remove(book.active)
    taken: list[str] = []
    for title, header, rows in tables:
        sheet = book.create_sheet(make_sheet_title(title, taken))
        taken.append(sheet.title)
        sheet.append(escape_row(header))
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in rows:
            sheet.append(escape_row(row))
        for index, _header in enumerate(header):
            letter = sheet.cell(row=1, column=index + 1).column_letter
            sheet.column_dimensions[letter].width = 18 if index else 28
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _register_font() -> None:
    """Register the Chinese TrueType font named by KEQUN_PDF_FONT, once."""
    from reportlab.pdfbase import pdfmetrics  # noqa: PLC0415 -- only for the file
    from reportlab.pdfbase.ttfonts import TTFError, TTFont  # noqa: PLC0415

    if CJK_FONT in pdfmetrics.getRegisteredFontNames():
        return
    path = str(settings.PDF_FONT)
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
        pdfmetrics.registerFont(TTFont(CJK_FONT, path, subfontIndex=0))
    except (OSError, TTFError) as exc:
        raise ReportFontError(
            _("PDF export cannot use the font %(path)s (%(error)s): %(hint)s.")
            % {"path": path, "error": exc, "hint": hint}
        ) from None


def _font_for(text: str) -> str:
    # Latin text stays in Helvetica so numbers remain plain, searchable text in the file.
    return LATIN_FONT if text.isascii() else CJK_FONT


def _cell_text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


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

    _register_font()

    def style(size: int, text: str) -> ParagraphStyle:
        return ParagraphStyle("p", fontName=_font_for(text), fontSize=size, leading=size + 3)

    story: list[Any] = [Paragraph(escape(title), style(14, title))]
    if subtitle:
        story.append(Paragraph(escape(subtitle), style(8, subtitle)))
    story.append(Spacer(1, 6 * mm))
    for name, header, rows in tables:
        story.append(Paragraph(escape(name), style(11, name)))
        cells = [[str(h) for h in header], *[[_cell_text(v) for v in row] for row in rows]]
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


def build_sla_tables(report: Any, queues: list[dict[str, Any]]) -> list[Table]:
    """Return the SLA report (selectors.SlaReport) and the open queues as tables."""
    from kequn.service.models import Priority  # noqa: PLC0415 -- labels only

    def percent(rate: float | None) -> float | None:
        return round(100 * rate, 1) if rate is not None else None

    labels = dict(Priority.choices)
    return [
        (
            _("SLA compliance"),
            [_("Figure"), _("Value")],
            [
                [_("Tickets"), report.tickets],
                [_("First responses on time"), report.first_response_met],
                [_("First responses late"), report.first_response_missed],
                [_("First responses on time (%)"), percent(report.first_response_rate)],
                [_("Resolutions on time"), report.resolution_met],
                [_("Resolutions late"), report.resolution_missed],
                [_("Resolutions on time (%)"), percent(report.resolution_rate)],
                [_("Median first response (hours)"), report.median_first_response_hours],
                [_("Median resolution (hours)"), report.median_resolution_hours],
            ],
        ),
        (
            _("By priority"),
            [_("Priority"), _("Tickets"), _("With a missed deadline")],
            [
                [str(labels.get(row["priority"], row["priority"])), row["tickets"], row["breached"]]
                for row in report.by_priority
            ],
        ),
        (
            _("Open tickets by queue"),
            [_("Queue"), _("Open tickets"), _("Due soon"), _("Breached")],
            [[q["queue"] or _("No queue"), q["open"], q["warning"], q["breached"]] for q in queues],
        ),
    ]
