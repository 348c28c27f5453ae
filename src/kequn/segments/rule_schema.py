"""The JSON Schema of a segment rule, published in the OpenAPI document.

Built from the field catalogue and the limits, so API clients (and schemathesis) see the
operators, value types, windows and bounds that validate_rule enforces. Four fields are left
out because their values must name existing rows (`tag`, `in_segment`, `bought_product`,
`bought_category`): a schema cannot say which exist. Groups nest up to two levels in the
schema; the server allows MAX_DEPTH.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import WithJsonSchema

from kequn.security.inputs import DATE_YEARS
from kequn.segments import limits
from kequn.segments.rules import (
    CONSENT_CHANNELS,
    CONSENT_PURPOSES,
    FIELDS,
    LIST_OPS,
    NO_VALUE_OPS,
    FieldSpec,
)

_NO_NUL = "^[^\\u0000]*$"
# Day 29-31 is left out so that every string the pattern allows is a real date.
DATE_PATTERN = (
    f"^({DATE_YEARS[0] // 100}[0-9]{{2}}|20[0-9]{{2}}|{DATE_YEARS[1]})"
    "-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])$"
)
SKIPPED = {"tag", "in_segment", "bought_product", "bought_category"}


def _item_schema(spec: FieldSpec, op: str) -> dict[str, Any]:
    if spec.kind == "number":
        return {"type": "number", "minimum": -limits.MAX_NUMBER, "maximum": limits.MAX_NUMBER}
    if spec.kind == "date":
        if op in ("within_days", "not_within_days"):
            return {"type": "integer", "minimum": 0, "maximum": limits.MAX_DAYS}
        return {"type": "string", "pattern": DATE_PATTERN}
    if spec.kind == "choice":
        return {"enum": list(spec.choices)}
    if spec.kind == "bool":
        return {"type": "boolean"}
    return {"type": "string", "maxLength": limits.MAX_TEXT, "pattern": _NO_NUL}


def _value_schema(spec: FieldSpec, op: str) -> dict[str, Any]:
    item = _item_schema(spec, op)
    if op in LIST_OPS:
        return {"type": "array", "items": item, "minItems": 1, "maxItems": limits.MAX_ITEMS}
    if op == "between":
        return {"type": "array", "items": item, "minItems": 2, "maxItems": 2}
    return item


def _condition_schemas() -> list[dict[str, Any]]:
    schemas = []
    for name, spec in FIELDS.items():
        if name in SKIPPED:
            continue
        for op in spec.operators:
            properties: dict[str, Any] = {"field": {"const": name}, "operator": {"const": op}}
            required = ["field", "operator"]
            if op not in NO_VALUE_OPS:
                properties["value"] = _value_schema(spec, op)
                required.append("value")
            if spec.window:
                properties["days"] = {"type": "integer", "minimum": 1, "maximum": limits.MAX_DAYS}
                if name == "browsed_not_bought":
                    required.append("days")
            if name == "consent":
                properties["channel"] = {"enum": list(CONSENT_CHANNELS)}
                properties["purpose"] = {"enum": list(CONSENT_PURPOSES)}
                required += ["channel", "purpose"]
            schemas.append(
                {
                    "type": "object",
                    "properties": properties,
                    "required": required,
                    "additionalProperties": False,
                }
            )
    return schemas


def _group(children: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "match": {"enum": ["all", "any"]},
            "negate": {"type": "boolean"},
            "conditions": {"type": "array", "items": {"anyOf": children}, "minItems": 1},
        },
        "required": ["conditions"],
        "additionalProperties": False,
    }


def get_rule_schema() -> dict[str, Any]:
    """Return the JSON Schema of a rule: a group of conditions or of groups of conditions."""
    conditions = _condition_schemas()
    schema = _group([*conditions, _group(conditions)])
    schema["description"] = (
        "A segment rule: {'match': 'all'|'any', 'conditions': [...]}; see the README for "
        "the fields. Rules naming tags, segments, products or categories ('tag', 'in_segment', "
        "'bought_product', 'bought_category') are accepted too."
    )
    return schema


# A rule in a request body: any JSON object to the parser (validate_rule explains what is
# wrong in one line), published with the schema above.
RuleBody = Annotated[dict[str, Any], WithJsonSchema(get_rule_schema())]
