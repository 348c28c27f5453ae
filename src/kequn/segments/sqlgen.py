"""Compile a validated segment rule to one SQL query over Kequn's tables, with bound parameters.

Every value of a rule travels as a parameter, never as text in the query: the query holds only
identifiers and keywords from this module and the rule field catalogue (rules.FIELDS). The
query is plain enough for SQLite, PostgreSQL and DuckDB, so the back office, the command line
and the analytics engine run a segment the same way. Placeholders are written as ``%s``
(Django's cursors for SQLite and PostgreSQL take them); ``to_paramstyle`` turns them into
``?`` or ``$n`` for a DB-API driver that wants those (DuckDB, the sqlite3 module).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Literal

from kequn.commerce.models import Order
from kequn.segments.rules import FIELDS, ROOT, RuleError, SegmentLookup

PLACEHOLDER = "%s"
PURCHASE_STATUSES: tuple[str, ...] = tuple(str(s) for s in Order.PURCHASE_STATUSES)
VIEW_EVENT = "Product Viewed"
OPS = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
LIVE = "c.merged_into_id IS NULL AND NOT c.processing_restricted"
ParamStyle = Literal["format", "qmark", "numeric_dollar"]


@dataclass(frozen=True)
class Sql:
    """A piece of SQL text and the values bound to its placeholders, in order."""

    text: str
    params: tuple[Any, ...] = ()


def build(template: str, *args: Sql | Any) -> Sql:
    """Fill each ``{}`` of a template: a Sql piece goes in as is, any other value is bound."""
    pieces = template.split("{}")
    if len(pieces) != len(args) + 1:
        raise ValueError(f"{len(pieces) - 1} slots for {len(args)} values: {template!r}")
    text, params = [pieces[0]], list[Any]()
    for arg, piece in zip(args, pieces[1:], strict=True):
        if isinstance(arg, Sql):
            text.append(arg.text)
            params.extend(arg.params)
        else:
            text.append(PLACEHOLDER)
            params.append(arg)
        text.append(piece)
    return Sql("".join(text), tuple(params))


def join(separator: str, parts: Iterable[Sql]) -> Sql:
    """Join SQL pieces with a separator (keywords only), keeping their parameters in order."""
    parts = list(parts)
    return Sql(separator.join(p.text for p in parts), tuple(v for p in parts for v in p.params))


def values_list(values: Iterable[Any]) -> Sql:
    """Return ``(%s, %s, ...)`` binding each value (a rule list is never empty)."""
    values = tuple(values)
    return Sql("(" + ", ".join([PLACEHOLDER] * len(values)) + ")", values)


def escape_like(text: str) -> str:
    """Return text matched literally by LIKE ... ESCAPE '\\' (%, _ and \\ are not wildcards)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def format_ts(moment: datetime) -> str:
    """Return a UTC timestamp comparable with stored datetimes on every engine."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def to_paramstyle(sql: str, style: ParamStyle) -> str:
    """Return the query with its ``%s`` placeholders in a driver's style.

    Safe as a plain replacement: the generated text holds no other ``%`` and no ``?`` or
    ``$`` (every value, LIKE patterns included, is a parameter).
    """
    if style == "format":
        return sql
    if style == "qmark":
        return sql.replace(PLACEHOLDER, "?")
    pieces = sql.split(PLACEHOLDER)
    out = [pieces[0]]
    for n, piece in enumerate(pieces[1:], start=1):
        out.append(f"${n}{piece}")
    return "".join(out)


# Profile fields compared as text, and the customer column each reads (from the catalogue).
TEXT_COLUMNS = {
    name: spec.column
    for name, spec in FIELDS.items()
    if spec.group == "profile" and spec.kind in ("text", "choice")
}
SCORE_PREFIX = "score__"


class _Compiler:
    def __init__(
        self, now: datetime, today: date, lookup: SegmentLookup | None, tz: tzinfo | None
    ) -> None:
        self.now, self.today, self.lookup = now, today, lookup
        self.tz = tz or now.tzinfo or UTC

    def midnight(self, day: date) -> str:
        return format_ts(datetime.combine(day, time.min, tzinfo=self.tz))

    def since(self, column: str, days: int | None) -> Sql:
        if not days:
            return Sql("")
        return build(f" AND {column} >= {{}}", format_ts(self.now - timedelta(days=days)))

    def purchases(self, days: int | None, extra: Sql = Sql("")) -> Sql:
        return build(
            "SELECT 1 FROM commerce_order o WHERE o.customer_id = c.id AND o.status IN {}{}{}",
            values_list(PURCHASE_STATUSES),
            self.since("o.ordered_at", days),
            extra,
        )

    def aggregate(self, what: str, days: int | None) -> Sql:
        return build(
            f"COALESCE((SELECT {what} FROM commerce_order o WHERE o.customer_id = c.id"  # noqa: S608 -- identifiers from this module, values bound
            " AND o.status IN {}{}), 0)",
            values_list(PURCHASE_STATUSES),
            self.since("o.ordered_at", days),
        )

    def lines(self, days: int | None, where: Sql) -> Sql:
        return build(
            "EXISTS (SELECT 1 FROM commerce_orderline l"
            " JOIN commerce_order o ON o.id = l.order_id"
            " JOIN commerce_product p ON p.id = l.product_id"
            " WHERE o.customer_id = c.id AND o.status IN {}{} AND {})",
            values_list(PURCHASE_STATUSES),
            self.since("o.ordered_at", days),
            where,
        )

    def events(self, days: int | None, where: Sql) -> Sql:
        return build(
            "EXISTS (SELECT 1 FROM events_event e WHERE e.customer_id = c.id{} AND {})",
            self.since("e.occurred_at", days),
            where,
        )

    @staticmethod
    def score(where: Sql, negate: bool = False) -> Sql:
        return build(
            f"c.id {'NOT IN' if negate else 'IN'}"  # noqa: S608 -- identifiers from this module, values bound
            " (SELECT customer_id FROM scoring_customerscore WHERE {})",
            where,
        )

    @staticmethod
    def compare(expr: Sql, op: str, value: Any) -> Sql:
        if op == "between":
            return build("({} >= {} AND {} <= {})", expr, value[0], expr, value[1])
        return build(f"{{}} {OPS[op]} {{}}", expr, value)

    @staticmethod
    def text(col: str, op: str, value: Any) -> Sql:
        match op:
            case "eq" | "ne":
                return build(f"{col} {OPS[op]} {{}}", value)
            case "in":
                return build(f"{col} IN {{}}", values_list(value))
            case "not_in":
                return build(f"{col} NOT IN {{}}", values_list(value))
            case "contains":
                return build(
                    f"LOWER({col}) LIKE LOWER({{}}) ESCAPE '\\'", f"%{escape_like(value)}%"
                )
            case "starts_with":
                return build(f"LOWER({col}) LIKE LOWER({{}}) ESCAPE '\\'", f"{escape_like(value)}%")
            case "is_empty":
                return Sql(f"({col} IS NULL OR {col} = '')")
            case "is_not_empty":
                return Sql(f"NOT ({col} IS NULL OR {col} = '')")
        raise AssertionError(op)

    def age(self, op: str, value: Any) -> Sql:
        # Age is counted by birth year (the age reached this calendar year): only the year is
        # stored in clear, the birthday itself is encrypted.
        def born_in(n: Any) -> int:
            return self.today.year - int(n)

        match op:
            case "gte":
                return build("c.birth_year <= {}", born_in(value))
            case "gt":
                return build("c.birth_year < {}", born_in(value))
            case "lt":
                return build("c.birth_year > {}", born_in(value))
            case "lte":
                return build("c.birth_year >= {}", born_in(value))
            case "eq":
                return build("c.birth_year = {}", born_in(value))
            case "ne":
                return build("(c.birth_year IS NOT NULL AND c.birth_year <> {})", born_in(value))
            case "between":
                return build("c.birth_year BETWEEN {} AND {}", born_in(value[1]), born_in(value[0]))
            case "is_empty":
                return Sql("c.birth_year IS NULL")
            case "is_not_empty":
                return Sql("c.birth_year IS NOT NULL")
        raise AssertionError(op)

    def date(self, col: str, op: str, value: Any, is_datetime: bool) -> Sql:
        def bound(text: str, next_day: bool = False) -> str:
            day = date.fromisoformat(text) + timedelta(days=1 if next_day else 0)
            return self.midnight(day) if is_datetime else day.isoformat()

        match op:
            case "before":
                return build(f"{col} < {{}}", bound(value))
            case "after":
                return build(f"{col} >= {{}}", bound(value, True))
            case "between":
                return build(
                    f"({col} >= {{}} AND {col} < {{}})", bound(value[0]), bound(value[1], True)
                )
            case "within_days" | "not_within_days":
                if is_datetime:
                    since = format_ts(self.now - timedelta(days=value))
                else:
                    since = (self.today - timedelta(days=value)).isoformat()
                q = build(f"{col} >= {{}}", since)
                return q if op == "within_days" else build("NOT ({})", q)
            case "is_empty":
                return Sql(f"{col} IS NULL")
        raise AssertionError(op)

    def last_order(self, op: str, value: Any) -> Sql:
        if op == "is_empty":
            return build("NOT EXISTS ({})", self.purchases(None))
        if op in ("within_days", "not_within_days"):
            q = build("EXISTS ({})", self.purchases(value))
            return q if op == "within_days" else build("NOT {}", q)

        def from_day(text: str, next_day: bool = False) -> Sql:
            day = date.fromisoformat(text) + timedelta(days=1 if next_day else 0)
            since = build(" AND o.ordered_at >= {}", self.midnight(day))
            return build("EXISTS ({})", self.purchases(None, since))

        if op == "before":  # the latest purchase is before the day: none on or after it
            return build("(EXISTS ({}) AND NOT {})", self.purchases(None), from_day(value))
        if op == "after":
            return from_day(value, True)
        # between: a purchase on or after the first day, none after the last day
        return build("({} AND NOT {})", from_day(value[0]), from_day(value[1], True))

    def score_condition(self, column: str, kind: str, op: str, value: Any) -> Sql:
        # A customer without a score row has no score: "is empty", "is not" and "none of" hold.
        if kind == "choice":
            if op in ("is_empty", "is_not_empty"):
                q = self.score(Sql(f"{column} IS NOT NULL AND {column} <> ''"), negate=True)
                return q if op == "is_empty" else build("NOT ({})", q)
            if op in ("ne", "not_in"):
                return self.score(self.text(column, "eq" if op == "ne" else "in", value), True)
            return self.score(self.text(column, op, value))
        if op in ("is_empty", "is_not_empty"):
            return self.score(Sql(f"{column} IS NOT NULL"), negate=op == "is_empty")
        if op == "ne":
            return self.score(build(f"{column} = {{}}", value), negate=True)
        return self.score(self.compare(Sql(column), op, value))

    def tags(self, op: str, value: list[Any]) -> Sql:
        def has(values: list[Any]) -> Sql:
            ids = [v for v in values if isinstance(v, int)] or [-1]
            names = [v for v in values if isinstance(v, str)] or [""]
            return build(
                "EXISTS (SELECT 1 FROM customers_customertag ct JOIN customers_tag t"
                " ON t.id = ct.tag_id WHERE ct.customer_id = c.id"
                " AND (t.id IN {} OR t.name IN {}))",
                values_list(ids),
                values_list(names),
            )

        if op == "all_of":
            return build("({})", join(" AND ", (has([v]) for v in value)))
        return has(value) if op == "any_of" else build("NOT {}", has(value))

    def condition(self, cond: dict[str, Any], path: str, stack: tuple[int, ...]) -> Sql:
        name: str = cond["field"]
        op: str = cond["operator"]
        value: Any = cond.get("value")
        days: int | None = cond.get("days")
        spec = FIELDS[name]
        if spec.sql is not None:
            return self.registered(spec, op, value, days)
        if name in TEXT_COLUMNS:
            return self.text(f"c.{TEXT_COLUMNS[name]}", op, value)
        if name == "age":
            return self.age(op, value)
        if spec.group == "profile" and spec.kind == "date":
            return self.date(f"c.{spec.column}", op, value, is_datetime=name == "created_at")
        if spec.group == "profile" and spec.kind == "number":
            col = f"c.{spec.column}"
            if op in ("is_empty", "is_not_empty"):
                return Sql(f"{col} IS {'' if op == 'is_empty' else 'NOT '}NULL")
            if op == "ne":
                return build(f"({col} IS NULL OR {col} <> {{}})", value)
            return self.compare(Sql(col), op, value)
        if spec.group == "score":
            return self.score_condition(
                spec.column.removeprefix(SCORE_PREFIX), spec.kind, op, value
            )
        if name in ("order_count", "spend"):
            if op in ("is_empty", "is_not_empty"):
                q = build("EXISTS ({})", self.purchases(days))
                return build("NOT {}", q) if op == "is_empty" else q
            what = "COUNT(*)" if name == "order_count" else "SUM(o.total_amount)"
            expr = self.aggregate(what, days)
            if op == "ne":
                return build("NOT ({} = {})", expr, value)
            return self.compare(expr, op, value)
        if name == "last_order":
            return self.last_order(op, value)
        if name == "bought_product":
            q = self.lines(days, build("p.sku IN {}", values_list(value)))
            return q if op == "any_of" else build("NOT {}", q)
        if name == "bought_category":
            tree = build(
                "WITH RECURSIVE tree(id) AS (SELECT id FROM commerce_category"
                " WHERE code IN {} UNION SELECT k.id FROM commerce_category k"
                " JOIN tree ON k.parent_id = tree.id) SELECT id FROM tree",
                values_list(value),
            )
            q = self.lines(days, build("p.category_id IN ({})", tree))
            return q if op == "any_of" else build("NOT {}", q)
        if name == "event":
            q = self.events(days, build("e.name IN {}", values_list(value)))
            return q if op == "any_of" else build("NOT {}", q)
        if name == "browsed_not_bought":
            q = build(
                "({} AND NOT EXISTS ({}))",
                self.events(days, build("e.name = {}", VIEW_EVENT)),
                self.purchases(days),
            )
            return q if value else build("NOT {}", q)
        if name == "tag":
            return self.tags(op, value)
        if name == "consent":
            latest = build(
                "COALESCE((SELECT k.granted FROM customers_consent k WHERE k.customer_id = c.id"
                " AND k.channel = {} AND k.purpose = {}"
                " ORDER BY k.recorded_at DESC, k.id DESC LIMIT 1), FALSE) = TRUE",
                cond["channel"],
                cond["purpose"],
            )
            return latest if value else build("NOT ({})", latest)
        if name == "in_segment":
            return self.in_segment(op, value, path, stack)
        raise AssertionError(name)

    def registered(self, spec: Any, op: str, value: Any, days: int | None) -> Sql:
        """Compile a condition on a field another app registered (rules.register_rule_field)."""
        text, params = spec.sql(days, self.now)
        expr = Sql(f"({text})", tuple(params))
        if spec.kind == "bool":
            return expr if value else build("NOT {}", expr)
        if spec.kind == "number":
            if op in ("is_empty", "is_not_empty"):
                return build(f"{{}} IS {'' if op == 'is_empty' else 'NOT '}NULL", expr)
            if op == "ne":
                return build("NOT ({} = {})", expr, value)
            return self.compare(expr, op, value)
        if params:
            raise AssertionError("a text field's SQL takes no parameters")
        return self.text(expr.text, op, value)

    def in_segment(self, op: str, value: int, path: str, stack: tuple[int, ...]) -> Sql:
        if value in stack:
            raise RuleError([f"{path}: cycle: segment refers to itself"])
        target = self.lookup(value) if self.lookup else None
        if target is None:
            raise RuleError([f"{path}: segment #{value} does not exist"])
        other, dynamic = target
        if dynamic:
            # Inline the other rule so the result is live, not as of its last refresh.
            q = self.group(other, ROOT, (*stack, value))
        else:
            q = build(
                "EXISTS (SELECT 1 FROM segments_segmentmember m"
                " WHERE m.segment_id = {} AND m.customer_id = c.id)",
                int(value),
            )
        return q if op == "in" else build("NOT {}", q)

    def group(self, node: dict[str, Any], path: str, stack: tuple[int, ...]) -> Sql:
        parts = []
        for i, child in enumerate(node["conditions"]):
            child_path = f"{path}.conditions[{i}]"
            if "conditions" in child:
                parts.append(self.group(child, child_path, stack))
            else:
                parts.append(self.condition(child, child_path, stack))
        joined = join(f" {'OR' if node.get('match', 'all') == 'any' else 'AND'} ", parts)
        return build("NOT ({})" if node.get("negate") else "({})", joined)


# Conditions answered by looking up one customer's rows through an index on customer_id: they
# are evaluated last, on the customers left by the cheap column and score conditions.
LOOKUP_FIELDS = frozenset(
    {
        "order_count",
        "spend",
        "last_order",
        "bought_product",
        "bought_category",
        "event",
        "browsed_not_bought",
        "tag",
        "consent",
    }
)


def compile_sql(
    rule: dict[str, Any],
    now: datetime,
    today: date,
    lookup: SegmentLookup | None = None,
    tz: tzinfo | None = None,
    *,
    candidates_first: bool = True,
) -> tuple[str, list[Any]]:
    """Return (query, parameters) selecting the ids of live customers matching a valid rule.

    With candidates_first, a rule of "all" conditions that mixes column conditions with
    per-customer lookups selects the candidates first (see below); without, the query is one
    WHERE clause over the customer table, which an ORDER BY c.id ... LIMIT can walk in order.
    """
    compiler = _Compiler(now, today, lookup, tz)
    plain = not candidates_first or rule.get("match", "all") == "any" or rule.get("negate")
    if plain:
        query = build(
            f"SELECT c.id FROM customers_customer c WHERE {LIVE} AND {{}}",  # noqa: S608 -- identifiers from this module, values bound
            compiler.group(rule, ROOT, ()),
        )
        return query.text, list(query.params)
    cheap: list[Sql] = []
    costly: list[Sql] = []
    for i, child in enumerate(rule["conditions"]):
        path = f"{ROOT}.conditions[{i}]"
        if "conditions" in child:
            cheap.append(compiler.group(child, path, ()))
        else:
            part = compiler.condition(child, path, ())
            (costly if child["field"] in LOOKUP_FIELDS else cheap).append(part)
    if not cheap or not costly:
        query = build(
            f"SELECT c.id FROM customers_customer c WHERE {LIVE} AND ({{}})",  # noqa: S608 -- identifiers from this module, values bound
            join(" AND ", cheap + costly),
        )
        return query.text, list(query.params)
    # PostgreSQL filters a table's rows before joining; left to itself it would count every
    # candidate's orders before the score join drops half of them. Materialising the cheap
    # selection first (the way an analyst writes it) halves a million-customer count.
    query = build(
        "WITH candidates AS MATERIALIZED (SELECT c.id FROM customers_customer c"  # noqa: S608 -- identifiers from this module, values bound
        f" WHERE {LIVE} AND {{}}) SELECT c.id FROM candidates c WHERE {{}}",
        join(" AND ", cheap),
        join(" AND ", costly),
    )
    return query.text, list(query.params)
