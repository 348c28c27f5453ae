"""The master key (key-encryption key) kept outside the database, and keys derived from it.

KEQUN_MASTER_KEY holds the key as 32 bytes in URL-safe base64; otherwise it is read from
KEQUN_MASTER_KEY_FILE (KEQUN_KEY_FILE is the older name; default: master.key in the data
directory, created on first run with mode 0600). The recommended setup keeps the key out of
the data directory: whoever copies a data directory that holds its key can read the personal
data and recompute the audit chain. `kequn demo` and `kequn keys status` say so when it lies
there (see describe_key_custody).
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.utils.translation import gettext as _

from kequn.conf import ConfigError, ensure_data_dir, get_data_dir, read_env

KEY_BYTES = 32


KEY_FILE_SETTINGS = ("KEQUN_MASTER_KEY_FILE", "KEQUN_KEY_FILE")


def get_key_file() -> Path:
    """Return KEQUN_MASTER_KEY_FILE (or the older KEQUN_KEY_FILE), or master.key in the data dir."""
    for name in KEY_FILE_SETTINGS:
        if value := read_env(name):
            return Path(value).expanduser().resolve()
    return get_data_dir() / "master.key"


def is_inside(path: Path, folder: Path) -> bool:
    """Return whether path lies in folder (or below it)."""
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def get_key_source() -> str:
    """Return where the master key comes from: "environment" or the key file's path."""
    return "environment" if read_env("KEQUN_MASTER_KEY") else str(get_key_file())


def is_key_beside_data() -> bool:
    """Return whether the master key file lies in the data directory (copied with it)."""
    return not read_env("KEQUN_MASTER_KEY") and is_inside(get_key_file(), get_data_dir())


def describe_key_custody() -> str:
    """Return one paragraph on where the master key is, with the way to move it if it should."""
    if read_env("KEQUN_MASTER_KEY"):
        return _("Master key: from KEQUN_MASTER_KEY (not stored in the data directory).")
    path = get_key_file()
    if not is_key_beside_data():
        return _("Master key: %(path)s (outside the data directory).") % {"path": path}
    folder = "/etc/kequn"
    return _(
        "WARNING: the master key %(path)s lies in the data directory, beside the database: "
        "whoever copies that directory can read the personal data and rewrite the audit trail. "
        "Move it out, e.g. `mkdir -p %(folder)s && mv %(path)s %(folder)s/master.key` and set "
        "KEQUN_MASTER_KEY_FILE=%(folder)s/master.key (or put its contents in KEQUN_MASTER_KEY); "
        "keep a copy of it apart from the backups."
    ) % {"path": path, "folder": folder}


def decode_master_key(text: str, origin: str) -> bytes:
    """Decode a base64 master key; raise ConfigError naming where it came from."""
    try:
        key = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise ConfigError(
            f"{origin} is not a valid master key: it must be {KEY_BYTES} bytes in URL-safe "
            'base64 (create one with `python -c "import base64,os;'
            'print(base64.urlsafe_b64encode(os.urandom(32)).decode())"`)'
        )
    return key


@lru_cache(maxsize=1)
def load_master_key() -> bytes:
    """Return the master key, creating the key file on first run."""
    if text := read_env("KEQUN_MASTER_KEY"):
        return decode_master_key(text, "KEQUN_MASTER_KEY")
    path = get_key_file()
    try:
        return decode_master_key(path.read_text(), str(path))
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ConfigError(f"cannot read the key file {path} ({exc.strerror or exc})") from None
    if path.parent == get_data_dir():
        ensure_data_dir()
    text = base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return decode_master_key(path.read_text(), str(path))
    except OSError as exc:
        raise ConfigError(f"cannot create the key file {path} ({exc.strerror or exc})") from None
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")
    return decode_master_key(text, str(path))


@lru_cache(maxsize=32)
def derive_key(purpose: str) -> bytes:
    """Return a 32-byte key for one purpose (e.g. "audit-chain"), derived from the master key."""
    return HKDF(
        algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=f"kequn:{purpose}".encode()
    ).derive(load_master_key())
