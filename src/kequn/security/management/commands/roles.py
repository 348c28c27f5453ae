"""kequn roles sync|list|show ROLE — the role groups and their permissions."""

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

from kequn.security.permissions import sync_roles
from kequn.security.roles import ROLES


class Command(BaseCommand):
    help = "Create or update the role groups (sync), list them, or show one role's permissions."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("sync", help="create or update every role group (idempotent)")
        sub.add_parser("list", help="list the roles with their permission and user counts")
        show = sub.add_parser("show", help="list the permissions of one role")
        show.add_argument("role", help=", ".join(ROLES))

    def handle(self, *args, action: str, **options):
        if action == "sync":
            for role, count in sync_roles().items():
                self.stdout.write(f"{role}\t{count} permissions")
            return
        if action == "list":
            for role in ROLES:
                group = Group.objects.filter(name=role).first()
                if group is None:
                    self.stdout.write(f"{role}\tmissing: run `kequn roles sync`")
                    continue
                self.stdout.write(
                    f"{role}\t{group.permissions.count()} permissions\t"
                    f"{group.user_set.count()} users"
                )
            return
        role = options["role"]
        group = Group.objects.filter(name=role).first()
        if role not in ROLES or group is None:
            raise CommandError(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
        perms = group.permissions.select_related("content_type").order_by(
            "content_type__app_label", "codename"
        )
        for perm in perms:
            self.stdout.write(f"{perm.content_type.app_label}.{perm.codename}")
