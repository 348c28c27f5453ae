import json

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from kequn.conf import ConfigError
from kequn.monitoring import services
from kequn.monitoring.config import load_alert_config
from kequn.monitoring.models import Alert
from kequn.monitoring.selectors import list_alerts
from kequn.security.actors import add_operator_argument, get_operator


class Command(BaseCommand):
    help = "List, acknowledge or resolve security alerts, or run the alert rules now."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="list alerts, newest first (default: not resolved)")
        listing.add_argument(
            "--status",
            choices=[*Alert.Status.values, "all"],
            default=None,
            help="only alerts in this status (default: open and acknowledged)",
        )
        listing.add_argument("--limit", type=int, default=50)
        listing.add_argument("--json", action="store_true", help="one JSON object per line")
        for name, text in (("ack", "acknowledge an alert"), ("resolve", "resolve an alert")):
            change = sub.add_parser(name, help=text)
            change.add_argument("id", type=int, nargs="+", help="alert id(s)")
            change.add_argument("--note", default="", help="a note kept on the alert")
            add_operator_argument(change)
        evaluate = sub.add_parser("evaluate", help="run the alert rules now (the worker does so)")
        add_operator_argument(evaluate)

    def handle(self, *args, action: str, **options):
        if action == "list":
            self.list_alerts(options)
            return
        by = get_operator(options.get("by"))
        if action == "evaluate":
            try:
                config = load_alert_config()
            except ConfigError as exc:
                raise CommandError(str(exc)) from None
            raised = services.evaluate_rules(by=by, config=config)
            self.stdout.write(f"{len(raised)} new alert(s)")
            for alert in raised:
                self.stdout.write(f"#{alert.pk}\t{alert.severity}\t{alert.title}")
            return
        change = services.acknowledge_alert if action == "ack" else services.resolve_alert
        for alert_id in options["id"]:
            try:
                alert = change(alert_id, by=by, note=options["note"])
            except services.AlertError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"alert #{alert.pk} {alert.status}")

    def list_alerts(self, options: dict) -> None:
        if options["limit"] <= 0:
            raise CommandError("--limit must be a positive number")
        status = options["status"]
        if status is None:
            alerts = list_alerts().exclude(status=Alert.Status.RESOLVED)
        else:
            alerts = list_alerts(None if status == "all" else status)
        for alert in alerts[: options["limit"]]:
            if options["json"]:
                self.stdout.write(json.dumps(services.describe_alert(alert), ensure_ascii=False))
                continue
            raised = timezone.localtime(alert.created_at)
            self.stdout.write(
                f"{alert.pk}\t{raised:%Y-%m-%d %H:%M}\t{alert.severity}\t{alert.status}\t"
                f"{alert.title}"
            )
