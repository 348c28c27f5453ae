"""Read transactions from files and in-memory tables into one canonical Arrow table.

Canonical columns: ``customer_id`` (string), ``ts`` (timestamp), ``amount`` (float64),
``quantity`` (float64, may be null), ``order_id`` (string, may be null); any other
column (e.g. ``channel``) is kept as it is.

Two CDNOW layouts are recognised as they are distributed (whitespace separated, no
header or the one-line header of the ``lifetimes`` copy):

* ``cdnow_master.txt``: ``customer_id date(YYYYMMDD) cds dollars``
* ``cdnow_sample.txt``: ``customer_id id_in_full_set date(YYYYMMDD) cds dollars``
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from .errors import AnalyticsInputError

REQUIRED = ("customer_id", "ts", "amount")
OPTIONAL = ("quantity", "order_id")

# Lower-cased source names accepted for each canonical column, in order of preference.
ALIASES: dict[str, tuple[str, ...]] = {
    "customer_id": (
        "customer_id",
        "customer",
        "customerid",
        "cust_id",
        "client_id",
        "user_id",
        "客户id",
        "客户",
    ),
    "ts": (
        "ts",
        "timestamp",
        "date",
        "datetime",
        "order_date",
        "purchase_date",
        "time",
        "created_at",
        "日期",
        "时间",
    ),
    "amount": (
        "amount",
        "dollars",
        "dollar_value",
        "value",
        "revenue",
        "spend",
        "sales",
        "total",
        "price",
        "金额",
    ),
    "quantity": ("quantity", "qty", "cds", "number_of_cds", "units", "数量"),
    "order_id": ("order_id", "orderid", "invoice", "invoice_no", "transaction_id", "订单号"),
}

CDNOW_MASTER = "cdnow_master"
CDNOW_SAMPLE = "cdnow_sample"
_DATE8 = re.compile(r"^(19|20)\d{6}$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def detect_cdnow_format(path: str | Path) -> str | None:
    """Return ``cdnow_master``/``cdnow_sample`` when the file has a CDNOW layout, else None."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = [ln.split() for ln in (fh.readline() for _ in range(3)) if ln.strip()]
    except OSError as exc:
        raise AnalyticsInputError(f"cannot read file ({exc.strerror})", source=str(path)) from None
    if not lines:
        return None
    if lines[0] == ["customer_id", "date", "number_of_cds", "dollar_value"]:
        return CDNOW_MASTER
    first = lines[0]
    if not all(_NUMBER.match(tok) for tok in first):
        return None
    if len(first) == 4 and _DATE8.match(first[1]):
        return CDNOW_MASTER
    if len(first) == 5 and _DATE8.match(first[2]):
        return CDNOW_SAMPLE
    return None


def read_transactions(path: str | Path, columns: Mapping[str, str] | None = None) -> pa.Table:
    """Read a CSV, Parquet or CDNOW file into the canonical transactions table."""
    path = Path(path)
    if not path.exists():
        raise AnalyticsInputError("file not found", source=str(path))
    if path.is_dir():
        raise AnalyticsInputError("is a directory, expected a transactions file", source=str(path))
    fmt = detect_cdnow_format(path) if path.suffix.lower() not in (".parquet", ".pq") else None
    if fmt is not None:
        return _read_cdnow(path, fmt)
    con = duckdb.connect()
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            raw = con.read_parquet(str(path)).arrow()
        else:
            # All-varchar keeps bad cells visible so we can name their row instead of failing inside the sniffer.
            raw = con.read_csv(str(path), all_varchar=True, header=True).arrow()
    except duckdb.Error as exc:
        msg = str(exc).splitlines()[0]
        raise AnalyticsInputError(f"cannot parse file: {msg}", source=str(path)) from None
    finally:
        con.close()
    if isinstance(raw, pa.RecordBatchReader):
        raw = raw.read_all()
    return normalize_transactions(raw, columns=columns, source=str(path), header_rows=1)


def _read_cdnow(path: Path, fmt: str) -> pa.Table:
    names = (
        ["customer_id", "date", "quantity", "amount"]
        if fmt == CDNOW_MASTER
        else ["customer_id", "id_in_full_set", "date", "quantity", "amount"]
    )
    rows: dict[str, list[str]] = {n: [] for n in names}
    header = 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            toks = line.split()
            if not toks:
                continue
            if lineno == 1 and toks[0] == "customer_id":
                header = 1
                continue
            if len(toks) != len(names):
                raise AnalyticsInputError(
                    f"expected {len(names)} whitespace-separated fields ({' '.join(names)}), found {len(toks)}",
                    source=str(path),
                    row=lineno,
                )
            for n, tok in zip(names, toks, strict=True):
                rows[n].append(tok)
    table = pa.table(
        {
            "customer_id": rows["customer_id"],
            "ts": rows["date"],
            "amount": rows["amount"],
            "quantity": rows["quantity"],
        }
    )
    return normalize_transactions(table, source=str(path), header_rows=header, date_format="%Y%m%d")


