"""Read an operator's analytics settings: RFM segment grid, lifecycle thresholds, horizons.

A TOML (or JSON) file, every key optional; what is left out keeps its default::

    churn_horizon_days = 60        # "churned" = no purchase within this many days
    clv_months = 24                # CLV horizon, discounted monthly
    monthly_discount_rate = 0.008

    [lifecycle]                    # any field of LifecycleThresholds
    at_risk_gap_multiple = 2.5

    [[segments]]                   # replaces the whole grid; the first match wins
    name = "champions"
    r = [5, 5]
    f = [4, 5]
    label_en = "Champions"         # optional for the ten standard names
    label_zh = "冠军客户"

Mistakes are reported in one line naming the file and the key, never half applied.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import AnalyticsInputError
from .lifecycle import LifecycleThresholds
from .rfm import DEFAULT_SEGMENT_RULES, SEGMENT_LABELS

TOP_LEVEL = {"churn_horizon_days", "clv_months", "monthly_discount_rate", "lifecycle", "segments"}
SEGMENT_KEYS = {"name", "r", "f", "label_en", "label_zh"}


@dataclass(frozen=True)
class AnalyticsConfig:
    """Settings score_customers takes; the defaults are Kequn's own."""

    segment_rules: dict[str, dict[str, tuple[int, int]]] = field(
        default_factory=lambda: dict(DEFAULT_SEGMENT_RULES)
    )
    segment_labels: dict[str, tuple[str, str]] = field(default_factory=dict)
    thresholds: LifecycleThresholds = field(default_factory=LifecycleThresholds)
    churn_horizon_days: int = 90
    clv_months: int = 12
    monthly_discount_rate: float = 0.01

    def score_options(self) -> dict[str, Any]:
        """Return the keyword arguments of score_customers these settings fix."""
        return {
            "segment_rules": self.segment_rules,
            "segment_labels": self.segment_labels,
            "thresholds": self.thresholds,
            "churn_horizon_days": self.churn_horizon_days,
            "clv_months": self.clv_months,
            "monthly_discount_rate": self.monthly_discount_rate,
        }


def read_analytics_config(
    path: str | Path | None, *, known_segments_only: bool = False
) -> AnalyticsConfig:
    """Return the settings in ``path`` (None: the defaults).

    ``known_segments_only`` refuses segment names outside the standard ten (and "other"):
    the store keeps segments in a column whose choices are those names.
    """
    if path is None:
        return AnalyticsConfig()
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise AnalyticsInputError(
            f"cannot read the analytics settings ({exc.strerror})", source=source
        ) from None
    try:
        raw = json.loads(text) if source.endswith(".json") else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise AnalyticsInputError(f"not valid {_format(source)}: {exc}", source=source) from None
    if not isinstance(raw, dict):
        raise AnalyticsInputError("expected a table of settings", source=source)
    unknown = sorted(set(raw) - TOP_LEVEL)
    if unknown:
        raise AnalyticsInputError(
            f"unknown setting {unknown[0]!r}; use {', '.join(sorted(TOP_LEVEL))}", source=source
        )
    options: dict[str, Any] = {}
    if "churn_horizon_days" in raw:
        options["churn_horizon_days"] = _number(raw, "churn_horizon_days", source, int, 1, 3650)
    if "clv_months" in raw:
        options["clv_months"] = _number(raw, "clv_months", source, int, 1, 120)
    if "monthly_discount_rate" in raw:
        options["monthly_discount_rate"] = _number(
            raw, "monthly_discount_rate", source, float, 0.0, 1.0
        )
    if "lifecycle" in raw:
        options["thresholds"] = _read_thresholds(raw["lifecycle"], source)
    if "segments" in raw:
        rules, labels = _read_segments(raw["segments"], source, known_segments_only)
        options["segment_rules"], options["segment_labels"] = rules, labels
    return AnalyticsConfig(**options)


def _format(source: str) -> str:
    return "JSON" if source.endswith(".json") else "TOML"


