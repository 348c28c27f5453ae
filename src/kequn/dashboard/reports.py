"""The weekly summary report: the last seven days as PDF and Excel files in the data directory."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.utils import timezone, translation

from kequn.dashboard.exports import build_dashboard_pdf, build_dashboard_xlsx
from kequn.dashboard.queries import Filters, build_dashboard
from kequn.security.reportfiles import ReportFontError


def get_reports_dir() -> Path:
    """Return the directory the report files are written to."""
    return Path(settings.DATA_DIR) / "reports"


def list_reports() -> list[Path]:
    """Return the report files, newest first."""
    folder = get_reports_dir()
    if not folder.is_dir():
        return []
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix in (".pdf", ".xlsx")]
    return sorted(files, key=lambda p: p.name, reverse=True)


def write_weekly_report(*, now: datetime | None = None) -> list[Path]:
    """Write the last seven days' summary as PDF and Excel files into the reports directory."""
    now = now or timezone.now()
    folder = get_reports_dir()
    folder.mkdir(parents=True, exist_ok=True)
    year, week, _ = timezone.localtime(now).isocalendar()
    stem = f"kequn-weekly-{year}-W{week:02d}"
    font_error = None
    with translation.override(settings.LANGUAGE_CODE):
        data = build_dashboard(Filters(period=7))
        contents = {".xlsx": build_dashboard_xlsx(data)}
        try:
            contents[".pdf"] = build_dashboard_pdf(data)
        except ReportFontError as exc:
            font_error = exc
    written = []
    for suffix, content in contents.items():
        path = folder / f"{stem}{suffix}"
        # Write then rename, so a reader never sees half a file and a re-run replaces it whole.
        partial = path.with_suffix(suffix + ".part")
        partial.write_bytes(content)
        partial.replace(path)
        written.append(path)
    if font_error is not None:
        # The Excel file is written; the PDF waits for the font.
        raise font_error
    return sorted(written)
