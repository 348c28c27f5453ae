"""List backups, prune old ones, and the nightly backup job."""

from __future__ import annotations

from pathlib import Path

from kequn.security.actors import Actor, system_actor
from kequn.security.audit import services as audit
from kequn.security.backups.fileformat import (
    NAME_PATTERN,
    SUFFIX,
    BackupError,
    get_backup_dir,
    get_keep_count,
    read_header,
)
from kequn.security.backups.services import create_backup

# --------------------------------------------------------------------------- listing, pruning


def list_backups(directory: Path | None = None) -> list[tuple[Path, dict | None, str]]:
    """List backup files, newest first, with their readable header (None if unreadable)."""
    directory = Path(directory) if directory else get_backup_dir()
    if not directory.is_dir():
        return []
    found = []
    for path in sorted(directory.glob(f"*{SUFFIX}"), reverse=True):
        try:
            header, _ = read_header(path)
            header.pop("_raw", None)
            found.append((path, header, ""))
        except BackupError as exc:
            found.append((path, None, str(exc)))
    return found


def prune_backups(keep: int, directory: Path | None = None) -> list[Path]:
    """Delete all but the newest `keep` backups made by Kequn's naming; return those deleted."""
    directory = Path(directory) if directory else get_backup_dir()
    if not directory.is_dir():
        return []
    ours = sorted(
        (p for p in directory.iterdir() if NAME_PATTERN.match(p.name)),
        key=lambda p: (p.stat().st_mtime, p.name),
    )
    doomed = ours[:-keep] if keep > 0 else ours
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


def record_backup_event(step: str, path: Path, *, by: Actor | None) -> None:
    """Append a backup or restore to the audit trail."""
    audit.record_event(
        audit.BACKUP,
        actor=by,
        target_type="backup",
        target_id=Path(path).name,
        detail={"step": step},
    )


def run_scheduled_backup() -> dict:
    """Make a backup into KEQUN_BACKUP_DIR and keep only the newest KEQUN_BACKUP_KEEP."""
    path = create_backup()
    removed = prune_backups(get_keep_count())
    record_backup_event("scheduled", path, by=system_actor("nightly-backup"))
    return {"backup": str(path), "removed": [p.name for p in removed]}
