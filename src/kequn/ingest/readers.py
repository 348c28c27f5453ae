"""Read CSV, Excel, JSON lines and Parquet files as a stream of rows of text."""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import os
import re
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.utils.translation import gettext as _

from kequn.security.inputs import BadInputError, clean_json, strip_control

CHUNK = 1 << 20
# A field can be big (a note, an HTML body), but not unbounded: a 32 MB cell is a broken file.
csv.field_size_limit(32 * 1024 * 1024)

FORMATS = ("csv", "xlsx", "jsonl", "parquet")

# Limits on an Excel file, checked from the zip directory and the sheet's declared size
# before anything is parsed (a 438 KB file can hold 200 MB of shared strings, a 141 KB one
# a million empty rows), and again while rows stream. Settings override the defaults.
XLSX_LIMITS = {
    "KEQUN_XLSX_MAX_MB": 100,  # uncompressed size of everything in the file
    "KEQUN_XLSX_MAX_ROWS": 1_000_000,
    "KEQUN_XLSX_MAX_COLUMNS": 500,
    "KEQUN_XLSX_MAX_STRINGS": 2_000_000,  # distinct texts (shared strings)
}
_DIMENSION = re.compile(rb'<(?:\w+:)?dimension\s+ref="([A-Z]+)?(\d+)?(?::([A-Z]+)(\d+))?"')
_UNIQUE_COUNT = re.compile(rb'<(?:\w+:)?sst\b[^>]*?\buniqueCount="(\d+)"')
_SHEET_REF = re.compile(rb'<(?:\w+:)?sheet\b[^>]*?\br:id="([^"]+)"')


class ImportFileError(Exception):
    """A file that cannot be imported at all; the message names the file and the fix."""


@dataclass
class FileInfo:
    path: Path
    format: str
    checksum: str
    size: int
    encoding: str = ""
    delimiter: str = ","
    total_rows: int | None = None
    headers: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name


def _fail(path: Path, message: str) -> ImportFileError:
    return ImportFileError(f"{path.name}: {message}")


def get_xlsx_limit(name: str) -> int:
    """Return an Excel limit from the settings, or its default."""
    return int(getattr(settings, name, XLSX_LIMITS[name]))


def _column_number(letters: bytes) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + letter - 64
    return number


def _too_big(path: Path, what: str, found: int, setting: str) -> ImportFileError:
    return _fail(
        path,
        _(
            "%(what)s is %(found)s, over the limit of %(limit)s (%(setting)s): "
            "split the file or save it as CSV"
        )
        % {
            "what": what,
            "found": f"{found:,}",
            "limit": f"{get_xlsx_limit(setting):,}",
            "setting": setting,
        },
    )


def _first_sheet_member(book: zipfile.ZipFile) -> str | None:
    """Return the zip member of the first worksheet, from the workbook and its relations."""
    try:
        workbook = book.open("xl/workbook.xml").read(1 << 20)
        rels = book.open("xl/_rels/workbook.xml.rels").read(1 << 20)
    except KeyError:
        return None
    first = _SHEET_REF.search(workbook)
    if not first:
        return None
    rel_id = re.escape(first.group(1))
    for match in re.finditer(rb"<(?:\w+:)?Relationship\b[^>]*>", rels):
        tag = match.group(0)
        if re.search(rb'\bId="' + rel_id + rb'"', tag):
            target = re.search(rb'\bTarget="([^"]+)"', tag)
            if target:
                name = target.group(1).decode()
                return name.lstrip("/") if name.startswith("/") else f"xl/{name}"
    return None


