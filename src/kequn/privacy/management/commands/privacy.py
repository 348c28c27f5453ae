"""kequn privacy export | erase | list | replay-erasures: data-subject requests from the terminal."""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from kequn.customers.models import Customer
from kequn.privacy import services
from kequn.privacy.journal import JournalError
from kequn.privacy.models import PrivacyRequest
from kequn.security.actors import add_operator_argument, get_operator


def get_customer(value: str) -> Customer:
    """Return the customer with this id, or fail with a one-line error."""
    if not value.isdigit():
        raise CommandError(f"customer id {value!r} is not a number")
    customer = Customer.objects.filter(pk=int(value)).first()
    if customer is None:
        raise CommandError(f"no customer #{value} (erased already, or a typo?)")
    return customer


def get_request(value: int, customer: Customer, kind: str) -> PrivacyRequest:
    """Return the request, checked against the customer and the operation."""
    request = PrivacyRequest.objects.filter(pk=value).first()
    if request is None:
        raise CommandError(
            f"no data-subject request #{value}: record it in the back office or the API first"
        )
    if request.type != kind:
        raise CommandError(f"request #{value} is a {request.type} request, not {kind}")
    if request.customer_id != customer.pk:
        raise CommandError(f"request #{value} is about customer #{request.customer_id}")
    return request


class Command(BaseCommand):
    help = "Export or erase one customer's data on a data-subject request; list open requests."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="subcommand", required=True)
        export = sub.add_parser("export", help="write all of a customer's data as a zip")
        export.add_argument("customer_id")
        export.add_argument("--out", required=True, help="zip file to write, e.g. person.zip")
        export.add_argument(
            "--request", type=int, default=None, help="export request to complete with it"
        )
        erase = sub.add_parser("erase", help="erase a customer (and records merged into them)")
        erase.add_argument("customer_id")
        erase.add_argument(
            "--request", type=int, required=True, help="the verified erasure request"
        )
        listing = sub.add_parser("list", help="list open requests, nearest deadline first")
        listing.add_argument("--overdue", action="store_true", help="only those past deadline")
        replay = sub.add_parser(
            "replay-erasures",
            help="erase again whoever the erasure journal lists (after restoring a backup)",
        )
        for operator_parser in (export, erase, replay):
            add_operator_argument(operator_parser)

    def handle(self, *args, **options):
        try:
            getattr(self, f"do_{options['subcommand'].replace('-', '_')}")(options)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        except JournalError as exc:
            raise CommandError(str(exc)) from None

    def do_replay_erasures(self, options) -> None:
        self.stdout.write(
            services.describe_replay(services.replay_erasures(by=get_operator(options["by"])))
        )

    def do_export(self, options) -> None:
        customer = get_customer(options["customer_id"])
        out = Path(options["out"]).expanduser()
        if not out.parent.is_dir():
            raise CommandError(f"cannot write {out}: folder {out.parent} does not exist")
        request = None
        if options["request"] is not None:
            request = get_request(options["request"], customer, PrivacyRequest.Type.EXPORT)
            path = services.write_export_file(request, by=get_operator(options["by"]))
            payload = path.read_bytes()
        else:
            payload = services.export_customer_data(customer, by=get_operator(options["by"]))
        # Personal data: readable by the operator only.
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        done = f" (request #{request.pk} done)" if request else ""
        self.stdout.write(f"wrote {out} ({len(payload):,} bytes){done}")

    def do_erase(self, options) -> None:
        customer = get_customer(options["customer_id"])
        request = get_request(options["request"], customer, PrivacyRequest.Type.ERASURE)
        if not request.is_identity_verified:
            raise CommandError(
                f"verify the requester's identity before carrying out request #{request.pk}"
            )
        counts = services.erase_customer(customer, request=request, by=get_operator(options["by"]))
        self.stdout.write(
            f"erased customer #{customer.pk} on request #{request.pk}: "
            f"{counts['records']} record(s), {counts['rows_deleted']} row(s) deleted, "
            f"{counts['orders_anonymised']} order(s) kept anonymised, "
            f"{counts['suppressed']} identit(y/ies) suppressed"
        )

    def do_list(self, options) -> None:
        requests = PrivacyRequest.objects.filter(status__in=PrivacyRequest.OPEN_STATUSES)
        if options["overdue"]:
            requests = services.get_overdue_requests()
        now = timezone.now()
        for r in requests.order_by("deadline", "id"):
            late = "  OVERDUE" if r.deadline < now else ""
            self.stdout.write(
                f"#{r.pk}  {r.type:<16} customer #{r.subject_ref}  {r.status:<11} "
                f"due {timezone.localtime(r.deadline):%Y-%m-%d}{late}"
            )
