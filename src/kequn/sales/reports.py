"""The sales report page and its Excel and PDF files: forecast, accuracy, funnel, win rates."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from kequn.sales import selectors
from kequn.sales.models import Pipeline
from kequn.security.formulas import escape_row, make_sheet_title

CJK_FONT = "KequnSalesCJK"


def _month(value: str | None) -> date:
    try:
        year, month = (value or "").split("-")[:2]
        return date(int(year), int(month), 1)
    except ValueError:
        return selectors.month_start(timezone.localdate())


def build_report(user: Any, params: Any) -> dict[str, Any]:
    """Return the report's tables for the user's scope (params: start, months, quarter, pipeline)."""
    start = _month(params.get("start"))
    try:
        months = min(max(int(params.get("months", 6)), 1), 24)
    except ValueError:
        months = 6
    by_quarter = params.get("quarter") == "1"
    pipelines = list(Pipeline.objects.filter(is_active=True))
    chosen = next((p for p in pipelines if str(p.pk) == params.get("pipeline")), None)
    chosen = chosen or (pipelines[0] if pipelines else None)
    forecast = selectors.get_forecast(user, start=start, months=months, by_quarter=by_quarter)
    tables: list[tuple[str, list[str], list[list[Any]]]] = [
        (
            _("Forecast"),
            [
                _("Period"),
                _("Pipeline"),
                _("Weighted"),
                _("Best case"),
                _("Commit"),
                _("Won"),
                _("Quota"),
                _("Attainment"),
            ],
            [
                [
                    r.period,
                    r.pipeline,
                    r.weighted,
                    r.best_case,
                    r.commit,
                    r.won,
                    r.quota,
                    None if r.attainment is None else round(r.attainment, 3),
                ]
                for r in forecast
            ],
        ),
        (
            _("Forecast accuracy"),
            [_("Month"), _("Forecast at the start of the month"), _("Won"), _("Accuracy")],
            [
                [r.month, r.forecast, r.won, None if r.accuracy is None else round(r.accuracy, 3)]
                for r in selectors.get_forecast_accuracy(user)
            ],
        ),
    ]
    if chosen is not None:
        tables.append(
            (
                _("Funnel"),
                [_("Stage"), _("Deals reaching it"), _("Moving on"), _("Average days in stage")],
                [
                    [
                        s.stage.name,
                        s.reached,
                        None if s.conversion is None else round(s.conversion, 3),
                        None if s.avg_days is None else round(s.avg_days, 1),
                    ]
                    for s in selectors.get_funnel(user, chosen)
                ],
            )
        )
    velocity = selectors.get_velocity(user, chosen)
    tables.append(
        (
            _("Velocity"),
            [
                _("Open deals"),
                _("Average won amount"),
                _("Win rate"),
                _("Cycle (days)"),
                _("Velocity per day"),
            ],
            [
                [
                    velocity.open_deals,
                    velocity.average_won_amount,
                    None if velocity.win_rate is None else round(velocity.win_rate, 3),
                    None if velocity.cycle_days is None else round(velocity.cycle_days, 1),
                    velocity.per_day,
                ]
            ],
        )
    )
    for key, title in (
        ("source", _("Win rate by source")),
        ("owner", _("Win rate by rep")),
        ("product", _("Win rate by product")),
    ):
        tables.append(
            (
                title,
                [_("Group"), _("Won"), _("Lost"), _("Win rate")],
                [
                    [r.key, r.won, r.lost, None if r.rate is None else round(r.rate, 3)]
                    for r in selectors.get_win_rates(user, key)[:50]
                ],
            )
        )
    return {
        "tables": tables,
        "start": f"{start:%Y-%m}",
        "months": months,
        "quarter": by_quarter,
        "pipelines": pipelines,
        "pipeline": chosen,
    }


def build_xlsx(tables: list[tuple[str, list[str], list[list[Any]]]]) -> bytes:
    """Return the tables as an Excel workbook, one sheet each."""
    from openpyxl import Workbook  # noqa: PLC0415 -- only for the file

    book = Workbook()
    book.remove(book.active)
    taken: list[str] = []
    for title, header, rows in tables:
        sheet = book.create_sheet(make_sheet_title(title, taken))
        taken.append(sheet.title)
        sheet.append(escape_row(header))
        for row in rows:
            sheet.append(escape_row(row))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def build_pdf(tables: list[tuple[str, list[str], list[list[Any]]]], title: str) -> bytes:
    """Return the tables as a PDF (A4 landscape) with a Chinese font when one is installed."""
    from reportlab.lib.pagesizes import A4, landscape  # noqa: PLC0415 -- only for the file
    from reportlab.lib.styles import ParagraphStyle  # noqa: PLC0415
    from reportlab.pdfbase import pdfmetrics  # noqa: PLC0415
    from reportlab.pdfbase.ttfonts import TTFont  # noqa: PLC0415
    from reportlab.platypus import (  # noqa: PLC0415
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
    )

    font = "Helvetica"
    path = Path(str(getattr(settings, "PDF_FONT", "")))
    if path.is_file():
        if CJK_FONT not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont(CJK_FONT, str(path), subfontIndex=0))
        font = CJK_FONT
    heading = ParagraphStyle("h", fontName=font, fontSize=14, leading=18)
    buffer = io.BytesIO()
    story: list[Any] = [Paragraph(title, heading), Spacer(1, 8)]
    for name, header, rows in tables:
        story.append(Paragraph(name, heading))
        cells = [header, *[["" if v is None else str(v) for v in row] for row in rows]]
        table = Table(cells, repeatRows=1)
        table.setStyle([("FONTNAME", (0, 0), (-1, -1), font), ("FONTSIZE", (0, 0), (-1, -1), 8)])
        story += [table, Spacer(1, 10)]
    SimpleDocTemplate(buffer, pagesize=landscape(A4)).build(story)
    return buffer.getvalue()


def render_file(context: dict[str, Any], kind: str) -> HttpResponse:
    """Return the report as an Excel or PDF download."""
    stamp = timezone.localdate().isoformat()
    if kind == "xlsx":
        response = HttpResponse(
            build_xlsx(context["tables"]),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    else:
        response = HttpResponse(
            build_pdf(context["tables"], str(context["title"])), content_type="application/pdf"
        )
    response["Content-Disposition"] = f'attachment; filename="sales-report-{stamp}.{kind}"'
    return response