def check_xlsx_limits(path: Path) -> None:
    """Refuse an Excel file over the size, row, column or shared-string limits, unparsed."""
    try:
        book = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise _fail(
            path, _("cannot open as Excel (%(err)s): save it again as .xlsx") % {"err": exc}
        ) from None
    with book:
        total = sum(member.file_size for member in book.infolist())
        megabytes = get_xlsx_limit("KEQUN_XLSX_MAX_MB")
        if total > megabytes * 1024 * 1024:
            raise _too_big(
                path,
                _("the uncompressed content (MB)"),
                total // (1024 * 1024),
                "KEQUN_XLSX_MAX_MB",
            )
        names = set(book.namelist())
        if "xl/sharedStrings.xml" in names:
            head = book.open("xl/sharedStrings.xml").read(4096)
            found = _UNIQUE_COUNT.search(head)
            if found and int(found.group(1)) > get_xlsx_limit("KEQUN_XLSX_MAX_STRINGS"):
                raise _too_big(
                    path,
                    _("the number of distinct texts (shared strings)"),
                    int(found.group(1)),
                    "KEQUN_XLSX_MAX_STRINGS",
                )
        sheet = _first_sheet_member(book)
        if sheet not in names:
            return
        head = book.open(sheet).read(64 * 1024)
        dimension = _DIMENSION.search(head)
        if not dimension:
            return
        last_column, last_row = dimension.group(3) or dimension.group(1), dimension.group(4)
        last_row = last_row or dimension.group(2)
        if last_row and int(last_row) > get_xlsx_limit("KEQUN_XLSX_MAX_ROWS"):
            raise _too_big(
                path,
                _("the number of rows the sheet declares"),
                int(last_row),
                "KEQUN_XLSX_MAX_ROWS",
            )
        if last_column and _column_number(last_column) > get_xlsx_limit("KEQUN_XLSX_MAX_COLUMNS"):
            raise _too_big(
                path,
                _("the number of columns the sheet declares"),
                _column_number(last_column),
                "KEQUN_XLSX_MAX_COLUMNS",
            )


def _detect_format(path: Path, head: bytes) -> str:
    suffix = path.suffix.lower()
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"PK\x03\x04"):
        if suffix in (".xlsx", ".xlsm"):
            return "xlsx"
        raise _fail(path, _("this is a zip or Excel file, not text: save it as .xlsx or CSV"))
    if suffix in (".xlsx", ".xlsm"):
        raise _fail(path, _("not a valid Excel .xlsx file: open and save it again in Excel"))
    if suffix == ".xls":
        raise _fail(path, _("old Excel .xls files are not read: save it as .xlsx or CSV"))
    if suffix == ".parquet":
        raise _fail(path, _("not a valid Parquet file (no PAR1 header)"))
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    return "csv"


def _looks_binary(head: bytes) -> bool:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False
    sample = head[:8192]
    if b"\x00" in sample:
        return True
    controls = sum(1 for b in sample if b < 9 or 13 < b < 32)
    return bool(sample) and controls / len(sample) > 0.05


def _scan_text(path: Path, info: FileInfo) -> None:
    """Hash the file, count lines and find an encoding that decodes all of it, in one pass."""
    candidates = ["utf-8", "gb18030"]
    decoders = {name: codecs.getincrementaldecoder(name)() for name in candidates}
    failures: dict[str, str] = {}
    digest = hashlib.sha256()
    lines = 0
    offset = 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            lines += chunk.count(b"\n")
            for name in list(decoders):
                try:
                    decoders[name].decode(chunk)
                except UnicodeDecodeError as exc:
                    failures[name] = f"byte 0x{chunk[exc.start]:02x} at offset {offset + exc.start}"
                    del decoders[name]
            offset += len(chunk)
        for name in list(decoders):
            try:
                decoders[name].decode(b"", final=True)
            except UnicodeDecodeError:
                failures[name] = "truncated character at the end"
                del decoders[name]
    info.checksum = digest.hexdigest()
    info.total_rows = max(lines - 1, 0) if info.format == "csv" else lines
    if not decoders:
        raise _fail(
            path,
            _("neither UTF-8 nor GB18030/GBK (%(where)s): save the file as UTF-8 CSV and re-run")
            % {"where": failures.get("utf-8", "")},
        )
    info.encoding = "utf-8-sig" if "utf-8" in decoders else "gb18030"


