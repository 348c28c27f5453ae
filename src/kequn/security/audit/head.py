"""The pinned head of the audit chain: SEQUENCE:MAC kept outside the database.

The chain's MACs catch an edited, deleted or reordered entry, but not entries cut off the end:
the shorter chain is intact. Every successful `kequn audit verify` therefore writes the head it
verified to KEQUN_AUDIT_HEAD_FILE (default: audit-head beside the master key file), and later
verifies (and the back office's button) check that the chain still holds that entry with that
MAC. With the master key in the environment and no file set, the head is printed for an
external log instead.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from django.utils.translation import gettext as _

from kequn.conf import ConfigError, get_data_dir, read_env
from kequn.security.keys import get_key_file, is_inside

HEAD_PATTERN = re.compile(r"^(\d+):([0-9a-f]{64})$")
HEAD_FILE_NAME = "audit-head"


def parse_head(text: str, origin: str = "--head") -> tuple[int, str]:
    """Parse SEQUENCE:MAC; raise ValueError naming where it came from."""
    match = HEAD_PATTERN.match(text.strip().lower())
    if not match:
        raise ValueError(
            f"{origin} {text.strip()[:80]!r} is not SEQUENCE:MAC (e.g. 1520:9ba7…, as printed "
            "by an earlier `kequn audit verify`)"
        )
    return int(match.group(1)), match.group(2)


def get_head_file() -> Path | None:
    """Return KEQUN_AUDIT_HEAD_FILE, else audit-head beside the master key file, else None."""
    if value := read_env("KEQUN_AUDIT_HEAD_FILE"):
        return Path(value).expanduser().resolve()
    if read_env("KEQUN_MASTER_KEY"):
        return None  # the key is in the environment: no directory of its own to use
    return get_key_file().parent / HEAD_FILE_NAME


def read_pinned_head() -> tuple[int, str] | None:
    """Return the head pinned by an earlier verify, or None if none was pinned yet."""
    path = get_head_file()
    if path is None:
        return None
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(
            f"cannot read the audit head file {path} ({exc.strerror or exc})"
        ) from None
    try:
        return parse_head(text, str(path))
    except ValueError as exc:
        raise ConfigError(f"{exc}; fix or delete the file") from None


def pin_head(sequence: int, mac: str) -> Path | None:
    """Write SEQUENCE:MAC to the head file (atomically, owner-only); return it, or None if unset."""
    path = get_head_file()
    if path is None:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".audit-head-")
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{sequence}:{mac}\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except OSError as exc:
        raise ConfigError(
            f"cannot write the audit head file {path} ({exc.strerror or exc}): set "
            "KEQUN_AUDIT_HEAD_FILE to a writable path outside the data directory"
        ) from None
    return path


def describe_head_file() -> str:
    """Return one line saying where verified heads are pinned (or that they are not)."""
    path = get_head_file()
    if path is None:
        return _(
            "Audit head: not pinned to a file (master key in the environment); set "
            "KEQUN_AUDIT_HEAD_FILE, or note the head `kequn audit verify` prints in an external log."
        )
    if is_inside(path, get_data_dir()):
        return _(
            "Audit head: pinned in %(path)s, inside the data directory; set KEQUN_AUDIT_HEAD_FILE "
            "to a path outside it."
        ) % {"path": path}
    return _("Audit head: pinned in %(path)s.") % {"path": path}
