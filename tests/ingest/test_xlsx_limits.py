"""Hostile Excel files are refused from their zip directory, fast and in little memory.

The two files of the security probe are rebuilt here: a small .xlsx whose shared strings
unpack to more than 100 MB, and one declaring a million empty rows. Each must be refused
before openpyxl parses it, within 2 seconds and a few MB, naming the limit and the file.
"""

from __future__ import annotations

import io
import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from openpyxl import Workbook

from kequn.customers.models import Customer
from kequn.ingest.readers import ImportFileError, iter_rows, open_file

pytestmark = pytest.mark.django_db

SHEET = "xl/worksheets/sheet1.xml"
STRINGS = "xl/sharedStrings.xml"
MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def make_xlsx(path: Path, rows: list[list[str]], replace: dict[str, object] | None = None) -> Path:
    """Write a real workbook, then swap some of its zip members for the given contents.

    A content is bytes, or an iterable of byte chunks streamed into the member (so a 100 MB
    member is never held in memory by the test either).
    """
    book = Workbook()
    for row in rows:
        book.active.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    replace = replace or {}
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        names = source.namelist()
        for name in names:
            if name not in replace:
                out.writestr(name, source.read(name))
        for name, content in replace.items():
            with out.open(name, "w", force_zip64=True) as member:
                for chunk in [content] if isinstance(content, bytes) else content:
                    member.write(chunk)
    return path


def huge_shared_strings(megabytes: int):
    """Yield a sharedStrings.xml of the given size, one long text per entry."""
    entry = b"<si><t>" + b"A" * (1024 * 1024 - 16) + b"</t></si>"
    yield f'<sst xmlns="{MAIN}" count="{megabytes}" uniqueCount="{megabytes}">'.encode()
    for _ in range(megabytes):
        yield entry
    yield b"</sst>"


def empty_rows_sheet(rows: int, declare: bool = True):
    """Yield a sheet1.xml holding a header row and then `rows` empty rows."""
    dimension = f'<dimension ref="A1:B{rows + 1}"/>' if declare else ""
    yield f'<worksheet xmlns="{MAIN}">{dimension}<sheetData>'.encode()
    yield b'<row r="1"><c r="A1" t="inlineStr"><is><t>email</t></is></c></row>'
    # Rows without a number follow the previous one, as Excel allows.
    for start in range(0, rows, 10_000):
        yield b"<row/>" * min(10_000, rows - start)
    yield b"</sheetData></worksheet>"


def assert_refused_fast(path: Path, *needles: str) -> str:
    """Open the file; assert a quick, lean refusal whose message names the file and limit."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(ImportFileError) as caught:
            open_file(path)
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(caught.value)
    assert elapsed < 2.0, f"refusal took {elapsed:.2f} s"
    assert peak < 20 * 1024 * 1024, f"refusal used {peak / 1e6:.0f} MB"
    assert message.startswith(path.name + ":"), message
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    return message


def test_shared_strings_unpacking_to_over_100_mb_are_refused_unparsed(tmp_path):
    path = make_xlsx(
        tmp_path / "strings.xlsx",
        [["email", "name"], ["a@example.com", "A"]],
        {STRINGS: huge_shared_strings(110)},
    )
    assert path.stat().st_size < 1024 * 1024  # small on disk, like the 438 KB probe file
    assert_refused_fast(path, "KEQUN_XLSX_MAX_MB", "100")


def test_a_million_declared_rows_are_refused_before_parsing(tmp_path):
    path = make_xlsx(tmp_path / "rows.xlsx", [["email"]], {SHEET: empty_rows_sheet(1_000_000)})
    assert path.stat().st_size < 1024 * 1024
    assert_refused_fast(path, "KEQUN_XLSX_MAX_ROWS", "1,000,001", "1,000,000")


def test_too_many_distinct_texts_are_refused(tmp_path, settings):
    settings.KEQUN_XLSX_MAX_STRINGS = 1_000
    strings = f'<sst xmlns="{MAIN}" count="5000" uniqueCount="5000">'.encode()
    strings += b"".join(b"<si><t>t%d</t></si>" % n for n in range(5000)) + b"</sst>"
    path = make_xlsx(tmp_path / "many.xlsx", [["email"]], {STRINGS: strings})
    assert_refused_fast(path, "KEQUN_XLSX_MAX_STRINGS", "5,000")


def test_too_many_declared_or_real_columns_are_refused(tmp_path):
    declared = (
        f'<worksheet xmlns="{MAIN}"><dimension ref="A1:ZZ2"/><sheetData>'
        '<row r="1"><c r="A1" t="inlineStr"><is><t>email</t></is></c></row>'
        "</sheetData></worksheet>"
    ).encode()
    path = make_xlsx(tmp_path / "wide.xlsx", [["email"]], {SHEET: declared})
    assert_refused_fast(path, "KEQUN_XLSX_MAX_COLUMNS", "702")
    # A real header row 600 cells wide.
    path = make_xlsx(tmp_path / "wide2.xlsx", [[f"c{n}" for n in range(600)]])
    assert_refused_fast(path, "KEQUN_XLSX_MAX_COLUMNS", "600")


def test_rows_beyond_the_limit_stop_the_stream_when_the_sheet_hides_its_size(tmp_path, settings):
    settings.KEQUN_XLSX_MAX_ROWS = 1_000
    path = make_xlsx(
        tmp_path / "hidden.xlsx", [["email"]], {SHEET: empty_rows_sheet(5_000, declare=False)}
    )
    info = open_file(path)  # nothing declared: the header is read
    started = time.perf_counter()
    with pytest.raises(ImportFileError, match="KEQUN_XLSX_MAX_ROWS"):
        for _ in iter_rows(info):
            pass
    assert time.perf_counter() - started < 2.0


def test_the_import_command_stops_with_the_limit_and_imports_nothing(tmp_path):
    path = make_xlsx(tmp_path / "rows.xlsx", [["email"]], {SHEET: empty_rows_sheet(1_000_000)})
    with pytest.raises(CommandError, match=r"rows\.xlsx: .*KEQUN_XLSX_MAX_ROWS"):
        call_command("import", "customers", str(path))
    assert not Customer.objects.exists()


def test_a_normal_workbook_with_control_characters_imports_clean_text(tmp_path):
    path = tmp_path / "ok.xlsx"
    book = Workbook()
    book.active.append(["email", "name"])
    book.active.append(["ok@example.com", "Zhang\u0085 Wei\u009f"])  # C1 controls are legal XML
    book.save(path)
    call_command("import", "customers", str(path), "--json", stdout=io.StringIO())
    assert Customer.objects.get().name == "Zhang Wei"
