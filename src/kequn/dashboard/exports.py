"""Build Excel and PDF files of the dashboard and of admin lists, in memory."""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.styles import Font
from reportlab.graphics.shapes import Drawing, Rect, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import (
    KeepTogether,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from kequn.dashboard import numbers
from kequn.dashboard.constants import CHART_TITLES
from kequn.security.formulas import escape_row, make_sheet_title
from kequn.security.reportfiles import (
    LATIN_FONT,
    add_table_sheet,
    choose_font,
    format_cell,
    register_pdf_font,
)

LIST_PDF_ROWS = 2_000
LIST_XLSX_ROWS = 1_000_000
ACCENT = colors.HexColor("#6366f1")
# Chart table columns holding money (two decimals); other numeric columns are counts.
MONEY_HEADERS = ("Revenue", "Total CLV", "CLV at stake", "Revenue, previous period")


def _num(value: float | None, kind: str = "count") -> str:
    return numbers.format_number(value, kind)


def _change(value: float | None) -> str:
    return numbers.format_change(value)


def _filters_line(data: dict[str, Any]) -> str:
    filters = data["filters"]
    channel = filters.channel.name if filters.channel else _("all stores and channels")
    refresh = data.get("refresh")
    as_of = timezone.localtime(refresh.as_of).strftime("%Y-%m-%d %H:%M") if refresh else "—"
    return _("Last %(days)s days, %(channel)s; figures as of %(as_of)s") % {
        "days": filters.period,
        "channel": channel,
        "as_of": as_of,
    }


def get_chart_tables(data: dict[str, Any]) -> list[tuple[str, list[str], list[list[Any]]]]:
    """Return each chart of the dashboard as (title, header, rows) of plain values."""
    if data.get("state") != "ready":
        return []
    tables = [
        (
            str(CHART_TITLES["rfm"]),
            [_("R score"), _("F score"), _("Customers"), _("Revenue")],
            [
                [cell["r"], cell["f"], cell["customers"], round(cell["revenue"], 2)]
                for row in data["rfm"]["rows"]
                for cell in row["cells"]
            ],
        ),
        (
            str(CHART_TITLES["stages"]),
            [_("Stage"), _("Customers"), _("Revenue")],
            [[str(s["label"]), s["customers"], round(s["revenue"], 2)] for s in data["stages"]],
        ),
        (
            str(CHART_TITLES["flows"]),
            [_("Stage before"), _("Stage after"), _("Customers")],
            [[str(f["from_label"]), str(f["to_label"]), f["customers"]] for f in data["flows"]],
        ),
        (
            str(CHART_TITLES["cohorts"]),
            [
                _("First purchase month"),
                _("Customers"),
                *[f"+{k}" for k in data["cohorts"]["offsets"]],
            ],
            [
                [
                    row["month"],
                    row["size"],
                    *[round(c["pct"], 1) if c else None for c in row["cells"]],
                ]
                for row in data["cohorts"]["rows"]
            ],
        ),
        (
            str(CHART_TITLES["clv"]),
            [_("CLV"), _("Customers"), _("Total CLV")],
            [[b["label"], b["customers"], round(b["amount"], 2)] for b in data["clv"]],
        ),
        (
            str(CHART_TITLES["churn"]),
            [_("Churn risk"), _("Customers"), _("CLV at stake")],
            [[b["label"], b["customers"], round(b["amount"], 2)] for b in data["churn"]],
        ),
        (
            str(CHART_TITLES["channel_breakdown"]),
            [_("Store or channel"), _("Revenue"), _("Purchases"), _("Active customers")],
            [
                [c["label"], round(c["revenue"], 2), c["purchases"], c["customers"]]
                for c in data["channel_breakdown"]
            ],
        ),
        (
            str(CHART_TITLES["provinces"]),
            [_("Province"), _("Revenue"), _("Active customers")],
            [[p["label"], round(p["revenue"], 2), p["customers"]] for p in data["provinces"]],
        ),
        (
            str(CHART_TITLES["cities"]),
            [_("City"), _("Revenue"), _("Active customers")],
            [[p["label"], round(p["revenue"], 2), p["customers"]] for p in data["cities"]],
        ),
    ]
    trend = data.get("trend")
    if trend and trend["points"]:
        previous_revenue = trend["previous_revenue"] or [None] * len(trend["labels"])
        previous_orders = trend["previous_orders"] or [None] * len(trend["labels"])
        tables.insert(
            0,
            (
                str(CHART_TITLES["trend"]),
                [
                    _("Starting"),
                    _("Revenue"),
                    _("Orders"),
                    _("Revenue, previous period"),
                    _("Orders, previous period"),
                ],
                [
                    list(row)
                    for row in zip(
                        trend["labels"],
                        trend["revenue"],
                        trend["orders"],
                        previous_revenue,
                        previous_orders,
                        strict=True,
                    )
                ],
            ),
        )
    return tables


def get_kpi_rows(data: dict[str, Any]) -> list[list[Any]]:
    """Return the headline numbers as rows of label, current, previous, change (%).

    Values are rounded as the page prints them (half up), so Excel and PDF show its digits.
    """
    rows = []
    for k in data.get("kpis", []):
        places = numbers.DECIMALS.get(k["kind"], 2)
        current = numbers.round_half_up(k["value"], places)
        previous = numbers.round_half_up(k["previous"], places)
        change = numbers.round_half_up(k["change"], 1)
        rows.append(
            [
                str(k["label"]),
                None if current is None else float(current),
                None if previous is None else float(previous),
                None if change is None else float(change),
            ]
        )
    return rows


def get_empty_message(data: dict[str, Any]) -> str:
    """Explain why there are no figures and what to do next."""
    if data.get("state") == "no_customers":
        return _("There are no customers yet. Import customers, or run the demo with `kequn demo`.")
    return _(
        "The dashboard has not been computed yet. Run `kequn analytics refresh` or start "
        "`kequn worker`; figures appear after the next refresh."
    )


def build_dashboard_xlsx(data: dict[str, Any]) -> bytes:
    """Return the dashboard as an Excel workbook: a summary sheet and one sheet per chart."""
    book = Workbook()
    sheet = book.active
    sheet.title = _("Summary")[:31]
    sheet.append([_("Kequn dashboard")])
    sheet["A1"].font = Font(bold=True, size=14)
    sheet.append(escape_row([_filters_line(data)]))  # a channel name may hold anything
    sheet.append([])
    if data.get("state") != "ready":
        sheet.append([get_empty_message(data)])
    else:
        sheet.append([_("Measure"), _("This period"), _("Previous period"), _("Change (%)")])
        for cell in sheet[sheet.max_row]:
            cell.font = Font(bold=True)
        for kpi, row in zip(data["kpis"], get_kpi_rows(data), strict=True):
            kind = kpi["kind"]
            sheet.append(
                escape_row(
                    [
                        row[0],
                        numbers.to_excel(kpi["value"], kind),
                        numbers.to_excel(kpi["previous"], kind),
                        numbers.to_excel(kpi["change"], numbers.PERCENT),
                    ]
                )
            )
            line = sheet[sheet.max_row]
            line[1].number_format = line[2].number_format = numbers.get_excel_format(kind)
            line[3].number_format = "+0.0%;-0.0%;0.0%"
        sheet.column_dimensions["A"].width = 28
        for title, header, rows in get_chart_tables(data):
            chart_sheet = add_table_sheet(book, title, header, rows)
            _format_columns(chart_sheet, title, header)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _column_kinds(title: str, header: list[str]) -> list[str]:
    """Return the kind of figure in each column of a chart table: count, money or percent."""
    money = {str(_(name)) for name in MONEY_HEADERS}
    if title == str(CHART_TITLES["cohorts"]):
        return [numbers.COUNT, numbers.COUNT] + [numbers.PERCENT] * (len(header) - 2)
    return [numbers.MONEY if name in money else numbers.COUNT for name in header]


def _format_columns(sheet: Any, title: str, header: list[str]) -> None:
    """Give money columns two decimals, counts thousands separators, percentages a % sign."""
    for column, kind in enumerate(_column_kinds(title, header), start=1):
        # Chart tables hold percentages as 0-100, not as fractions.
        fmt = '0.0"%"' if kind == numbers.PERCENT else numbers.get_excel_format(kind)
        for (cell,) in sheet.iter_rows(min_row=2, min_col=column, max_col=column):
            if isinstance(cell.value, int | float) and not isinstance(cell.value, bool):
                cell.number_format = fmt


def _para(text: str, size: int = 9, bold: bool = False) -> Paragraph:
    font = choose_font(text)
    if bold and font == LATIN_FONT:
        font = "Helvetica-Bold"
    style = ParagraphStyle("k", fontName=font, fontSize=size, leading=size * 1.3)
    return Paragraph(text.replace("&", "&amp;").replace("<", "&lt;"), style)


def _table(
    header: list[str],
    rows: Iterable[list[Any]],
    widths: list[float] | None = None,
    kinds: list[str] | None = None,
) -> Table:
    body = [[_para(str(h), bold=True) for h in header]]
    for row in rows:
        body.append(
            [
                _para(
                    numbers.format_number(v, kinds[i])
                    if kinds and isinstance(v, int | float) and not isinstance(v, bool)
                    else _cell_text(v)
                )
                for i, v in enumerate(row)
            ]
        )
    table = Table(body, colWidths=widths, repeatRows=1, hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef2ff")),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#cbd5e1")),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
    )
    return table


