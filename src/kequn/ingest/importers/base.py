"""What every importer shares: row checks, identity keys, the per-row report, the registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from django.conf import settings
from django.utils.translation import gettext as _

from kequn.customers.guards import find_blocked_identities
from kequn.customers.identities import get_default_region
from kequn.ingest.cleaning import CleaningError, clean_email, clean_phone, fold
from kequn.ingest.presets import Mapping
from kequn.ingest.readers import EXTRA
from kequn.security.actors import Actor


@dataclass
class Rejection:
    row_number: int
    field: str
    reason: str
    message: str
    values: dict[str, str]


MAX_FIELD = 10_000
OUTCOMES = ("inserted", "updated", "unchanged", "merged", "review")
PREVIEW_ROWS = 1000
KEPT_IDS = 2000


def _plain(value: object) -> object:
    return value.isoformat() if isinstance(value, date) else value


@dataclass
class RowReport:
    """Per-row results of an import: a preview of the first rows and the ids of changed people."""

    rows: list[dict] = field(default_factory=list)
    ids: dict[str, list[int]] = field(default_factory=dict)

    def add(
        self,
        row_number: int,
        outcome: str,
        *,
        customer: int | None = None,
        name: str = "",
        changes: Iterable[tuple[str, object, object]] = (),
        note: str = "",
        field_name: str = "",
        new: bool = False,
    ) -> None:
        """Record what happened to one row."""
        if len(self.rows) < PREVIEW_ROWS:
            self.rows.append({
                "row": row_number, "outcome": outcome, "customer": customer, "new": new,
                "name": name, "field": field_name, "note": note,
                "changes": [[f, _plain(old), _plain(v)] for f, old, v in changes],
            })  # fmt: skip
        if customer and outcome != "unchanged":
            ids = self.ids.setdefault(outcome, [])
            if len(ids) < KEPT_IDS:
                ids.append(customer)


class RowError(Exception):
    def __init__(self, field_name: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.field, self.reason, self.message = field_name, reason, message


class Importer(ABC):
    """Parse rows of one kind and apply batches of them; subclasses per kind."""

    kind = ""

    def __init__(self, mapping: Mapping, checksum: str, actor: str = "", *, by: Actor) -> None:
        self.mapping = mapping
        self.system = mapping.system
        self.checksum = checksum
        self.actor = actor  # how merges and review entries name the job
        self.by = by
        self.header_of = {f: h for h, f in mapping.columns.items()}
        self.tz = settings.TIME_ZONE
        self.report = RowReport()
        # Read once per import, not once per row (it comes from the environment).
        self.region = get_default_region()

    def clean_phone(self, value: str) -> str:
        return clean_phone(value, self.region)

    def get(self, row: dict[str, str], name: str) -> str:
        header = self.header_of.get(name)
        return fold(row.get(header, "")) if header else ""

    def check(self, row_number: int, row: dict[str, str]) -> None:
        if "__error__" in row:
            raise RowError("", "invalid_json", row["__error__"])
        if EXTRA in row:
            raise RowError("", "column_count", _("row has more values than the header has columns"))
        for header, value in row.items():
            if len(value) > MAX_FIELD:
                raise RowError(
                    self.mapping.columns.get(header, header),
                    "too_long",
                    _("column %(col)r holds %(n)d characters (at most %(max)d)")
                    % {"col": header, "n": len(value), "max": MAX_FIELD},
                )

    def fit(self, name: str, value: str, size: int) -> str:
        """Return the value if its column can hold it; a longer one quarantines the row."""
        if len(value) > size:
            raise RowError(
                name,
                "too_long",
                _("%(field)s holds %(n)d characters, at most %(max)d fit: shorten it")
                % {"field": name, "n": len(value), "max": size},
            )
        return value

    def clean(self, name: str, func, value: str):
        try:
            return func(value)
        except CleaningError as exc:
            raise RowError(name, exc.reason, exc.message) from None

    @abstractmethod
    def parse(self, row_number: int, row: dict[str, str]):
        """Return one row as a record of this kind, or raise RowError naming the field."""

    @abstractmethod
    def apply(self, records: list) -> tuple[dict[int, str], list[Rejection]]:
        """Store a batch; return each row's outcome by row number and the rows refused."""

    def identity_keys(self, row: dict[str, str], prefix: str = "") -> list[tuple[str, str, str]]:
        keys = []
        ext = self.get(row, f"{prefix}external_id")
        if ext:
            if len(ext) > 255:
                raise RowError(
                    f"{prefix}external_id", "too_long", _("id longer than 255 characters")
                )
            keys.append(("external", self.system, ext))
        email = self.get(row, "email")
        if email:
            keys.append(("email", "", self.clean("email", clean_email, email)))
        phone = self.get(row, "phone")
        if phone:
            keys.append(("phone", "", self.clean("phone", self.clean_phone, phone)))
        wechat = self.get(row, "wechat")
        if wechat:
            keys.append(("wechat", "", self.fit("wechat", wechat, 255)))
        return keys

    def process(
        self, rows: list[tuple[int, dict[str, str]]]
    ) -> tuple[dict[int, str], list[Rejection]]:
        """Check, parse and apply a batch of rows; return outcomes by row and the rejections."""
        records, rejections = [], []
        raw_of = dict(rows)
        for row_number, row in rows:
            try:
                self.check(row_number, row)
                records.append(self.parse(row_number, row))
            except RowError as exc:
                rejections.append(Rejection(row_number, exc.field, exc.reason, exc.message, row))
        records = _drop_blocked(records, rejections, raw_of)
        reported = len(self.report.rows)
        outcomes, late = self.apply(records) if records else ({}, [])
        for rejection in late:
            rejection.values = raw_of[rejection.row_number]
        # Importers without their own per-row report (orders, products, events) get the outcome.
        seen = {r["row"] for r in self.report.rows[reported:]}
        for row_number, outcome in outcomes.items():
            if row_number not in seen:
                self.report.add(row_number, outcome)
        for rejection in rejections + late:
            self.report.add(
                rejection.row_number, "quarantined", field_name=rejection.field,
                note=rejection.message, changes=(),
            )  # fmt: skip
        return outcomes, rejections + late


def _drop_blocked(records: list, rejections: list[Rejection], raw_of: dict) -> list:
    """Quarantine rows naming a person erased on request, so an import cannot bring them back."""
    blocked = find_blocked_identities(k for r in records for k in getattr(r, "keys", ()))
    if not blocked:
        return records
    kept = []
    for record in records:
        hit = next((k for k in getattr(record, "keys", ()) if k in blocked), None)
        if hit is None:
            kept.append(record)
            continue
        field_name = "external_id" if hit[0] == "external" else hit[0]
        rejections.append(
            Rejection(
                record.row_number, field_name, "suppressed", blocked[hit], raw_of[record.row_number]
            )
        )
    return kept


# Importers by kind: ingest registers its own in IngestConfig.ready(), apps above it (events)
# theirs in their own ready().
IMPORTERS: dict[str, type[Importer]] = {}


def register_importer(importer: type[Importer]) -> type[Importer]:
    """Make `importer` the one for its kind."""
    IMPORTERS[importer.kind] = importer
    return importer


def get_importer(kind: str) -> type[Importer]:
    """Return the importer of a kind (KeyError when no app registered one)."""
    return IMPORTERS[kind]