def _pick_column(names: list[str], canonical: str, columns: Mapping[str, str] | None) -> str | None:
    if columns and canonical in columns:
        return columns[canonical]
    lowered = {n.strip().lower(): n for n in names}
    for alias in ALIASES[canonical]:
        if alias in lowered:
            return lowered[alias]
    return None


def _to_arrow(data: Any) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatchReader):
        return data.read_all()
    if isinstance(data, duckdb.DuckDBPyRelation):
        out = data.arrow()
        return out.read_all() if isinstance(out, pa.RecordBatchReader) else out
    mod = type(data).__module__
    if mod.startswith("pandas"):
        return pa.Table.from_pandas(data, preserve_index=False)
    if mod.startswith("ibis"):
        return data.to_pyarrow()
    raise AnalyticsInputError(
        f"unsupported transactions input {type(data).__name__}; pass a pyarrow Table, pandas DataFrame, DuckDB relation or file path"
    )


def normalize_transactions(
    data: Any,
    columns: Mapping[str, str] | None = None,
    *,
    source: str = "transactions",
    header_rows: int = 0,
    date_format: str | None = None,
) -> pa.Table:
    """Return the canonical transactions table from an Arrow/pandas/DuckDB table or a path.

    ``columns`` maps canonical names (``customer_id``, ``ts``, ``amount``, ``quantity``,
    ``order_id``) to the source's column names when the built-in aliases do not match.
    Row numbers in errors are 1-based data rows plus ``header_rows`` (i.e. file lines).
    """
    if isinstance(data, (str, Path)):
        return read_transactions(data, columns=columns)
    table = _to_arrow(data)
    names = list(table.column_names)
    chosen: dict[str, str] = {}
    for canonical in REQUIRED + OPTIONAL:
        col = _pick_column(names, canonical, columns)
        if col is not None and col not in names:
            raise AnalyticsInputError(
                f"mapped column {col!r} for {canonical!r} is not in the data", source=source
            )
        if col is None and canonical in REQUIRED:
            accepted = ", ".join(ALIASES[canonical][:6])
            raise AnalyticsInputError(
                f"missing required column {canonical!r} (accepted names: {accepted}; found: {', '.join(names) or 'none'})",
                source=source,
                column=canonical,
            )
        if col is not None:
            chosen[canonical] = col
    out: dict[str, pa.Array] = {}
    out["customer_id"] = _to_string(
        table[chosen["customer_id"]], source, header_rows, chosen["customer_id"], required=True
    )
    out["ts"] = _to_timestamp(table[chosen["ts"]], source, header_rows, chosen["ts"], date_format)
    out["amount"] = _to_float(
        table[chosen["amount"]], source, header_rows, chosen["amount"], required=True
    )
    if "quantity" in chosen:
        out["quantity"] = _to_float(
            table[chosen["quantity"]], source, header_rows, chosen["quantity"], required=False
        )
    else:
        out["quantity"] = pa.nulls(table.num_rows, pa.float64())
    if "order_id" in chosen:
        out["order_id"] = _to_string(
            table[chosen["order_id"]], source, header_rows, chosen["order_id"], required=False
        )
    else:
        out["order_id"] = pa.nulls(table.num_rows, pa.string())
    used = set(chosen.values())
    for name in names:
        if name not in used and name not in out:
            out[name] = table[name]
    return pa.table(out)


def _first_bad(mask: pa.ChunkedArray | pa.Array) -> int:
    idx = pc.index(mask, True).as_py()
    return int(idx)


def _to_string(col: Any, source: str, header_rows: Any, name: str, *, required: bool) -> Any:
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        col = pc.cast(col, pa.string())
    col = pc.utf8_trim_whitespace(col)
    if required:
        bad = pc.or_kleene(pc.is_null(col), pc.equal(col, ""))
        if pc.any(bad).as_py():
            i = _first_bad(bad)
            raise AnalyticsInputError(
                "empty customer id; every row needs one",
                source=source,
                row=i + 1 + header_rows,
                column=name,
            )
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