def _text(
    x: float,
    y: float,
    text: str,
    size: float = 7,
    anchor: str = "start",
    colour: Any = colors.black,
) -> String:
    return String(
        x, y, text, fontName=choose_font(text), fontSize=size, textAnchor=anchor, fillColor=colour
    )


def _bar_drawing(items: list[tuple[str, float, str]], width: float = 170 * mm) -> Drawing:
    """Draw horizontal bars with their labels and values."""
    row = 12
    label_w, value_w = 45 * mm, 30 * mm
    drawing = Drawing(width, row * max(len(items), 1) + 4)
    top = max((value for _, value, _ in items), default=0)
    for i, (label, value, shown) in enumerate(items):
        y = drawing.height - (i + 1) * row
        drawing.add(_text(0, y + 3, label[:24]))
        length = (width - label_w - value_w) * (value / top) if top else 0
        drawing.add(
            Rect(label_w, y + 1, max(length, 0.5), row - 3, fillColor=ACCENT, strokeColor=None)
        )
        drawing.add(_text(label_w + length + 3, y + 3, shown))
    return drawing


def _heatmap_drawing(
    rows: list[str], columns: list[str], values: list[list[float | None]], shown: list[list[str]]
) -> Drawing:
    """Draw a heatmap: darker cells for larger values, each cell labelled."""
    cell_w, cell_h, label_w = 16 * mm, 7 * mm, 22 * mm
    drawing = Drawing(label_w + cell_w * len(columns), cell_h * (len(rows) + 1))
    top = max((v for row in values for v in row if v is not None), default=0)
    for j, column in enumerate(columns):
        drawing.add(
            _text(
                label_w + j * cell_w + cell_w / 2,
                drawing.height - cell_h + 6,
                column,
                anchor="middle",
            )
        )
    for i, label in enumerate(rows):
        y = drawing.height - (i + 2) * cell_h
        drawing.add(_text(0, y + 7, label))
        for j, value in enumerate(values[i]):
            if value is None:
                continue
            strength = value / top if top else 0
            fill = colors.Color(0.39, 0.4, 0.95, alpha=0.1 + 0.8 * strength)
            drawing.add(
                Rect(
                    label_w + j * cell_w,
                    y,
                    cell_w - 1,
                    cell_h - 1,
                    fillColor=fill,
                    strokeColor=None,
                )
            )
            ink = colors.white if strength > 0.5 else colors.black
            drawing.add(
                _text(
                    label_w + j * cell_w + cell_w / 2,
                    y + 7,
                    shown[i][j],
                    size=6.5,
                    anchor="middle",
                    colour=ink,
                )
            )
    return drawing


