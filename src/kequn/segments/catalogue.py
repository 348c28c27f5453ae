"""The rule fields in words for the visual rule builder: groups, labels, operators, choices."""

from __future__ import annotations

from typing import Any

from django.db.models import Field, Model
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from kequn.customers.models import Consent, Customer
from kequn.scoring.models import CustomerScore
from kequn.segments.rules import CONSENT_CHANNELS, CONSENT_PURPOSES, FIELDS, GROUP_LABELS

GROUPS = {
    "profile": _("Profile"),
    "behaviour": _("Purchases and behaviour"),
    "score": _("Scores"),
    "tags": _("Tags"),
    "consent": _("Consent"),
    "segments": _("Other segments"),
}

# Labels of the fields that are not a column of the customer or score tables.
LABELS = {
    "kind": _("customer type"),
    "age": _("age"),
    "bought_product": _("bought product"),
    "bought_category": _("bought in category"),
    "order_count": _("number of purchases"),
    "spend": _("amount spent"),
    "last_order": _("last purchase"),
    "event": _("did event"),
    "browsed_not_bought": _("browsed without buying"),
    "tag": _("tags"),
    "consent": _("consent"),
    "in_segment": _("member of segment"),
}

OPERATORS = {
    "eq": _("is"),
    "ne": _("is not"),
    "in": _("is one of"),
    "not_in": _("is none of"),
    "contains": _("contains"),
    "starts_with": _("starts with"),
    "is_empty": _("is empty"),
    "is_not_empty": _("is not empty"),
    "gt": _("more than"),
    "gte": _("at least"),
    "lt": _("less than"),
    "lte": _("at most"),
    "between": _("between"),
    "before": _("before"),
    "after": _("after"),
    "within_days": _("within the last … days"),
    "not_within_days": _("not within the last … days"),
    "any_of": _("any of"),
    "all_of": _("all of"),
    "none_of": _("none of"),
    "is": _("is"),
}

# Which search the value of a field is picked with (see SegmentAdmin.lookup_view).
PICKERS = {
    "tag": "tag",
    "bought_category": "category",
    "bought_product": "product",
    "event": "event",
    "in_segment": "segment",
}

# Words the builder's script shows, in the user's language.
TEXTS = {
    "match_all": _("all of these are true"),
    "match_any": _("any of these is true"),
    "negate": _("exclude those who match"),
    "add_condition": _("Add condition"),
    "add_group": _("Add group"),
    "remove": _("Remove"),
    "choose_field": _("Choose a field…"),
    "value": _("value"),
    "and": pgettext_lazy("between two values", "and"),
    "days": _("in the last (days, optional)"),
    "days_required": _("in the last (days)"),
    "yes": _("yes"),
    "no": _("no"),
    "channel": _("channel"),
    "purpose": _("purpose"),
    "search": _("Type to search, Enter to add"),
    "incomplete": _("Complete the highlighted conditions to see the count."),
    "empty": _("Add a condition to see who matches."),
    "counting": _("Counting…"),
    "count": _("%s customers match this rule"),
    "sample": _("Some of them"),
    "advanced": _("Advanced: rule as JSON"),
    "invalid_json": _("Not valid JSON:"),
    "unknown_field": _("A field the builder does not know; edit it as JSON."),
    "group": _("Match"),
    "condition": _("Condition"),
    "field": _("Field"),
    "operator": _("operator"),
}


def _model_field(column: str) -> Field[Any, Any]:
    # A rule field's column: "score__x" on the customer's score row, else on the customer.
    model: type[Model] = CustomerScore if column.startswith("score__") else Customer
    field = model._meta.get_field(column.removeprefix("score__"))
    if not isinstance(field, Field):
        raise LookupError(f"{column} is a relation, not a column")
    return field


def _field_label(name: str, column: str) -> Any:
    if FIELDS[name].label is not None:  # a field another app registered
        return FIELDS[name].label
    if name in LABELS:
        return LABELS[name]
    return _model_field(column).verbose_name


def _choice_labels(column: str, values: tuple[str, ...]) -> list[dict[str, str]]:
    field = _model_field(column)
    labels = {str(k): v for k, v in field.choices or ()}
    return [{"value": v, "label": str(labels.get(v, v) or _("(empty)"))} for v in values]


def describe_catalogue() -> dict[str, Any]:
    """Return the rule fields grouped and in words (current language), for the builder."""
    groups: dict[str, dict[str, Any]] = {
        key: {"key": key, "label": str(label), "fields": []}
        for key, label in {**GROUPS, **GROUP_LABELS}.items()
    }
    for name, spec in FIELDS.items():
        groups[spec.group]["fields"].append(
            {
                "field": name,
                "label": str(_field_label(name, spec.column)),
                "type": spec.kind,
                "operators": [{"value": op, "label": str(OPERATORS[op])} for op in spec.operators],
                "choices": (
                    _choice_labels(spec.column, spec.choices)
                    if spec.choices and spec.column
                    else [{"value": v, "label": v} for v in spec.choices]
                ),
                "window": spec.window,
                "picker": PICKERS.get(name, ""),
            }
        )
    channels = dict(Consent.Channel.choices)
    purposes = dict(Consent.Purpose.choices)
    return {
        "groups": [g for g in groups.values() if g["fields"]],
        "channels": [{"value": c, "label": str(channels.get(c, c))} for c in CONSENT_CHANNELS],
        "purposes": [{"value": p, "label": str(purposes.get(p, p))} for p in CONSENT_PURPOSES],
        "texts": {key: str(text) for key, text in TEXTS.items()},
    }
