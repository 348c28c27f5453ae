"""kequn user add NAME --role ROLE [--email E] | role NAME ROLE | list — back-office users."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from kequn.security.actors import add_operator_argument, get_operator
from kequn.security.roles import ROLES
from kequn.security.services import create_user, get_user_roles, set_user_role


class Command(BaseCommand):
    help = "Add back-office users in a role (the password is printed once), change roles, list."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="add a user; prints a generated password once")
        add.add_argument("username")
        add.add_argument("--role", required=True, choices=ROLES)
        add.add_argument("--email", default="")
        add_operator_argument(add)
        role = sub.add_parser("role", help="put a user in one role")
        role.add_argument("username")
        role.add_argument("role", choices=ROLES)
        add_operator_argument(role)
        sub.add_parser("list", help="list users with their roles")

    def handle(self, *args, action: str, **options):
        try:
            if action == "add":
                user, password = create_user(
                    options["username"],
                    options["role"],
                    options["email"],
                    by=get_operator(options["by"]),
                )
                self.stdout.write(password)
                self.stderr.write(
                    f"user {user.get_username()} ({options['role']}) added: copy the password "
                    "now, it is not shown again"
                )
            elif action == "role":
                user = set_user_role(
                    options["username"], options["role"], by=get_operator(options["by"])
                )
                self.stdout.write(f"{user.get_username()}\t{', '.join(get_user_roles(user))}")
            else:
                users = get_user_model().objects.order_by("username").prefetch_related("groups")
                for user in users:
                    names = [g.name for g in user.groups.all() if g.name in ROLES]
                    flags = ["superuser"] if user.is_superuser else []
                    flags += [] if user.is_active else ["inactive"]
                    self.stdout.write(
                        f"{user.get_username()}\t{', '.join(names) or '-'}\t{' '.join(flags)}"
                    )
        except ValidationError as exc:
            raise CommandError(exc.messages[0]) from None
