import getpass

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from kequn.security.actors import add_operator_argument, get_operator
from kequn.security.otp import is_two_factor_required, reset_two_factor


class Command(BaseCommand):
    # Backups and device resets must work even while some other app fails its checks.
    requires_system_checks = []
    help = "Two-factor authentication: list who has it, or reset a user's lost device."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        reset = sub.add_parser("reset", help="remove a user's devices (they set up a new one)")
        reset.add_argument("username")
        add_operator_argument(reset)
        sub.add_parser("status", help="list staff users and their two-factor state")

    def handle(self, *args, action: str, **options):
        if action == "reset":
            try:
                removed = reset_two_factor(
                    options["username"],
                    by=get_operator(options["by"]),
                    via=f"kequn otp ({_whoami()})",
                )
            except LookupError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(
                f"{options['username']}: {removed} device(s) removed; they set up a new "
                "authenticator at their next login"
            )
            return
        users = get_user_model().objects.filter(is_active=True, is_staff=True).order_by("username")
        for user in users:
            app = TOTPDevice.objects.filter(user=user, confirmed=True).exists()
            codes = StaticDevice.objects.filter(user=user, confirmed=True).exists()
            required = "required" if is_two_factor_required(user) else "optional"
            state = "on" if app else ("recovery codes only" if codes else "off")
            self.stdout.write(f"{user.username}\t{required}\t{state}")


def _whoami() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
