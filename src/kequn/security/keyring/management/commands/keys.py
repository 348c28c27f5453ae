"""kequn keys status | rotate | retire: the data keys that encrypt personal fields."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from tqdm import tqdm

from kequn.security.actors import add_operator_argument, get_operator
from kequn.security.audit.head import describe_head_file
from kequn.security.keyring import services
from kequn.security.keys import describe_key_custody


class Command(BaseCommand):
    help = "Show, rotate or retire the data keys of the encrypted fields."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="subcommand", required=True)
        sub.add_parser("status", help="key versions of every encrypted field, rows per version")
        rotate = sub.add_parser(
            "rotate",
            help="new key version, then re-encrypt rows in batches while the system runs "
            "(re-run to resume after an interruption)",
        )
        rotate.add_argument("--field", default=None, help="one field, as app.model.field")
        rotate.add_argument(
            "--batch-size", type=int, default=1000, help="rows per transaction (default 1000)"
        )
        retire = sub.add_parser("retire", help="delete old key versions no row uses any more")
        retire.add_argument("--field", default=None, help="one field, as app.model.field")
        add_operator_argument(rotate)
        add_operator_argument(retire)

    def handle(self, *args, subcommand: str, **options):
        self.operator = get_operator(options.get("by"))
        purposes = list(services.get_encrypted_fields())
        if options.get("field"):
            try:
                services.get_field(options["field"])
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            purposes = [options["field"]]
        if subcommand == "status":
            self.stdout.write(describe_key_custody())
            self.stdout.write(describe_head_file())
            self.show_status(purposes)
        elif subcommand == "rotate":
            if options["batch_size"] < 1:
                raise CommandError("--batch-size must be at least 1")
            for purpose in purposes:
                self.rotate(purpose, options["batch_size"])
        else:
            for purpose in purposes:
                retired = services.retire_unused_keys(purpose, by=self.operator)
                pending = services.get_status(purpose).pending
                line = f"{purpose}: " + (
                    ngettext("retired version %(v)s", "retired versions %(v)s", len(retired))
                    % {"v": ", ".join(map(str, retired))}
                    if retired
                    else _("nothing to retire")
                )
                if pending:
                    line += "; " + ngettext(
                        "%(n)d row still on an old version: run kequn keys rotate",
                        "%(n)d rows still on old versions: run kequn keys rotate",
                        pending,
                    ) % {"n": pending}
                self.stdout.write(line)

    def show_status(self, purposes: list[str]) -> None:
        for purpose in purposes:
            status = services.get_status(purpose)
            parts = [
                f"v{v}{'*' if v == status.active else ''}: {n}" for v, n in status.versions.items()
            ]
            if status.plaintext:
                parts.append(_("not encrypted: %d") % status.plaintext)
            tail = _("pending re-encryption: %d") % status.pending if status.pending else _("done")
            self.stdout.write(f"{purpose:32} {'  '.join(parts) or '-'}  ({tail})")
        self.stdout.write(_("* active version (new values are encrypted with it)"))

    def rotate(self, purpose: str, batch_size: int) -> None:
        status = services.get_status(purpose)
        resuming = status.active is not None and status.pending > 0
        todo = status.pending if resuming else sum(status.versions.values()) + status.plaintext
        with tqdm(total=todo, desc=purpose, unit="row", disable=None) as bar:
            result = services.rotate_field(
                purpose, batch_size, progress=bar.update, by=self.operator
            )
        message = (
            _("%(field)s: resumed, now on v%(version)s; %(rows)d rows re-encrypted")
            if result.resumed
            else _("%(field)s: rotated to v%(version)s; %(rows)d rows re-encrypted")
        )
        params = {"field": purpose, "version": result.version, "rows": result.rows}
        self.stdout.write(
            message % params + "; " + _("run `kequn keys retire` to delete the old versions")
        )
