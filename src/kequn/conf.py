"""Read Kequn's environment (KEQUN_*) and prepare the data directory; no Django imports.

This is the one module that reads KEQUN_* variables: settings and the apps call read_env
or a function below, so every name is listed in ENVIRONMENT (and in README's settings
table; tests/test_settings_documented.py checks both).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, overload

# Every variable Kequn reads. Values are read when asked for, not at import, so a process
# (or a test) that changes one sees the change.
ENVIRONMENT = frozenset(
    {
        "KEQUN_ALLOWED_HOSTS",
        "KEQUN_ANALYTICS_CONFIG",
        "KEQUN_API_IP_RATE",
        "KEQUN_API_RATE",
        "KEQUN_AUDIT_HEAD_FILE",
        "KEQUN_BACKUP_DIR",
        "KEQUN_BACKUP_KEEP",
        "KEQUN_COLLECT_RATE",
        "KEQUN_DATABASE_URL",
        "KEQUN_DATA_DIR",
        "KEQUN_DEBUG",
        "KEQUN_DEFAULT_REGION",
        "KEQUN_ERASURE_JOURNAL",
        # feedback (kequn.feedback) and every link sent to customers
        "KEQUN_FEEDBACK_FOLLOW_UP_HOURS",
        "KEQUN_PUBLIC_URL",
        # service desk (kequn.service)
        "KEQUN_SERVICE_ADDRESS",
        "KEQUN_SERVICE_ATTACHMENT_MAX_MB",
        "KEQUN_SERVICE_FORM_RATE",
        "KEQUN_SERVICE_IMAP_URL",
        "KEQUN_SERVICE_UNKNOWN_SENDER",
        # engagement channels (kequn.engage.channels)
        "KEQUN_EMAIL_URL",
        "KEQUN_EMAIL_FROM",
        "KEQUN_EMAIL_RATE",
        "KEQUN_EMAIL_CONNECTIONS",
        "KEQUN_DKIM_KEY_FILE",
        "KEQUN_DKIM_SELECTOR",
        "KEQUN_SMS_URL",
        "KEQUN_SMS_TOKEN",
        "KEQUN_SMS_SIGN_NAME",
        "KEQUN_SMS_RATE",
        "KEQUN_WECHAT_APP_ID",
        "KEQUN_WECHAT_APP_SECRET",
        "KEQUN_WECHAT_API_URL",
        "KEQUN_WECHAT_RATE",
        "KEQUN_WEBHOOK_SECRET",
        "KEQUN_WEBHOOK_RATE",
        # journeys (kequn.journeys)
        "KEQUN_JOURNEY_POLL_SECONDS",
        # campaigns (kequn.engage)
        "KEQUN_CONTROL_GROUP_PERCENT",
        "KEQUN_MARKETING_CAPS",
        "KEQUN_QUIET_HOURS",
        "KEQUN_SEND_LEASE_SECONDS",
        "KEQUN_IMPORT_STALE_MINUTES",
        # monitoring (kequn.monitoring)
        "KEQUN_ALERTS_CONFIG",
        "KEQUN_LOG_FORMAT",
        "KEQUN_METRICS_TOKEN",
        "KEQUN_KEY_FILE",
        "KEQUN_LANGUAGE",
        "KEQUN_LOGIN_COOLOFF_MINUTES",
        "KEQUN_LOGIN_FAILURE_LIMIT",
        "KEQUN_LOGIN_RATE",
        "KEQUN_LOG_LEVEL",
        "KEQUN_MASTER_KEY",
        "KEQUN_MASTER_KEY_FILE",
        "KEQUN_PDF_FONT",
        "KEQUN_PRIVACY_DEADLINE_DAYS",
        "KEQUN_PROXY_COUNT",
        "KEQUN_REDIS_URL",
        "KEQUN_SECRET_KEY",
        "KEQUN_SECURE_COOKIES",
        # `kequn serve` (kequn.serving)
        "KEQUN_SERVE_WORKERS",
        "KEQUN_SERVE_THREADS",
        "KEQUN_SESSION_IDLE_MINUTES",
        "KEQUN_SESSION_MAX_HOURS",
        "KEQUN_SOURCE_TRUST",
        # `kequn analytics refresh --engine spark`
        "KEQUN_SPARK_MASTER",
        "KEQUN_TIME_ZONE",
        "KEQUN_XLSX_MAX_COLUMNS",
        "KEQUN_XLSX_MAX_MB",
        "KEQUN_XLSX_MAX_ROWS",
        "KEQUN_XLSX_MAX_STRINGS",
    }
)


class ConfigError(Exception):
    """A setting or the data directory is unusable; the message says what to do."""


@overload
def read_env(name: str, default: str) -> str: ...
@overload
def read_env(name: str, default: None = None) -> str | None: ...
def read_env(name: str, default: str | None = None) -> str | None:
    """Return the environment variable ``name`` (one of ENVIRONMENT), or ``default`` when unset."""
    if name not in ENVIRONMENT:
        raise KeyError(f"{name} is not a Kequn setting; add it to kequn.conf.ENVIRONMENT")
    return os.environ.get(name, default)


def get_data_dir() -> Path:
    """Return KEQUN_DATA_DIR (default ./kequn-data) as an absolute path."""
    return Path(read_env("KEQUN_DATA_DIR", "kequn-data")).expanduser().resolve()


def ensure_data_dir(path: Path | None = None) -> Path:
    """Create the data directory if needed and check that it is writable."""
    path = path or get_data_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"data directory {path} is not writable ({exc.strerror or exc}); "
            "set KEQUN_DATA_DIR to a directory you can write"
        ) from None
    return path


def load_secret_key() -> str:
    """Return KEQUN_SECRET_KEY, or the key kept in the data directory (created on first run)."""
    if key := read_env("KEQUN_SECRET_KEY"):
        return key
    path = get_data_dir() / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    except OSError:
        # An unreadable data dir is reported by `kequn` commands; Django still needs a key to start.
        return "unusable-" + secrets.token_urlsafe(40)
    try:
        ensure_data_dir()
        key = secrets.token_urlsafe(50)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        return key
    except FileExistsError:
        return path.read_text().strip()
    except (OSError, ConfigError):
        return "unusable-" + secrets.token_urlsafe(40)


def get_database_url() -> str:
    """Return KEQUN_DATABASE_URL, defaulting to SQLite in the data directory."""
    return read_env("KEQUN_DATABASE_URL") or f"sqlite:///{get_data_dir() / 'kequn.sqlite3'}"


def get_analytics_config_path() -> Path | None:
    """Return KEQUN_ANALYTICS_CONFIG, else <data dir>/analytics.toml if it exists, else None."""
    if value := read_env("KEQUN_ANALYTICS_CONFIG"):
        return Path(value).expanduser()
    default = get_data_dir() / "analytics.toml"
    return default if default.exists() else None


def get_spark_master() -> str:
    """Return KEQUN_SPARK_MASTER, the Spark master of `analytics refresh --engine spark` [local[2]]."""
    return read_env("KEQUN_SPARK_MASTER") or "local[2]"


def _read_in_range(name: str, default: Any, low: Any, high: Any, parse: Any, kind: str) -> Any:
    """Return setting ``name`` parsed, or raise ConfigError naming it, ``kind`` and the range."""
    text = read_env(name)
    if text is None or not text.strip():
        return default
    try:
        value = parse(text.strip())
    except ValueError:
        value = None
    if value is None or not low <= value <= high:  # the comparison also refuses nan
        raise ConfigError(f"{name}={text!r} must be {kind} from {low:.15g} to {high:.15g}")
    return value


def read_whole_number(name: str, default: int, *, low: int = 1, high: int = 64) -> int:
    """Return the whole-number setting ``name``, or raise ConfigError naming it and the range."""
    return int(_read_in_range(name, default, low, high, int, "a whole number"))


def read_number(name: str, default: float, *, low: float, high: float) -> float:
    """Return the number setting ``name``, or raise ConfigError naming it and the range."""
    return float(_read_in_range(name, default, low, high, float, "a number"))


def get_serve_workers() -> int:
    """Return KEQUN_SERVE_WORKERS, the server's worker processes [4]."""
    return read_whole_number("KEQUN_SERVE_WORKERS", 4)


def get_serve_threads() -> int:
    """Return KEQUN_SERVE_THREADS, the threads (and database connections) of each worker [2]."""
    return read_whole_number("KEQUN_SERVE_THREADS", 2)


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean environment variable (1/true/yes/on)."""
    value = read_env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}
