"""`kequn loyalty expire|earn-events|release|review-tiers|reconcile|adjust|enroll`."""

from __future__ import annotations

import uuid

from django.core.management.base import BaseCommand, CommandError
from django.utils import translation

from kequn.loyalty import selectors, services
from kequn.security.actors import add_operator_argument, get_operator


class Command(BaseCommand):
    help = "Loyalty: expire points, release pending points, review tiers, reconcile balances."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        expire = sub.add_parser(
            "expire", help="expire points past their date (nightly in the worker)"
        )
        add_operator_argument(expire)
        expire.add_argument(
            "--range-size", type=int, default=20_000, help="members per transaction [20000]"
        )
        events = sub.add_parser(
            "earn-events", help="earn on order events from the event API (nightly in the worker)"
        )
        add_operator_argument(events)
        release = sub.add_parser("release", help="make pending points available once due")
        add_operator_argument(release)
        review = sub.add_parser("review-tiers", help="yearly review: upgrade, or down one tier")
        add_operator_argument(review)
        sub.add_parser(
            "reconcile", help="check stored balances against the ledger (exit 2 on a difference)"
        )
        adjust = sub.add_parser("adjust", help="add or remove points by hand, with a reason")
        add_operator_argument(adjust)
        adjust.add_argument("customer_id", type=int)
        adjust.add_argument("points", type=int, help="positive adds, negative removes")
        adjust.add_argument("--reason", required=True)
        adjust.add_argument("--key", help="idempotency key [a new one]")
        enroll = sub.add_parser("enroll", help="make a customer a member")
        add_operator_argument(enroll)
        enroll.add_argument("customer_id", type=int)

    def handle(self, *args, action: str, **options):
        try:
            with translation.override("en"):  # the command line speaks English
                getattr(self, "do_" + action.replace("-", "_"))(options)
        except services.LoyaltyError as exc:
            raise CommandError(exc.message) from None

    def do_expire(self, options):
        if options["range_size"] < 1:
            raise CommandError("--range-size must be at least 1")
        result = services.expire_points(
            by=get_operator(options["by"]), range_size=options["range_size"], progress=True
        )
        self.stdout.write(
            f"Expired {result.points} points of {result.grants} grants ({result.members} members)"
        )

    def do_earn_events(self, options):
        done = services.earn_for_order_events(by=get_operator(options["by"]))
        self.stdout.write(
            f"Read {done['events']} order events: {done['earned']} orders earned "
            f"{done['points']} points, {done['reversed']} taken back"
        )

    def do_release(self, options):
        released = services.release_pending(by=get_operator(options["by"]))
        self.stdout.write(f"Released {released} pending grants")

    def do_review_tiers(self, options):
        result = services.review_tiers(by=get_operator(options["by"]), progress=True)
        self.stdout.write(
            f"Upgraded {result.upgraded}, downgraded {result.downgraded}, "
            f"unchanged {result.unchanged}"
        )

    def do_reconcile(self, options):
        differences = 0
        for difference in selectors.find_differences():
            differences += 1
            self.stderr.write(difference.describe())
        if differences:
            self.stderr.write(f"{differences} members differ from the ledger")
            raise SystemExit(2)
        self.stdout.write("OK: every stored balance equals its ledger")

    def do_adjust(self, options):
        entry = services.adjust_points(
            customer_id=options["customer_id"],
            points=options["points"],
            reason=options["reason"],
            key=options["key"] or f"cli:{uuid.uuid4().hex}",
            by=get_operator(options["by"]),
        )
        self.stdout.write(f"Entry {entry.pk}: {entry.points:+d} points")

    def do_enroll(self, options):
        member = services.enroll_member(
            customer_id=options["customer_id"], by=get_operator(options["by"])
        )
        self.stdout.write(f"Member {member.pk}, referral code {member.referral_code}")
