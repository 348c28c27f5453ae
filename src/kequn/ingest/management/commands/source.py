"""`kequn source create|list|revoke`: event sources and their write keys."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from kequn.events.models import Source
from kequn.ingest.services import create_source, revoke_source


class Command(BaseCommand):
    help = "Create, list or revoke event sources (write keys for the Segment-compatible API)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=["create", "list", "revoke"])
        parser.add_argument("name", nargs="?", default="")

    def handle(self, *args, **options) -> None:
        action, name = options["action"], options["name"]
        if action == "list":
            for source in Source.objects.all():
                state = _("active") if source.is_active else _("revoked")
                self.stdout.write(f"{source.name}\t{source.key_prefix}…\t{state}")
            return
        if not name:
            raise CommandError(
                _("give the source a name, e.g. `kequn source %(a)s web`") % {"a": action}
            )
        if action == "create":
            try:
                _source, key = create_source(name)
            except ValidationError as exc:
                raise CommandError("; ".join(exc.messages)) from None
            self.stdout.write(key)
            self.stderr.write(
                _("Write key for %(name)s (shown once; store it now).") % {"name": name}
            )
            return
        source = Source.objects.filter(name=name).first()
        if source is None:
            raise CommandError(_("no source named %(name)r") % {"name": name})
        revoke_source(source)
        self.stdout.write(_("revoked %(name)s") % {"name": name})
