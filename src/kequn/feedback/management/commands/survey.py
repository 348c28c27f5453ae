"""kequn survey list|send|report|topics|evaluate: surveys from the command line."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from kequn.feedback import selectors, services
from kequn.feedback.classify import evaluate_sentiment, evaluate_ticket_models
from kequn.feedback.models import Response, Survey
from kequn.security.actors import add_operator_argument, get_operator
from kequn.segments.models import SegmentMember


class Command(BaseCommand):
    help = "List surveys, send one to a segment or customers, print its report, find topics."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list", help="list the surveys")
        send = sub.add_parser("send", help="invite customers and e-mail the links")
        send.add_argument("survey_id", type=int)
        send.add_argument("--segment", type=int, help="invite the segment's members")
        send.add_argument("--customers", default="", help="customer ids, comma separated")
        send.add_argument("--about", default="", help='what it is about, e.g. "campaign:spring"')
        add_operator_argument(send)
        report = sub.add_parser("report", help="print a survey's report")
        report.add_argument("survey_id", type=int)
        report.add_argument("--json", action="store_true")
        topics = sub.add_parser("topics", help="group the year's comments into topics")
        add_operator_argument(topics)
        sub.add_parser("evaluate", help="evaluate ticket type/queue suggestions and sentiment")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "list":
            for survey in Survey.objects.all():
                self.stdout.write(f"{survey.pk}\t{survey.kind}\t{survey.trigger}\t{survey.name}")
        elif action == "send":
            self.send(options)
        elif action == "report":
            self.report(options)
        elif action == "topics":
            words = services.analyse_topics(by=get_operator(options["by"]))
            for number, topic in enumerate(words, start=1):
                self.stdout.write(f"{number}: {' / '.join(topic)}")
        else:
            self.evaluate()

    def _survey(self, survey_id: int) -> Survey:
        survey = Survey.objects.filter(pk=survey_id).first()
        if survey is None:
            raise CommandError(f"no survey #{survey_id}: see `kequn survey list`")
        return survey

    def send(self, options: dict[str, Any]) -> None:
        survey = self._survey(options["survey_id"])
        try:
            ids = [int(x) for x in options["customers"].split(",") if x.strip()]
        except ValueError:
            raise CommandError("--customers: give ids separated by commas, e.g. 12,15") from None
        if options["segment"]:
            ids += list(
                SegmentMember.objects.filter(segment_id=options["segment"]).values_list(
                    "customer_id", flat=True
                )
            )
        if not ids:
            raise CommandError("nobody to invite: give --segment ID or --customers IDS")
        try:
            counts = services.invite_and_send(
                survey=survey,
                customer_ids=ids,
                about=options["about"],
                by=get_operator(options["by"]),
            )
        except (services.SurveyError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(", ".join(f"{k} {v}" for k, v in sorted(counts.items())))

    def report(self, options: dict[str, Any]) -> None:
        survey = self._survey(options["survey_id"])
        answers = Response.objects.filter(survey=survey)
        data: dict[str, Any] = {
            "survey_id": survey.pk,
            "summary": selectors.summarize_scores(answers),
            "response_rate": selectors.get_response_rate(survey),
            "months": selectors.get_scores_by_month(answers),
            "loop": selectors.get_loop_outcome(survey),
        }
        if options["json"]:
            self.stdout.write(json.dumps(data, ensure_ascii=False, default=str))
            return
        summary, rate, loop = data["summary"], data["response_rate"], data["loop"]
        self.stdout.write(f"{survey.name} ({survey.kind})")
        self.stdout.write(
            f"answers {summary['n']}  NPS {summary['nps']}  mean {summary['mean']}  "
            f"response rate {rate['rate']} % ({rate['answered']}/{rate['sent']})"
        )
        self.stdout.write(
            f"follow-ups open {loop['open']} resolved {loop['resolved']} "
            f"(late {loop['resolved_late']}), recovered {loop['recovered']}/{loop['answered_again']}"
        )
        for month in data["months"]:
            self.stdout.write(f"  {month['month']}  n {month['n']}  NPS {month['nps']}")

    def evaluate(self) -> None:
        for target, ev in evaluate_ticket_models().items():
            self.stdout.write(
                f"ticket {target}: held-out {ev.n_test} (trained on {ev.n_train}): macro-F1 "
                f"{ev.macro_f1:.3f} vs majority {ev.baseline_macro_f1:.3f}, accuracy "
                f"{ev.accuracy:.3f} vs {ev.baseline_accuracy:.3f} ({ev.majority!r})"
            )
        sentiment = evaluate_sentiment()
        if sentiment["n"]:
            self.stdout.write(
                f"sentiment on {sentiment['n']} comments: accuracy {sentiment['accuracy']:.3f} "
                f"vs majority {sentiment['baseline_accuracy']:.3f}"
            )
        else:
            self.stdout.write("sentiment: no scored comments yet")