def _hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def to_text(value: object) -> str:
    """Turn a cell value (Excel, Parquet, JSON) into the text a CSV would hold."""
    if value is None:
        return ""
    if isinstance(value, str):
        return strip_control(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def clean_header(value: object) -> str:
    """Return a header cell as trimmed text without BOM or full-width forms."""
    return unicodedata.normalize("NFKC", to_text(value)).replace("\ufeff", "").strip()


def _check_headers(path: Path, headers: list[str]) -> list[str]:
    if not any(headers):
        raise _fail(path, _("the first row holds no column names: add a header row"))
    seen: dict[str, int] = {}
    for index, header in enumerate(headers, start=1):
        if not header:
            continue
        if header in seen:
            raise _fail(
                path,
                _(
                    "column %(name)r appears twice (columns %(a)d and %(b)d): "
                    "rename or remove one and re-run"
                )
                % {"name": header, "a": seen[header], "b": index},
            )
        seen[header] = index
    return headers


def open_file(path: str | os.PathLike) -> FileInfo:
    """Inspect a file: format, encoding, checksum, row estimate and headers."""
    path = Path(path)
    if not path.exists():
        raise ImportFileError(f"{path}: " + _("no such file"))
    if path.is_dir():
        raise ImportFileError(f"{path}: " + _("is a folder, not a file"))
    size = path.stat().st_size
    if size == 0:
        raise _fail(path, _("the file is empty: export it again with a header row and data"))
    with path.open("rb") as fh:
        head = fh.read(8192)
    fmt = _detect_format(path, head)
    info = FileInfo(path=path, format=fmt, checksum="", size=size)
    if fmt in ("csv", "jsonl"):
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            info.encoding = "utf-16"
            info.checksum = _hash(path)
        else:
            if _looks_binary(head):
                raise _fail(
                    path,
                    _(
                        "this is a binary file, not text (CSV/JSON lines): check you chose the right file"
                    ),
                )
            _scan_text(path, info)
    else:
        info.checksum = _hash(path)
    info.headers = _check_headers(path, _read_headers(info))
    return info


def _open_text(info: FileInfo) -> io.TextIOWrapper:
    return info.path.open("r", encoding=info.encoding, newline="")


def _read_headers(info: FileInfo) -> list[str]:
    path = info.path
    if info.format == "csv":
        with _open_text(info) as fh:
            sample = fh.read(64 * 1024)
            try:
                info.delimiter = csv.Sniffer().sniff(sample.split("\n", 1)[0], ",;\t|").delimiter
            except csv.Error:
                info.delimiter = ","
            fh.seek(0)
            try:
                first = next(csv.reader(fh, delimiter=info.delimiter), None)
            except csv.Error as exc:
                raise _fail(
                    path, _("the header row is not valid CSV (%(err)s)") % {"err": exc}
                ) from None
        if first is None or not "".join(first).strip():
            raise _fail(path, _("the file is empty: export it again with a header row and data"))
        return [clean_header(h) for h in first]
    if info.format == "xlsx":
        from openpyxl import load_workbook  # noqa: PLC0415 -- loaded only for Excel files

        check_xlsx_limits(path)
        try:
            workbook = load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds for a bad zip
            raise _fail(
                path, _("cannot open as Excel (%(err)s): save it again as .xlsx") % {"err": exc}
            ) from None
        try:
            sheet = workbook.worksheets[0]
            info.total_rows = max((sheet.max_row or 1) - 1, 0)
            first = next(sheet.iter_rows(max_row=1, values_only=True), None)
        finally:
            workbook.close()
        if first is None:
            raise _fail(path, _("the first sheet is empty: put a header row and data on it"))
        first = list(first)
        while first and first[-1] in (None, ""):
            first.pop()  # read-only rows are padded to the sheet's declared width
        if len(first) > get_xlsx_limit("KEQUN_XLSX_MAX_COLUMNS"):
            raise _too_big(path, _("the number of columns"), len(first), "KEQUN_XLSX_MAX_COLUMNS")
        return [clean_header(h) for h in first]
    if info.format == "parquet":
        import pyarrow.parquet as pq  # noqa: PLC0415 -- loaded only for Parquet files

        try:
            parquet = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises ArrowInvalid, OSError...
            raise _fail(path, _("cannot read as Parquet (%(err)s)") % {"err": exc}) from None
        info.total_rows = parquet.metadata.num_rows
        return [clean_header(n) for n in parquet.schema_arrow.names]
    # JSON lines: columns are the keys of the first objects.
    headers: dict[str, None] = {}
    with _open_text(info) as fh:
        for count, line in enumerate(fh):
            if count >= 100:
                break
            line = line.strip()
            if not line:
                continue
            if count == 0 and line.startswith("["):
                raise _fail(
                    path,
                    _("a JSON array is not streamed: write one JSON object per line (JSON lines)"),
                )
            try:
                obj = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                continue
            if isinstance(obj, dict):
                headers.update(dict.fromkeys(clean_header(k) for k in obj))
    if not headers:
        raise _fail(path, _("no JSON object found in the first lines: write one object per line"))
    return list(headers)


EXTRA = "__extra__"


def iter_rows(info: FileInfo) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (row number, {header: text}); row 1 is the header row, so data starts at 2."""
    headers = info.headers
    if info.format == "csv":
        with _open_text(info) as fh:
            reader = csv.reader(fh, delimiter=info.delimiter)
            next(reader, None)
            row_number = 1
            while True:
                try:
                    values = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    raise _fail(
                        info.path,
                        _("row %(row)d is not valid CSV (%(err)s): fix the quoting and re-run")
                        % {"row": row_number + 1, "err": exc},
                    ) from None
                row_number += 1
                if not values or (len(values) == 1 and not values[0].strip()):
                    continue
                values = [strip_control(value) for value in values]
                row = dict(zip(headers, values, strict=False))
                if len(values) > len(headers):
                    row[EXTRA] = json.dumps(values[len(headers) :], ensure_ascii=False)
                yield row_number, row
    elif info.format == "xlsx":
        from openpyxl import load_workbook  # noqa: PLC0415 -- loaded only for Excel files

        check_xlsx_limits(info.path)
        max_rows = get_xlsx_limit("KEQUN_XLSX_MAX_ROWS")
        workbook = load_workbook(info.path, read_only=True, data_only=True)
        try:
            sheet = workbook.worksheets[0]
            # Cells right of the header row are never read; a sheet that declared fewer
            # rows than it holds is stopped at the row limit.
            for row_number, values in enumerate(
                sheet.iter_rows(min_row=2, max_col=len(headers), values_only=True), start=2
            ):
                if row_number > max_rows + 1:
                    raise _too_big(
                        info.path, _("the number of rows"), row_number - 1, "KEQUN_XLSX_MAX_ROWS"
                    )
                if all(v is None or v == "" for v in values):
                    continue
                yield (
                    row_number,
                    {h: to_text(v) for h, v in zip(headers, values, strict=False) if h},
                )
        finally:
            workbook.close()
    elif info.format == "parquet":
        import pyarrow.parquet as pq  # noqa: PLC0415 -- loaded only for Parquet files

        parquet = pq.ParquetFile(info.path)
        names = parquet.schema_arrow.names
        row_number = 1
        for batch in parquet.iter_batches(batch_size=5000):
            columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
            for values in zip(*columns, strict=True):
                row_number += 1
                yield (
                    row_number,
                    {clean_header(n): to_text(v) for n, v in zip(names, values, strict=True)},
                )
    else:
        with _open_text(info) as fh:
            for row_number, line in enumerate(fh, start=1):
                line = line.strip()
                if not line:
                    continue
                raw = strip_control(line[:2000])
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield row_number, {EXTRA: raw, "__error__": f"invalid JSON: {exc.msg}"}
                    continue
                except RecursionError:
                    yield row_number, {EXTRA: raw, "__error__": "JSON nests too deep: flatten it"}
                    continue
                if not isinstance(obj, dict):
                    yield row_number, {EXTRA: raw, "__error__": "not a JSON object"}
                    continue
                try:
                    # A NUL or lone surrogate cannot be stored; nesting is bounded.
                    obj = clean_json(obj, "row")
                except BadInputError as exc:
                    yield row_number, {EXTRA: raw, "__error__": str(exc)}
                    continue
                yield row_number, {clean_header(k): to_text(v) for k, v in obj.items()}
