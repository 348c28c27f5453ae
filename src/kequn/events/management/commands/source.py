"""`kequn source create|list|revoke`: event sources and their write keys."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from kequn.events.models import Source
from kequn.events.services import create_source, revoke_source
from kequn.security.actors import add_operator_argument, get_operator


class Command(BaseCommand):
    help = "Create, list or revoke event sources (write keys for the Segment-compatible API)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=["create", "list", "revoke"])
        parser.add_argument("name", nargs="?", default="")
        parser.add_argument(
            "--server",
            action="store_true",
            help="Make a server key (may update profiles; never put it in a web page or an app).",
        )
        add_operator_argument(parser)

    def handle(self, *args, **options) -> None:
        by = get_operator(options["by"])
        action, name = options["action"], options["name"]
        if action == "list":
            for source in Source.objects.all():
                state = _("active") if source.is_active else _("revoked")
                kind = source.get_key_type_display()
                self.stdout.write(f"{source.name}\t{source.key_prefix}…\t{kind}\t{state}")
            return
        if not name:
            raise CommandError(
                _("give the source a name, e.g. `kequn source %(a)s web`") % {"a": action}
            )
        if action == "create":
            key_type = Source.KeyType.SERVER if options["server"] else Source.KeyType.CLIENT
            try:
                _source, key = create_source(name=name, key_type=key_type, by=by)
            except ValidationError as exc:
                raise CommandError("; ".join(exc.messages)) from None
            self.stdout.write(key)
            if key_type == Source.KeyType.SERVER:
                self.stderr.write(
                    _(
                        "Server write key for %(name)s (shown once; store it now). It may update "
                        "customer profiles: keep it on your servers, never in a web page or an app."
                    )
                    % {"name": name}
                )
            else:
                self.stderr.write(
                    _("Write key for %(name)s (shown once; store it now).") % {"name": name}
                )
            return
        source = Source.objects.filter(name=name).first()
        if source is None:
            raise CommandError(_("no source named %(name)r") % {"name": name})
        revoke_source(source=source, by=by)
        self.stdout.write(_("revoked %(name)s") % {"name": name})
