import json
import sys
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import translation
from tqdm import tqdm

from kequn.engage import selectors, services
from kequn.engage.channels import CHANNEL_KINDS
from kequn.engage.models import Campaign, Message, Template
from kequn.security.actors import add_operator_argument, get_operator
from kequn.segments.models import Segment


class Command(BaseCommand):
    help = "Campaigns: create one to a segment, send it in the foreground, print its report."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a campaign (prints its id)")
        add_operator_argument(create)
        create.add_argument("--name", required=True)
        create.add_argument("--segment", type=int, required=True, help="segment id")
        create.add_argument("--channel", default="email", choices=CHANNEL_KINDS)
        create.add_argument("--subject", default="", help="subject (email)")
        create.add_argument("--body", help="file with the body (HTML for email, text otherwise)")
        create.add_argument("--subject-en", default="", help="English subject")
        create.add_argument("--body-en", help="file with the English body")
        create.add_argument(
            "--template", type=int, help="an existing template id instead of a body"
        )
        create.add_argument("--holdout-percent", type=int, default=10)
        create.add_argument("--conversion-days", type=int, default=7)
        create.add_argument("--json", action="store_true", help="print the campaign as JSON")
        send = sub.add_parser("send", help="evaluate the audience now and send in the foreground")
        add_operator_argument(send)
        send.add_argument("campaign", type=int)
        report = sub.add_parser(
            "report", help="audience, groups, skips, sends, conversions, uplift"
        )
        report.add_argument("campaign", type=int)
        report.add_argument("--json", action="store_true")

    def handle(self, *args, action: str, **options):
        try:
            with translation.override("en"):  # the command line speaks English
                getattr(self, f"do_{action}")(options)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None

    @staticmethod
    def _read(path: str | None, flag: str) -> str:
        if not path:
            return ""
        try:
            return Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"{flag} {path}: cannot read the file ({exc.strerror})") from None
        except UnicodeDecodeError:
            raise CommandError(f"{flag} {path}: not UTF-8 text; save it as UTF-8") from None

    @staticmethod
    def _campaign(pk: int) -> Campaign:
        campaign = Campaign.objects.select_related("segment", "template").filter(pk=pk).first()
        if campaign is None:
            raise CommandError(f"no campaign #{pk}: see the list in the back office or the API")
        return campaign

    def do_create(self, options):
        by = get_operator(options["by"])
        segment = Segment.objects.filter(pk=options["segment"]).first()
        if segment is None:
            raise CommandError(f"--segment {options['segment']}: no such segment")
        if options["template"]:
            template = Template.objects.filter(pk=options["template"]).first()
            if template is None:
                raise CommandError(f"--template {options['template']}: no such template")
        else:
            body = self._read(options["body"], "--body")
            body_en = self._read(options["body_en"], "--body-en")
            if not body and not body_en:
                raise CommandError("give --body FILE (or --template ID)")
            name = options["name"]
            if Template.objects.filter(name=name).exists():
                name = f"{name} ({Template.objects.count() + 1})"
            template = services.create_template(
                name=name,
                channel=options["channel"],
                subject_zh=options["subject"],
                body_zh=body,
                subject_en=options["subject_en"] or (options["subject"] if body_en else ""),
                body_en=body_en,
                by=by,
            )
        campaign = services.create_campaign(
            name=options["name"],
            segment=segment,
            template=template,
            channel=options["channel"],
            holdout_percent=options["holdout_percent"],
            conversion_days=options["conversion_days"],
            by=by,
        )
        if options["json"]:
            data = {"id": campaign.pk, "name": campaign.name, "template": template.pk}
            self.stdout.write(json.dumps(data, ensure_ascii=False))
        else:
            self.stdout.write(str(campaign.pk))

    def do_send(self, options):
        by = get_operator(options["by"])
        campaign = self._campaign(options["campaign"])
        with tqdm(unit=" messages", file=sys.stderr, disable=None) as bar:
            result = services.send_campaign(campaign, by=by, foreground=True, progress=bar.update)
        held = campaign.messages.filter(status=Message.Status.HELD).count()
        parts = [f"run {result['run']}: audience {result['audience']}"]
        parts += [
            f"{key} {result.get(key, 0)}" for key in ("sent", "failed", "retrying", "skipped")
        ]
        if result["skipped"]:
            parts.append(
                "at evaluation: "
                + ", ".join(f"{k} {v}" for k, v in sorted(result["skipped"].items()))
            )
        if held:
            parts.append(
                f"held {held} (quiet hours: `kequn worker` sends them when the window opens)"
            )
        self.stdout.write("; ".join(parts))
        for error in result.get("errors", [])[-1:]:
            self.stderr.write(f"retrying: {error}")

    def do_report(self, options):
        report = selectors.build_report(self._campaign(options["campaign"]))
        if options["json"]:
            self.stdout.write(json.dumps(report, ensure_ascii=False, indent=2, default=str))
            return
        write = self.stdout.write
        write(
            f"Campaign #{report['id']} {report['name']} ({report['status']}, {report['channel']})"
        )
        write(
            f"  segment: {report['segment']}; runs: {report['runs']}; audience: {report['audience']}"
        )
        groups = report["groups"]
        write(
            f"  target {groups['target']}, holdout {groups['holdout']}, "
            f"control group {groups['control']}, skipped {groups['skipped']}"
        )
        for reason, count in report["skipped"].items():
            write(f"  skipped ({reason}): {count}")
        write(
            f"  sent {report['sent']}, failed {report['failed']}, retrying {report['retrying']}; "
            f"delivered {report['delivered']}, opened {report['opened']}, clicked {report['clicked']}"
        )
        if report["last_error"]:
            write(f"  last error: {report['last_error']}")
        measured, conversions = report["measured"], report["conversions"]
        write(
            f"  conversions in {report['conversion_days']} days: sent {conversions['sent']}/{measured['sent']}, "
            f"holdout {conversions['holdout']}/{measured['holdout']}"
        )
        for label, key in (
            ("conversion uplift", "conversion_uplift"),
            ("revenue/recipient uplift", "revenue_per_recipient_uplift"),
        ):
            u = report[key]
            if u["difference"] is None:
                write(f"  {label}: not measurable yet (needs sends and a holdout)")
            elif u["low"] is None:
                write(f"  {label}: {u['difference']:.4f} (too few recipients for an interval)")
            else:
                write(
                    f"  {label}: {u['difference']:.4f} (95% CI {u['low']:.4f} to {u['high']:.4f})"
                )