def _to_float(col: Any, source: str, header_rows: Any, name: str, *, required: bool) -> Any:
    if (
        pa.types.is_integer(col.type)
        or pa.types.is_floating(col.type)
        or pa.types.is_decimal(col.type)
    ):
        out = pc.cast(col, pa.float64())
    elif (out := _cast_plain_numbers(col)) is not None:
        pass
    else:
        text = pc.utf8_trim_whitespace(pc.cast(col, pa.string()))
        # Accept thousands separators and a leading currency sign, the usual spreadsheet exports.
        text = pc.replace_substring_regex(text, r"^[¥$€£]|,", "")
        text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
        ok = pc.match_substring_regex(text, r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
        bad = pc.and_(pc.invert(pc.fill_null(ok, True)), pc.is_valid(text))
        if pc.any(bad).as_py():
            i = _first_bad(bad)
            raise AnalyticsInputError(
                f"not a number: {text[i].as_py()!r}",
                source=source,
                row=i + 1 + header_rows,
                column=name,
            )
        out = pc.cast(text, pa.float64())
    if required and pc.any(pc.is_null(out)).as_py():
        i = _first_bad(pc.is_null(out))
        raise AnalyticsInputError(
            "empty amount; use 0 for free items and negative values for refunds",
            source=source,
            row=i + 1 + header_rows,
            column=name,
        )
    if pc.any(pc.is_nan(pc.fill_null(out, 0.0))).as_py():
        i = _first_bad(pc.is_nan(pc.fill_null(out, 0.0)))
        raise AnalyticsInputError(
            "not a number (NaN)", source=source, row=i + 1 + header_rows, column=name
        )
    return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out


def _cast_plain_numbers(col: Any) -> Any:
    """Return the text column as float64 when every cell is a plain finite number, else None.

    Arrow's cast reads the plain forms the checked path accepts (1, -2.5, .5, 1e3) and
    fails on anything else (empty cells, separators, currency signs), which the checked
    path then handles; NaN and infinity go there too, for its messages. Two regular
    expressions over every cell cost more than a second on a million rows.
    """
    try:
        out = pc.cast(col, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if out.null_count or not pc.all(pc.is_finite(out)).as_py():
        return None
    return out


def _cast_plain_timestamps(text: Any) -> Any:
    """Return ISO 8601 text without a zone as timestamps when every cell is one, else None.

    DuckDB's TRY_CAST reads every other form (zones, 20240531, 31.05.2024); Arrow's cast,
    which refuses those, is the quick one for the usual export (2024-05-31 14:00:00).
    """
    try:
        out = pc.cast(text, pa.timestamp("us"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return None if out.null_count else out


def _to_timestamp(
    col: Any, source: str, header_rows: Any, name: str, date_format: str | None
) -> Any:
    typ = col.type
    if pa.types.is_timestamp(typ):
        out = col
        if typ.tz is not None:
            # Wall-clock UTC: the models only need day resolution and one consistent clock.
            out = pc.cast(col, pa.timestamp("us", tz="UTC")).cast(pa.timestamp("us"))
        out = pc.cast(out, pa.timestamp("us"))
    elif pa.types.is_date(typ):
        out = pc.cast(pc.cast(col, pa.date32()), pa.timestamp("us"))
    else:
        text = pc.utf8_trim_whitespace(pc.cast(col, pa.string()))
        plain = None if date_format else _cast_plain_timestamps(text)
        out = plain if plain is not None else _parse_timestamps(text, date_format)
        bad = pc.and_(pc.is_null(out), pc.is_valid(text))
        if pc.any(bad).as_py():
            i = _first_bad(bad)
            raise AnalyticsInputError(
                f"not a date/time: {text[i].as_py()!r} (use ISO 8601 like 2024-05-31 or 2024-05-31T14:00:00)",
                source=source,
                row=i + 1 + header_rows,
                column=name,
            )
    if pc.any(pc.is_null(out)).as_py():
        i = _first_bad(pc.is_null(out))
        raise AnalyticsInputError(
            "empty timestamp; every purchase needs a date",
            source=source,
            row=i + 1 + header_rows,
            column=name,
        )
    return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out


def _parse_timestamps(text: Any, date_format: str | None) -> Any:
    if date_format:
        return pc.strptime(text, format=date_format, unit="us", error_is_null=True)
    # DuckDB's TRY_CAST parses ISO dates and timestamps with or without time and zone.
    con = duckdb.connect()
    try:
        con.register("tbl", pa.table({"v": text}))
        res = con.sql(
            "SELECT coalesce(TRY_CAST(v AS TIMESTAMP), TRY_CAST(TRY_STRPTIME(v, ['%Y%m%d', '%Y/%m/%d', '%d.%m.%Y']) AS TIMESTAMP)) AS ts FROM tbl"
        ).arrow()
        if isinstance(res, pa.RecordBatchReader):
            res = res.read_all()
        return res["ts"].cast(pa.timestamp("us"))
    finally:
        con.close()


def check_not_future(
    transactions: pa.Table, now: datetime, *, source: str = "transactions"
) -> None:
    """Refuse transactions dated after ``now`` with a one-line error naming the first one."""
    limit = pa.scalar(now.replace(tzinfo=None) if now.tzinfo else now, pa.timestamp("us"))
    bad = pc.greater(transactions["ts"], limit)
    n = pc.sum(bad).as_py() or 0
    if n:
        i = _first_bad(bad)
        ts = transactions["ts"][i].as_py()
        cust = transactions["customer_id"][i].as_py()
        raise AnalyticsInputError(
            f"{n} transaction(s) dated after now ({now:%Y-%m-%d %H:%M}); first is customer {cust} at {ts:%Y-%m-%d %H:%M} — "
            "fix the dates or pass a later --now/--calibration-end",
            source=source,
            row=i + 1,
            column="ts",
        )
