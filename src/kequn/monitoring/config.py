"""Alert thresholds: the defaults, and the operator's file (KEQUN_ALERTS_CONFIG, TOML or JSON).

Every key is optional; an unknown key or a value of the wrong kind stops with one line naming
the file, the key and what is expected.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field, fields
from datetime import time
from pathlib import Path
from typing import Any

from django.conf import settings

from kequn.conf import ConfigError, get_data_dir

DAY_SETS = ("workdays", "weekdays", "all")


@dataclass(frozen=True)
class AlertConfig:
    """Thresholds and recipients of the security alert rules."""

    # Records shown unmasked or exported by one user in the window, compared with baselines.
    window_minutes: int = 60
    baseline_days: int = 14
    volume_factor: float = 5.0
    volume_min_records: int = 500
    # Failed logins in the window.
    failed_usernames_per_ip: int = 10
    failed_ips_per_username: int = 5
    # Personal data seen outside working hours (local time, KEQUN_TIME_ZONE).
    working_hours: tuple[time, time] = (time(8), time(20))
    working_days: str = "workdays"  # China's working days, 调休 included (chinese-calendar)
    admin_new_address: bool = True
    backup_max_age_hours: int = 26
    audit_verify_hours: int = 24
    # Where alerts go: active administrators with an email, these addresses, and the webhook.
    email_administrators: bool = True
    emails: tuple[str, ...] = field(default=())
    webhook_url: str = ""
    min_severity: str = "warning"


INTEGER_KEYS = {
    "window_minutes": (5, 24 * 60),
    "baseline_days": (1, 365),
    "volume_min_records": (1, 10**9),
    "failed_usernames_per_ip": (2, 10**6),
    "failed_ips_per_username": (2, 10**6),
    "backup_max_age_hours": (1, 24 * 365),
    "audit_verify_hours": (0, 24 * 365),
}
KNOWN_KEYS = {f.name for f in fields(AlertConfig)}
HOURS = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")


def get_config_path() -> Path | None:
    """Return KEQUN_ALERTS_CONFIG, else <data dir>/alerts.toml if it exists, else None."""
    if settings.KEQUN_ALERTS_CONFIG:
        return Path(settings.KEQUN_ALERTS_CONFIG).expanduser()
    default = get_data_dir() / "alerts.toml"
    return default if default.exists() else None


def load_alert_config(path: Path | None = None) -> AlertConfig:
    """Return the alert settings of the operator's file (the defaults when there is none)."""
    path = path if path is not None else get_config_path()
    if path is None:
        return AlertConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the alert settings ({exc.strerror})") from None
    try:
        raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if path.suffix == ".json" else "TOML"
        raise ConfigError(f"{path}: not valid {kind}: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a table of settings")
    return parse_alert_config(raw, str(path))


def parse_alert_config(raw: dict[str, Any], origin: str = "alert settings") -> AlertConfig:
    """Check every key of raw and return the settings; raise ConfigError naming a bad one."""
    unknown = sorted(set(raw) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(
            f"{origin}: unknown setting {unknown[0]!r}; use one of {', '.join(sorted(KNOWN_KEYS))}"
        )
    options: dict[str, Any] = {}
    for key, value in raw.items():
        options[key] = parse_value(key, value, origin)
    return AlertConfig(**options)


def parse_value(key: str, value: Any, origin: str) -> Any:
    """Return one setting's value in its stored form, or raise ConfigError saying what fits."""
    if key in INTEGER_KEYS:
        low, high = INTEGER_KEYS[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(f"{origin}: {key} must be a whole number from {low} to {high}")
        return value
    if key == "volume_factor":
        if isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value <= 1000:
            raise ConfigError(f"{origin}: volume_factor must be a number from 1 to 1000")
        return float(value)
    if key in {"admin_new_address", "email_administrators"}:
        if not isinstance(value, bool):
            raise ConfigError(f"{origin}: {key} must be true or false")
        return value
    if key == "working_hours":
        match = HOURS.match(str(value).strip())
        if not match:
            raise ConfigError(f'{origin}: working_hours must look like "08:00-20:00"')
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2) or (h1, m1) >= (h2, m2):
            raise ConfigError(
                f"{origin}: working_hours {value!r} must be a start before an end in one day"
            )
        return (time(h1, m1), time(23, 59, 59, 999999) if h2 == 24 else time(h2, m2))
    if key == "working_days":
        if value not in DAY_SETS:
            raise ConfigError(f"{origin}: working_days must be one of {', '.join(DAY_SETS)}")
        return value
    if key == "emails":
        if not isinstance(value, list) or not all(isinstance(v, str) and "@" in v for v in value):
            raise ConfigError(f'{origin}: emails must be a list of addresses, e.g. ["a@b.cn"]')
        return tuple(value)
    if key == "webhook_url":
        if not isinstance(value, str) or (value and not value.startswith(("http://", "https://"))):
            raise ConfigError(f"{origin}: webhook_url must be an http:// or https:// address")
        return value
    if key == "min_severity":
        if value not in ("info", "warning", "critical"):
            raise ConfigError(f"{origin}: min_severity must be info, warning or critical")
        return value
    raise ConfigError(f"{origin}: unknown setting {key!r}")  # pragma: no cover