def _chart_drawings(data: dict[str, Any]) -> list[tuple[str, Drawing]]:
    rfm = data["rfm"]
    out = [
        (
            str(CHART_TITLES["rfm"]),
            _heatmap_drawing(
                [f"R {row['r']}" for row in rfm["rows"]],
                [f"F {f}" for f in rfm["columns"]],
                [[c["customers"] for c in row["cells"]] for row in rfm["rows"]],
                [
                    [numbers.format_number(c["customers"]) for c in row["cells"]]
                    for row in rfm["rows"]
                ],
            ),
        ),
        (
            str(CHART_TITLES["stages"]),
            _bar_drawing(
                [
                    (str(s["label"]), s["customers"], numbers.format_number(s["customers"]))
                    for s in data["stages"]
                ]
            ),
        ),
    ]
    if data["flows"]:
        out.append(
            (
                str(CHART_TITLES["flows"]),
                _bar_drawing(
                    [
                        (
                            f"{f['from_label']} → {f['to_label']}",
                            f["customers"],
                            numbers.format_number(f["customers"]),
                        )
                        for f in data["flows"]
                    ]
                ),
            )
        )
    cohorts = data["cohorts"]
    if cohorts["rows"]:
        out.append(
            (
                str(CHART_TITLES["cohorts"]),
                _heatmap_drawing(
                    [f"{r['month']} ({numbers.format_number(r['size'])})" for r in cohorts["rows"]],
                    [f"+{k}" for k in cohorts["offsets"]],
                    [[c["pct"] if c else None for c in r["cells"]] for r in cohorts["rows"]],
                    [
                        [
                            numbers.format_number(c["pct"], numbers.PERCENT, places=0) if c else ""
                            for c in r["cells"]
                        ]
                        for r in cohorts["rows"]
                    ],
                ),
            )
        )
    for key in ("clv", "churn"):
        if data[key]:
            out.append(
                (
                    str(CHART_TITLES[key]),
                    _bar_drawing(
                        [
                            (b["label"], b["customers"], numbers.format_number(b["customers"]))
                            for b in data[key]
                        ]
                    ),
                )
            )
    for key in ("channel_breakdown", "provinces", "cities"):
        if data[key]:
            out.append(
                (
                    str(CHART_TITLES[key]),
                    _bar_drawing(
                        [
                            (
                                b["label"],
                                b["revenue"],
                                numbers.format_number(b["revenue"], numbers.MONEY),
                            )
                            for b in data[key]
                        ]
                    ),
                )
            )
    return out