def _number(
    table: dict[str, Any],
    key: str,
    source: str,
    kind: type,
    low: float,
    high: float,
    where: str = "",
) -> Any:
    value = table[key]
    name = f"{where}{key}"
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if (kind is int and not is_int) or (kind is float and not (is_int or isinstance(value, float))):
        raise AnalyticsInputError(
            f"{name} must be {'a whole number' if kind is int else 'a number'}, not {value!r}",
            source=source,
        )
    if not low <= value <= high:
        raise AnalyticsInputError(
            f"{name} must be between {low} and {high}, not {value}", source=source
        )
    return kind(value)


def _read_thresholds(table: Any, source: str) -> LifecycleThresholds:
    if not isinstance(table, dict):
        raise AnalyticsInputError("[lifecycle] must be a table of thresholds", source=source)
    names = {f.name: f for f in fields(LifecycleThresholds)}
    values: dict[str, Any] = {}
    for key in table:
        if key not in names:
            raise AnalyticsInputError(
                f"unknown lifecycle threshold {key!r}; use {', '.join(names)}", source=source
            )
        if key == "new_days" and table[key] is None:
            continue
        integral = key in {"new_max_purchases", "loyal_min_purchases", "min_gaps_for_own_rhythm"}
        kind = int if integral else float
        values[key] = _number(table, key, source, kind, 0, 100_000, where="lifecycle.")
    thresholds = LifecycleThresholds(**values)
    if thresholds.at_risk_gap_multiple >= thresholds.churned_gap_multiple:
        raise AnalyticsInputError(
            "lifecycle.at_risk_gap_multiple must be below churned_gap_multiple "
            f"({thresholds.at_risk_gap_multiple} >= {thresholds.churned_gap_multiple})",
            source=source,
        )
    if thresholds.churned_p_alive >= thresholds.at_risk_p_alive:
        raise AnalyticsInputError(
            "lifecycle.churned_p_alive must be below at_risk_p_alive "
            f"({thresholds.churned_p_alive} >= {thresholds.at_risk_p_alive})",
            source=source,
        )
    return thresholds


def _read_segments(
    items: Any, source: str, known_only: bool
) -> tuple[dict[str, dict[str, tuple[int, int]]], dict[str, tuple[str, str]]]:
    if not isinstance(items, list) or not items:
        raise AnalyticsInputError(
            "segments must be a non-empty list of [[segments]] tables", source=source
        )
    rules: dict[str, dict[str, tuple[int, int]]] = {}
    labels: dict[str, tuple[str, str]] = {}
    for i, item in enumerate(items):
        where = f"segments[{i}]"
        if not isinstance(item, dict):
            raise AnalyticsInputError(f"{where} must be a table", source=source)
        unknown = sorted(set(item) - SEGMENT_KEYS)
        if unknown:
            raise AnalyticsInputError(
                f"{where}: unknown key {unknown[0]!r}; use {', '.join(sorted(SEGMENT_KEYS))}",
                source=source,
            )
        name = item.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 32:
            raise AnalyticsInputError(
                f"{where}.name must be a name of 1-32 characters", source=source
            )
        if name in rules:
            raise AnalyticsInputError(f"{where}: segment {name!r} is listed twice", source=source)
        if known_only and name not in SEGMENT_LABELS:
            raise AnalyticsInputError(
                f"{where}: unknown segment {name!r}; the store keeps {', '.join(SEGMENT_LABELS)}",
                source=source,
            )
        rule = {}
        for axis in ("r", "f"):
            if axis in item:
                rule[axis] = _score_range(item[axis], f"{where}.{axis}", source)
        rules[name] = rule
        if "label_en" in item or "label_zh" in item:
            en, zh = SEGMENT_LABELS.get(name, (name, name))
            labels[name] = (str(item.get("label_en", en)), str(item.get("label_zh", zh)))
    return rules, labels


def _score_range(value: Any, where: str, source: str) -> tuple[int, int]:
    ok = (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 5 for v in value)
        and value[0] <= value[1]
    )
    if not ok:
        raise AnalyticsInputError(
            f"{where} must be two scores from 1 to 5, low first, like [4, 5]; got {value!r}",
            source=source,
        )
    return (value[0], value[1])
