"""Segment rules: the JSON shape, the field catalogue and validation (no Django imports).

A rule is a group::

    {"match": "all" | "any", "negate": false, "conditions": [condition or group, ...]}

and a condition names a field, an operator, a value and, for behaviour fields, a window::

    {"field": "city", "operator": "in", "value": ["上海", "杭州"]}
    {"field": "bought_category", "operator": "any_of", "value": ["phones"], "days": 90}
    {"field": "order_count", "operator": "gte", "value": 3, "days": 365}
    {"field": "consent", "channel": "sms", "purpose": "marketing", "operator": "is", "value": true}
    {"field": "in_segment", "operator": "in", "value": 12}

Errors name the place in the rule: ``rules.conditions[1].conditions[0]: unknown field 'citty'``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from kequn.customers.places import normalize_place
from kequn.scoring.models import LifecycleStage, RFMSegment
from kequn.segments import limits

ROOT = "rules"

# Operators by value type; "days" windows are extra keys, not operators.
TEXT_OPS = ("eq", "ne", "in", "not_in", "contains", "starts_with", "is_empty", "is_not_empty")
CHOICE_OPS = ("eq", "ne", "in", "not_in", "is_empty", "is_not_empty")
NUMBER_OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "between", "is_empty", "is_not_empty")
DATE_OPS = ("before", "after", "between", "within_days", "not_within_days", "is_empty")
SET_OPS = ("any_of", "none_of")
TAG_OPS = ("any_of", "all_of", "none_of")
BOOL_OPS = ("is",)
MEMBER_OPS = ("in", "not_in")
LIST_OPS = {"in", "not_in", "any_of", "all_of", "none_of"}
NO_VALUE_OPS = {"is_empty", "is_not_empty"}


# A registered field's SQL for the customer row ``c``: (days of the condition or None, now) ->
# (SQL text with %s placeholders, its values). A number field gives a number per customer, a
# text or choice field a value without placeholders, a bool field a condition.
RuleFieldSql = Callable[[int | None, datetime], tuple[str, tuple[Any, ...]]]


@dataclass(frozen=True)
class FieldSpec:
    kind: str  # text, choice, number, date, set, tags, bool, segment
    group: str  # profile, behaviour, score, tags, consent
    column: str = ""  # ORM path for plain columns
    operators: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    window: bool = False  # accepts "days"
    needs_event: bool = False
    # Fields registered by apps above segments (register_rule_field): their SQL and label.
    sql: RuleFieldSql | None = None
    label: Any = None


def _text(column: str, group: str = "profile") -> FieldSpec:
    return FieldSpec("text", group, column, TEXT_OPS)


def _choice(column: str, choices: tuple[str, ...], group: str = "profile") -> FieldSpec:
    return FieldSpec("choice", group, column, CHOICE_OPS, choices)


def _number(column: str, group: str, window: bool = False) -> FieldSpec:
    return FieldSpec("number", group, column, NUMBER_OPS, window=window)


# The choices of the stored scores, so rules and scores cannot drift apart.
RFM_SEGMENTS = tuple(RFMSegment.values)
LIFECYCLE_STAGES = tuple(LifecycleStage.values)
CONSENT_CHANNELS = ("email", "sms", "phone", "wechat")
CONSENT_PURPOSES = ("marketing", "service")

FIELDS: dict[str, FieldSpec] = {
    # profile: geography, demographics, person or company
    "kind": _choice("kind", ("person", "company")),
    "name": _text("name"),
    "gender": _choice("gender", ("f", "m", "o", "")),
    "age": _number("birth_year", "profile"),  # by birth year: the birthday is encrypted
    "birth_year": _number("birth_year", "profile"),
    "age_band": _text("age_band"),
    "income_band": _text("income_band"),
    "occupation": _text("occupation"),
    "industry": _text("industry"),
    "country": _text("country"),
    "province": _text("province"),
    "city": _text("city"),
    "preferred_language": _choice("preferred_language", ("zh-hans", "en", "")),
    "source_channel": _text("source_channel"),
    "created_at": FieldSpec("date", "profile", "created_at", DATE_OPS),
    # behaviour
    "bought_product": FieldSpec("set", "behaviour", operators=SET_OPS, window=True),
    "bought_category": FieldSpec("set", "behaviour", operators=SET_OPS, window=True),
    "order_count": _number("", "behaviour", window=True),
    "spend": _number("", "behaviour", window=True),
    "last_order": FieldSpec("date", "behaviour", operators=DATE_OPS),
    "event": FieldSpec(
        "set", "behaviour", operators=SET_OPS, window=True, needs_event=True
    ),  # value: event names
    "browsed_not_bought": FieldSpec("bool", "behaviour", operators=BOOL_OPS, window=True),
    # scores (scoring.CustomerScore, one row per customer)
    "rfm_segment": _choice("score__rfm_segment", RFM_SEGMENTS, "score"),
    "lifecycle_stage": _choice("score__lifecycle_stage", LIFECYCLE_STAGES, "score"),
    "clv": _number("score__clv", "score"),
    "churn_risk": _number("score__churn_risk", "score"),
    "churn_percentile": _number("score__churn_percentile", "score"),
    "r_score": _number("score__r_score", "score"),
    "f_score": _number("score__f_score", "score"),
    "m_score": _number("score__m_score", "score"),
    # tags, consent, other segments
    "tag": FieldSpec("tags", "tags", operators=TAG_OPS),
    "consent": FieldSpec("bool", "consent", operators=BOOL_OPS),
    "in_segment": FieldSpec("segment", "segments", operators=MEMBER_OPS),
}

# Labels of the groups registered fields add (catalogue.GROUPS has the built-in ones).
GROUP_LABELS: dict[str, Any] = {}
DEFAULT_OPERATORS = {
    "number": NUMBER_OPS,
    "text": TEXT_OPS,
    "choice": CHOICE_OPS,
    "bool": BOOL_OPS,
}


def register_rule_field(
    name: str,
    *,
    kind: str,
    group: str,
    sql: RuleFieldSql,
    label: Any,
    group_label: Any = None,
    choices: tuple[str, ...] = (),
    operators: tuple[str, ...] | None = None,
    window: bool = False,
) -> None:
    """Add a rule field from an app above segments (call from its AppConfig.ready()).

    kind: number, text, choice or bool; sql(days, now) gives its SQL per customer row ``c``
    (see RuleFieldSql); group and group_label place it in the builder's lists.
    """
    if name in FIELDS and FIELDS[name].sql is None:
        raise ValueError(f"{name} is a built-in rule field")
    if kind not in DEFAULT_OPERATORS:
        raise ValueError(f"a registered rule field is one of {', '.join(DEFAULT_OPERATORS)}")
    FIELDS[name] = FieldSpec(
        kind, group, "", operators or DEFAULT_OPERATORS[kind], tuple(choices), window,
        sql=sql, label=label,
    )  # fmt: skip
    if group_label is not None:
        GROUP_LABELS[group] = group_label


CONDITION_KEYS = {"field", "operator", "value", "days", "channel", "purpose"}
GROUP_KEYS = {"match", "conditions", "negate"}
MAX_DEPTH = 8


class RuleError(ValueError):
    """A rule is invalid; .errors lists every problem with its path."""

    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


# Returns (rule, is_dynamic) of another segment, or None when it does not exist.
SegmentLookup = Callable[[int], "tuple[dict[str, Any], bool] | None"]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_value(path: str, name: str, spec: FieldSpec, op: str, cond: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    has_value = "value" in cond
    value = cond.get("value")
    if op in NO_VALUE_OPS:
        return errors
    if not has_value:
        return [f"{path}: operator '{op}' of field '{name}' needs a value"]
    if op in LIST_OPS and spec.kind not in ("segment",):
        if not isinstance(value, list) or not value:
            return [f"{path}: operator '{op}' needs a non-empty list as value"]
        items = value
    elif op == "between":
        if not isinstance(value, list) or len(value) != 2:
            return [f"{path}: operator 'between' needs a list of two values [low, high]"]
        items = value
    else:
        items = [value]
    if too_many := limits.check_items(path, items):
        return [too_many]
    for item in items:
        if spec.kind == "number" and not _is_number(item):
            errors.append(f"{path}: field '{name}' compares numbers, got {item!r}")
        elif spec.kind == "number" and (bad := limits.check_number(path, name, item)):
            errors.append(bad)
        elif spec.kind == "date":
            if op in ("within_days", "not_within_days"):
                if not isinstance(item, int) or isinstance(item, bool) or item < 0:
                    errors.append(f"{path}: operator '{op}' needs a whole number of days")
                elif bad := limits.check_days(path, f"operator '{op}'", item):
                    errors.append(bad)
            elif not (isinstance(item, str) and _looks_like_date(item)):
                errors.append(f"{path}: field '{name}' needs a date YYYY-MM-DD, got {item!r}")
            elif bad := limits.check_date(path, name, item):
                errors.append(bad)
        elif spec.kind in ("text", "set") and not isinstance(item, str):
            errors.append(f"{path}: field '{name}' needs text values, got {item!r}")
        elif spec.kind in ("text", "set", "tags") and isinstance(item, str):
            if bad := limits.check_text(path, name, item):
                errors.append(bad)
        elif spec.kind == "choice" and item not in spec.choices:
            allowed = ", ".join(repr(c) for c in spec.choices)
            errors.append(f"{path}: {item!r} is not a value of '{name}' (one of {allowed})")
        elif spec.kind == "tags" and not isinstance(item, str | int):
            errors.append(f"{path}: field 'tag' needs tag names or ids, got {item!r}")
        elif spec.kind == "bool" and not isinstance(item, bool):
            errors.append(f"{path}: field '{name}' needs true or false, got {item!r}")
        elif spec.kind == "segment" and (not isinstance(item, int) or isinstance(item, bool)):
            errors.append(f"{path}: field 'in_segment' needs a segment id, got {item!r}")
        is_id = spec.kind in ("tags", "segment") and _is_number(item) and isinstance(item, int)
        if is_id and (bad := limits.check_id(path, name, item)):
            errors.append(bad)
    return errors


def _looks_like_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _check_condition(path: str, cond: dict[str, Any]) -> list[str]:
    unknown_keys = set(cond) - CONDITION_KEYS
    if unknown_keys:
        return [f"{path}: unknown key(s) {', '.join(sorted(map(repr, unknown_keys)))}"]
    name = cond.get("field")
    if not isinstance(name, str) or not name:
        return [f"{path}: a condition needs a 'field'"]
    spec = FIELDS.get(name)
    if spec is None and name == "birthday":
        return [
            f"{path}: the birthday is stored encrypted and cannot be compared; use 'age' or 'birth_year'"
        ]
    if spec is None:
        return [f"{path}: unknown field {name!r}"]
    op = cond.get("operator")
    if op not in spec.operators:
        allowed = ", ".join(spec.operators)
        return [f"{path}: operator {op!r} does not apply to {spec.kind} field {name!r} ({allowed})"]
    # JSON does not tell 3 from 3.0: a whole float is a whole number of days.
    if spec.kind == "date" and isinstance(cond.get("value"), float) and cond["value"].is_integer():
        cond["value"] = int(cond["value"])
    if isinstance(cond.get("days"), float) and cond["days"].is_integer():
        cond["days"] = int(cond["days"])
    errors = _check_value(path, name, spec, op, cond)
    if not errors and name in ("city", "province") and op in ("eq", "ne", "in", "not_in"):
        # Places are stored in one form: 深圳, 深圳市 and Shenzhen all mean 深圳.
        value = cond["value"]
        cond["value"] = (
            [normalize_place(name, v) for v in value]
            if isinstance(value, list)
            else normalize_place(name, value)
        )
    if "days" in cond:
        days = cond["days"]
        if not spec.window:
            errors.append(f"{path}: field {name!r} takes no 'days' window")
        elif not isinstance(days, int) or isinstance(days, bool) or days < 1:
            errors.append(f"{path}: 'days' must be a whole number of days, at least 1")
        elif bad := limits.check_days(path, "'days'", days):
            errors.append(bad)
    elif name == "browsed_not_bought":
        errors.append(f"{path}: field 'browsed_not_bought' needs 'days'")
    if name == "consent":
        if cond.get("channel") not in CONSENT_CHANNELS:
            errors.append(f"{path}: consent needs 'channel', one of {', '.join(CONSENT_CHANNELS)}")
        if cond.get("purpose") not in CONSENT_PURPOSES:
            errors.append(f"{path}: consent needs 'purpose', one of {', '.join(CONSENT_PURPOSES)}")
    elif "channel" in cond or "purpose" in cond:
        errors.append(f"{path}: 'channel' and 'purpose' only apply to field 'consent'")
    return errors


def _walk(
    node: Any,
    path: str,
    depth: int,
    lookup: SegmentLookup | None,
    stack: tuple[int, ...],
    errors: list[str],
) -> None:
    if not isinstance(node, dict):
        errors.append(f"{path}: expected an object, got {type(node).__name__}")
        return
    if "conditions" in node or "match" in node:
        unknown_keys = set(node) - GROUP_KEYS
        if unknown_keys:
            errors.append(f"{path}: unknown key(s) {', '.join(sorted(map(repr, unknown_keys)))}")
        if node.get("match", "all") not in ("all", "any"):
            errors.append(f"{path}: 'match' must be 'all' or 'any', got {node.get('match')!r}")
        if not isinstance(node.get("negate", False), bool):
            errors.append(f"{path}: 'negate' must be true or false")
        conditions = node.get("conditions")
        if not isinstance(conditions, list):
            errors.append(f"{path}: a group needs a list of 'conditions'")
            return
        if not conditions:
            errors.append(f"{path}: empty group: add at least one condition")
            return
        if depth >= MAX_DEPTH:
            errors.append(f"{path}: groups nest deeper than {MAX_DEPTH} levels")
            return
        for i, child in enumerate(conditions):
            _walk(child, f"{path}.conditions[{i}]", depth + 1, lookup, stack, errors)
        return
    found = _check_condition(path, node)
    errors.extend(found)
    if found or node["field"] != "in_segment" or lookup is None:
        return
    ref = node["value"]
    if ref in stack:
        chain = " → ".join(f"#{s}" for s in (*stack, ref) if s is not None)
        errors.append(f"{path}: cycle: segment refers to itself ({chain})")
        return
    target = lookup(ref)
    if target is None:
        errors.append(f"{path}: segment #{ref} does not exist")
        return
    other_rule, _dynamic = target
    nested: list[str] = []
    _walk(other_rule, ROOT, 0, lookup, (*stack, ref), nested)
    # Report a cycle found further down at the condition in this rule that leads to it.
    for message in nested:
        if "cycle:" in message:
            errors.append(f"{path}: {message.split(': ', 1)[1]}")
            break


def validate_rule(
    rule: Any, lookup: SegmentLookup | None = None, segment_id: int | None = None
) -> dict[str, Any]:
    """Return the rule (place values put in stored form) if valid; raise RuleError otherwise."""
    errors: list[str] = []
    if not isinstance(rule, dict) or "conditions" not in rule:
        raise RuleError([f"{ROOT}: a rule is a group {{'match': 'all', 'conditions': [...]}}"])
    if problem := limits.check_json(rule, ROOT):
        raise RuleError([problem])
    _walk(rule, ROOT, 0, lookup, (segment_id,) if segment_id is not None else (), errors)
    if errors:
        raise RuleError(errors)
    return rule


def iter_conditions(rule: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Yield every condition (leaf) of a rule."""
    for child in rule.get("conditions", []):
        if "conditions" in child:
            yield from iter_conditions(child)
        else:
            yield child


def describe_fields() -> list[dict[str, Any]]:
    """Return the field catalogue for the rule editor."""
    return [
        {
            "field": name,
            "type": spec.kind,
            "group": spec.group,
            "operators": list(spec.operators),
            "choices": list(spec.choices),
            "window": spec.window,
        }
        for name, spec in FIELDS.items()
    ]