def build_dashboard_pdf(data: dict[str, Any]) -> bytes:
    """Return the dashboard as a PDF: the headline numbers, then each chart drawn as vectors."""
    register_pdf_font()
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, title=_("Kequn dashboard")
    )
    story: list[Any] = [
        _para(_("Kequn dashboard"), 16, bold=True),
        Spacer(1, 3 * mm),
        _para(_filters_line(data)),
        Spacer(1, 5 * mm),
    ]
    if data.get("state") != "ready":
        story.append(_para(get_empty_message(data), 11))
    else:
        kinds = {k["label"]: k["kind"] for k in data["kpis"]}
        rows = [
            [label, _num(cur, kinds[label]), _num(prev, kinds[label]), _change(change)]
            for label, cur, prev, change in get_kpi_rows(data)
        ]
        story.append(
            _table(
                [_("Measure"), _("This period"), _("Previous period"), _("Change")],
                rows,
                [60 * mm, 40 * mm, 40 * mm, 30 * mm],
            )
        )
        for title, drawing in _chart_drawings(data):
            story.append(
                KeepTogether(
                    [Spacer(1, 6 * mm), _para(title, 11, bold=True), Spacer(1, 2 * mm), drawing]
                )
            )
        story.append(PageBreak())
        for title, header, table_rows in get_chart_tables(data):
            if table_rows:
                story.append(
                    KeepTogether(
                        [
                            _para(title, 11, bold=True),
                            Spacer(1, 2 * mm),
                            _table(header, table_rows[:60], kinds=_column_kinds(title, header)),
                        ]
                    )
                )
                story.append(Spacer(1, 5 * mm))
    doc.build(story)
    return buffer.getvalue()


def build_list_xlsx(title: str, header: list[str], rows: Iterable[list[Any]]) -> bytes:
    """Return rows of an admin list as an Excel workbook (streamed: large lists fit in memory)."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(make_sheet_title(title))
    sheet.append(escape_row(header))
    for n, row in enumerate(rows):
        if n >= LIST_XLSX_ROWS:
            break
        sheet.append(escape_row(row))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def build_list_pdf(
    title: str, subtitle: str, header: list[str], rows: Iterable[list[Any]]
) -> bytes:
    """Return rows of an admin list as a PDF table (the first LIST_PDF_ROWS rows)."""
    register_pdf_font()
    kept, more = [], False
    for n, row in enumerate(rows):
        if n >= LIST_PDF_ROWS:
            more = True
            break
        kept.append([_cell_text(v) for v in row])
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer, pagesize=landscape(A4), leftMargin=10 * mm, rightMargin=10 * mm, title=title
    )
    story: list[Any] = [
        _para(title, 14, bold=True),
        Spacer(1, 2 * mm),
        _para(subtitle),
        Spacer(1, 4 * mm),
    ]
    story.append(_table(header, kept) if kept else _para(_("The list is empty.")))
    if more:
        story.append(Spacer(1, 3 * mm))
        story.append(
            _para(
                _("Only the first %(n)s rows are in the PDF; export to Excel for all rows.")
                % {"n": numbers.format_number(LIST_PDF_ROWS)}
            )
        )
    doc.build(story)
    return buffer.getvalue()


def _cell_text(value: Any) -> str:
    # Lists show amounts as money (two decimals) and leave empty cells blank.
    return format_cell(
        value,
        empty="",
        whole=lambda n: numbers.format_number(n, numbers.COUNT),
        decimal=lambda n: numbers.format_number(n, numbers.MONEY),
    )
