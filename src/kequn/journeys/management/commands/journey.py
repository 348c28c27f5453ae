import json
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import translation

from kequn.journeys import services
from kequn.journeys.models import Journey
from kequn.journeys.runner import run_pass
from kequn.journeys.selectors import get_flow, list_journeys
from kequn.security.actors import add_operator_argument, get_operator


class Command(BaseCommand):
    help = "Journeys: list them, show one with the counts at each step, pause, resume, create, run."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="every journey with its status and enrolments")
        listing.add_argument("--json", action="store_true")
        show = sub.add_parser("show", help="one journey's steps with the counts at each")
        show.add_argument("journey", type=int)
        show.add_argument("--json", action="store_true")
        for name, text in (("pause", "pause a journey"), ("resume", "resume a paused journey")):
            action = sub.add_parser(name, help=text)
            action.add_argument("journey", type=int)
            add_operator_argument(action)
        create = sub.add_parser(
            "create", help="create a journey from a JSON file (name, trigger_kind, steps...)"
        )
        create.add_argument("file")
        create.add_argument("--activate", action="store_true", help="start it at once")
        add_operator_argument(create)
        sub.add_parser("run", help="one pass of the runner in the foreground (the worker's job)")

    def handle(self, *args, action: str, **options):
        try:
            with translation.override("en"):  # the command line speaks English
                getattr(self, f"do_{action}")(options)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None

    @staticmethod
    def _journey(pk: int) -> Journey:
        journey = Journey.objects.filter(pk=pk).first()
        if journey is None:
            raise CommandError(f"no journey #{pk}: `kequn journey list` shows them")
        return journey

    def do_list(self, options: dict[str, Any]) -> None:
        rows = [
            {
                "id": j.pk,
                "name": j.name,
                "status": j.status,
                "trigger": j.trigger_kind,
                "enrolled": getattr(j, "enrolled_total", 0),
            }
            for j in list_journeys()
        ]
        if options["json"]:
            self.stdout.write(json.dumps(rows, ensure_ascii=False))
            return
        if not rows:
            self.stdout.write("no journeys yet: create one in the back office or with `create`")
        for row in rows:
            self.stdout.write(
                f"{row['id']:>5}  {row['status']:<7} {row['trigger']:<28} "
                f"{row['enrolled']:>9,}  {row['name']}"
            )

    def do_show(self, options: dict[str, Any]) -> None:
        journey = self._journey(options["journey"])
        flow = get_flow(journey)
        boxes = [box for row in flow["rows"] for box in row]
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "id": journey.pk,
                        "name": journey.name,
                        "status": journey.status,
                        "trigger": journey.trigger_kind,
                        "trigger_config": journey.trigger_config,
                        "entered": flow["entered"],
                        "open": flow["open"],
                        "completed": flow["completed"],
                        "exited": flow["exited"],
                        "steps": [
                            {
                                "id": b.id,
                                "kind": b.kind,
                                "summary": b.summary,
                                "passed": b.passed,
                                "here": b.here,
                                "errors": b.errors,
                                "branches": b.branches,
                                "goes_to": [t for _l, t in b.targets],
                            }
                            for b in boxes
                        ],
                    },
                    ensure_ascii=False,
                )
            )
            return
        self.stdout.write(
            f"#{journey.pk} {journey.name} [{journey.status}] trigger: {flow['trigger_label']} "
            f"{json.dumps(journey.trigger_config, ensure_ascii=False)}"
        )
        self.stdout.write(
            f"entered {flow['entered']:,}, in the journey {flow['open']:,}, "
            f"completed {flow['completed']:,}, exited {flow['exited']:,}"
        )
        for box in sorted(boxes, key=lambda b: (b.level, b.id)):
            branches = ", ".join(f"{k} {v:,}" for k, v in box.branches.items())
            goes = ", ".join(f"{label + ': ' if label else ''}{t}" for label, t in box.targets)
            self.stdout.write(
                f"{'  ' * box.level}[{box.id}] {box.label} {box.summary}: passed {box.passed:,}"
                f", here {box.here:,}{', errors ' + format(box.errors, ',') if box.errors else ''}"
                f"{' (' + branches + ')' if branches else ''} -> {goes or 'end'}"
            )

    def do_pause(self, options: dict[str, Any]) -> None:
        by = get_operator(options["by"])
        journey = services.pause_journey(self._journey(options["journey"]), by=by)
        self.stdout.write(f"journey #{journey.pk} {journey.name}: {journey.status}")

    def do_resume(self, options: dict[str, Any]) -> None:
        by = get_operator(options["by"])
        journey = services.resume_journey(self._journey(options["journey"]), by=by)
        self.stdout.write(f"journey #{journey.pk} {journey.name}: {journey.status}")

    def do_create(self, options: dict[str, Any]) -> None:
        by = get_operator(options["by"])
        path = options["file"]
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise CommandError(f"{path}: cannot read the file ({exc.strerror})") from None
        except (UnicodeDecodeError, ValueError) as exc:
            raise CommandError(f"{path}: not a UTF-8 JSON file ({exc})") from None
        if not isinstance(data, dict):
            raise CommandError(f"{path}: must hold one JSON object (name, trigger_kind, steps)")
        allowed = set(services.JOURNEY_FIELDS)
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise CommandError(
                f"{path}: unknown key(s) {', '.join(unknown)}; use {', '.join(sorted(allowed))}"
            )
        missing = [k for k in ("name", "trigger_kind", "steps") if k not in data]
        if missing:
            raise CommandError(f"{path}: missing {', '.join(missing)}")
        journey = services.create_journey(**data, activate=options["activate"], by=by)
        self.stdout.write(str(journey.pk))

    def do_run(self, options: dict[str, Any]) -> None:
        result = run_pass(by=get_operator(""))
        self.stdout.write(json.dumps(result.as_dict()))
