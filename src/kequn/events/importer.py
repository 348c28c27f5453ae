"""Importing events from a file (the file import of the events app; collection is in services)."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext as _

from kequn.customers.selectors import find_identity_owners
from kequn.events.models import AnonymousLink, Event
from kequn.ingest.cleaning import clean_datetime
from kequn.ingest.importers.base import Importer, Rejection, RowError
from kequn.ingest.readers import EXTRA


@dataclass
class EventRecord:
    row_number: int
    values: dict[str, object]
    keys: list[tuple[str, str, str]]


class EventImporter(Importer):
    kind = "events"

    def parse(self, row_number: int, row: dict[str, str]) -> EventRecord:
        name = self.get(row, "event")
        if not name:
            raise RowError("event", "missing_value", _("no event name: fill it in"))
        raw_time = self.get(row, "occurred_at")
        if not raw_time:
            raise RowError("occurred_at", "missing_value", _("no event time: fill it in"))
        occurred = self.clean("occurred_at", lambda v: clean_datetime(v, self.tz), raw_time)
        kind = (self.get(row, "type") or "track").lower()
        if kind not in Event.Type.values:
            raise RowError(
                "type",
                "invalid_type",
                _("unknown event type %(t)r: use track, page, screen or identify")
                % {"t": kind[:20]},
            )
        # Without an id of its own, the row's place in this file is its id: re-imports add nothing.
        message_id = self.get(row, "message_id") or f"file:{self.checksum[:24]}:{row_number}"
        properties = {
            h: v for h, v in row.items() if h not in self.mapping.columns and v and h != EXTRA
        }
        values = {
            "type": kind, "name": name[:100], "occurred_at": occurred,
            "anonymous_id": self.get(row, "anonymous_id")[:100], "channel": self.get(row, "channel")[:50],
            "message_id": message_id[:100], "properties": properties,
        }  # fmt: skip
        return EventRecord(row_number, values, self.identity_keys(row, "customer_"))

    def apply(self, records: list[EventRecord]) -> tuple[dict[int, str], list[Rejection]]:
        owners = find_identity_owners({k for r in records for k in r.keys})
        anonymous = dict(
            AnonymousLink.objects.filter(
                anonymous_id__in={
                    r.values["anonymous_id"] for r in records if r.values["anonymous_id"]
                }
            ).values_list("anonymous_id", "customer_id")
        )
        known = set(
            Event.objects.filter(
                message_id__in=[r.values["message_id"] for r in records]
            ).values_list("message_id", flat=True)
        )
        outcomes, create = {}, {}
        for record in records:
            mid = record.values["message_id"]
            if mid in known or mid in create:
                outcomes[record.row_number] = "unchanged"
                continue
            customer_id = next((owners[k] for k in record.keys if k in owners), None)
            customer_id = customer_id or anonymous.get(record.values["anonymous_id"])
            create[mid] = Event(customer_id=customer_id, **record.values)
            outcomes[record.row_number] = "inserted"
        Event.objects.bulk_create(list(create.values()), batch_size=1000, ignore_conflicts=True)
        return outcomes, []
