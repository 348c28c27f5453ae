import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from kequn.security import backups
from kequn.security.actors import add_operator_argument, get_operator


class Command(BaseCommand):
    # Backups and device resets must work even while some other app fails its checks.
    requires_system_checks = []
    help = (
        "Encrypted, consistent database backups: create, verify, restore, list. "
        "Restoring needs the same master key (KEQUN_MASTER_KEY or the key file): keep a copy."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="snapshot the database into a new backup file")
        create.add_argument("--out", default=None, help="directory [KEQUN_BACKUP_DIR]")
        create.add_argument(
            "--method",
            choices=["auto", "pg_dump", "copy"],
            default="auto",
            help="PostgreSQL: pg_dump, or a logical COPY dump [auto: pg_dump when installed]",
        )
        verify = sub.add_parser("verify", help="decrypt a backup and check it whole")
        verify.add_argument("file")
        restore = sub.add_parser("restore", help="restore a backup into the configured database")
        restore.add_argument("file")
        restore.add_argument(
            "--force", action="store_true", help="replace the contents of a non-empty database"
        )
        for operator_parser in (create, restore):
            add_operator_argument(operator_parser)
        listing = sub.add_parser("list", help="list backups")
        listing.add_argument("--dir", default=None, help="directory [KEQUN_BACKUP_DIR]")

    def handle(self, *args, action: str, **options):
        progress = sys.stderr.isatty()
        by = get_operator(options.get("by"))
        try:
            if action == "create":
                path = backups.create_backup(
                    options["out"], progress=progress, method=options["method"]
                )
                backups.record_backup_event("create", path, by=by)
                self.stdout.write(f"backup written to {path} ({path.stat().st_size} bytes)")
            elif action == "verify":
                contents = backups.verify_backup(Path(options["file"]), progress=progress)
                tables = contents.manifest["tables"]
                self.stdout.write(
                    f"{contents.path}: ok — {contents.manifest['kind']} backup of "
                    f"{contents.manifest['created_at']}, {len(tables)} tables, "
                    f"{sum(t['rows'] for t in tables.values())} rows"
                )
            elif action == "restore":
                contents = backups.restore_backup(
                    Path(options["file"]), force=options["force"], progress=progress
                )
                backups.record_backup_event("restore", contents.path, by=by)
                tables = contents.manifest["tables"]
                self.stdout.write(
                    f"restored {contents.path}: {len(tables)} tables, "
                    f"{sum(t['rows'] for t in tables.values())} rows; counts and checksums "
                    "match the manifest"
                )
                # What other apps keep outside the database (the erasure journal) is applied
                # again, so people erased after this backup was taken do not come back.
                try:
                    lines = backups.run_after_restore(by=by)
                except backups.AfterRestoreError as exc:
                    raise CommandError(f"restored, but {exc}") from None
                for line in lines:
                    self.stdout.write(line)
            else:
                found = backups.list_backups(Path(options["dir"]) if options["dir"] else None)
                if not found:
                    self.stdout.write(f"no backups in {options['dir'] or backups.get_backup_dir()}")
                for path, header, problem in found:
                    if header is None:
                        self.stdout.write(f"{path}\tunreadable: {problem}")
                    else:
                        self.stdout.write(
                            f"{path}\t{header['kind']}\t{header['created_at']}\t"
                            f"{path.stat().st_size} bytes"
                        )
        except backups.BackupError as exc:
            raise CommandError(str(exc)) from None
