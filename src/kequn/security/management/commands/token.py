from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from kequn.security.actors import add_operator_argument, get_operator
from kequn.security.models import ApiToken
from kequn.security.services import create_api_token, revoke_api_token


class Command(BaseCommand):
    help = "Create, list or revoke API tokens (the token is printed once, only its hash is kept)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a token for a user")
        create.add_argument("--user", required=True, help="user name")
        create.add_argument("--name", default="", help="what the token is for")
        create.add_argument("--days", type=int, default=None, help="expire after N days")
        add_operator_argument(create)
        listing = sub.add_parser("list", help="list tokens")
        listing.add_argument("--user", default=None)
        revoke = sub.add_parser("revoke", help="revoke a token by id")
        revoke.add_argument("id", type=int)
        add_operator_argument(revoke)

    def handle(self, *args, action: str, **options):
        by = get_operator(options.get("by"))
        if action == "create":
            if not get_user_model().objects.filter(username=options["user"]).exists():
                raise CommandError(
                    f"no user named {options['user']!r}; create one with `kequn createsuperuser`"
                )
            if options["days"] is not None and options["days"] <= 0:
                raise CommandError("--days must be a positive number of days")
            expires = timezone.now() + timedelta(days=options["days"]) if options["days"] else None
            record, token = create_api_token(options["user"], options["name"], expires, by=by)
            self.stdout.write(token)
            self.stderr.write(
                f"token #{record.pk} for {options['user']}: copy it now, it is not shown again"
            )
        elif action == "list":
            tokens = ApiToken.objects.select_related("user")
            if options["user"]:
                tokens = tokens.filter(user__username=options["user"])
            for t in tokens:
                state = "revoked" if t.revoked else ("active" if t.is_usable() else "expired")
                self.stdout.write(f"{t.pk}\t{t.prefix}…\t{t.user.username}\t{state}\t{t.name}")
        else:
            if not ApiToken.objects.filter(pk=options["id"]).exists():
                raise CommandError(f"no token with id {options['id']}")
            revoke_api_token(options["id"], by=by)
            self.stdout.write(f"token #{options['id']} revoked")
