"""Read Kequn's environment (KEQUN_*) and prepare the data directory; no Django imports."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


class ConfigError(Exception):
    """A setting or the data directory is unusable; the message says what to do."""


def get_data_dir() -> Path:
    """Return KEQUN_DATA_DIR (default ./kequn-data) as an absolute path."""
    return Path(os.environ.get("KEQUN_DATA_DIR", "kequn-data")).expanduser().resolve()


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
    if key := os.environ.get("KEQUN_SECRET_KEY"):
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
    return os.environ.get("KEQUN_DATABASE_URL") or f"sqlite:///{get_data_dir() / 'kequn.sqlite3'}"


def get_analytics_config_path() -> Path | None:
    """Return KEQUN_ANALYTICS_CONFIG, else <data dir>/analytics.toml if it exists, else None."""
    if value := os.environ.get("KEQUN_ANALYTICS_CONFIG"):
        return Path(value).expanduser()
    default = get_data_dir() / "analytics.toml"
    return default if default.exists() else None


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean environment variable (1/true/yes/on)."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}
