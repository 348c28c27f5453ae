"""Every change made by imports, quarantine, merges and match review goes through here."""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Iterable
from contextlib import nullcontext, suppress
from dataclasses import asdict, dataclass, field
from datetime import date

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import models, router, transaction
from django.db.models import Q
from django.db.models.fields import AutoFieldMixin
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _
from tqdm import tqdm

from kequn.commerce.models import Category, Channel, Order, OrderLine, Product
from kequn.customers.identities import get_default_region
from kequn.customers.models import Address, CompanyContact, Consent, Customer, CustomerTag, Identity
from kequn.customers.selectors import find_identity_owners
from kequn.customers.services import PROFILE_FIELDS
from kequn.events.models import AnonymousLink, Event
from kequn.ingest import stale
from kequn.ingest.cleaning import (
    CleaningError,
    clean_amount,
    clean_city,
    clean_date,
    clean_datetime,
    clean_email,
    clean_gender,
    clean_name,
    clean_phone,
    clean_province,
    clean_quantity,
    fold,
    join_name,
)
from kequn.ingest.models import ImportRun, MatchCandidate, Merge, QuarantinedRow
from kequn.ingest.places import get_province_of_city
from kequn.ingest.presets import Mapping, resolve_mapping
from kequn.ingest.readers import EXTRA, FileInfo, ImportFileError, iter_rows, open_file
from kequn.ingest.survivorship import (
    IDENTIFYING_FIELDS,
    find_conflicts,
    fold_name,
    get_trust_order,
    may_overwrite,
)
from kequn.security.masking import is_target_masked, mask_mapped_values

# ---------------------------------------------------------------- merges

# Rows that belong to a customer and follow it into the merged record.
_MOVABLE = {
    "identities": (Identity, "customer"),
    "addresses": (Address, "customer"),
    "consents": (Consent, "customer"),
    "orders": (Order, "customer"),
    "events": (Event, "customer"),
    "anonymous_links": (AnonymousLink, "customer"),
}


def _jsonable(value: object) -> object:
    return value.isoformat() if isinstance(value, date) else value


def _root(customer: Customer) -> Customer:
    seen = set()
    while customer.merged_into_id and customer.pk not in seen:
        seen.add(customer.pk)
        customer = Customer.objects.get(pk=customer.merged_into_id)
    return customer


@transaction.atomic
def merge_customers(
    target: Customer,
    absorbed: Customer,
    *,
    rule: str,
    score: float | None = None,
    by: AbstractBaseUser | None = None,
    actor: str = "",
    evidence: object = None,
) -> Merge:
    """Move everything of `absorbed` onto `target` and mark it merged; record how to undo."""
    target = Customer.objects.select_for_update().get(pk=target.pk)
    absorbed = Customer.objects.select_for_update().get(pk=absorbed.pk)
    if target.pk == absorbed.pk:
        raise ValidationError(_("a record cannot be merged into itself"))
    if absorbed.merged_into_id or target.merged_into_id:
        raise ValidationError(
            _("customer #%(id)s was already merged; merge the surviving record instead")
            % {"id": absorbed.pk if absorbed.merged_into_id else target.pk}
        )
    snapshot: dict = {
        "target_fields": {f: _jsonable(getattr(target, f)) for f in PROFILE_FIELDS},
        "evidence": evidence,
    }
    for key, (model, fk) in _MOVABLE.items():
        qs = model.objects.filter(**{fk: absorbed})
        snapshot[key] = list(qs.values_list("pk", flat=True))
        qs.update(**{fk: target})
    # A tag or company link the target already has would break a unique constraint: drop the
    # duplicate and remember it so undo can put it back.
    own_tags = set(CustomerTag.objects.filter(customer=target).values_list("tag_id", flat=True))
    moved, removed = [], []
    for link in CustomerTag.objects.filter(customer=absorbed):
        if link.tag_id in own_tags:
            removed.append(
                {"tag": link.tag_id, "by": link.added_by_id, "at": link.added_at.isoformat()}
            )
            link.delete()
        else:
            moved.append(link.pk)
    CustomerTag.objects.filter(pk__in=moved).update(customer=target)
    snapshot["tags_moved"], snapshot["tags_removed"] = moved, removed
    contacts = []
    for fk, other in (("company", "contact"), ("contact", "company")):
        taken = set(
            CompanyContact.objects.filter(**{fk: target}).values_list(f"{other}_id", flat=True)
        )
        for link in CompanyContact.objects.filter(**{fk: absorbed}):
            if (
                getattr(link, f"{other}_id") not in taken
                and getattr(link, f"{other}_id") != target.pk
            ):
                setattr(link, fk, target)
                link.save(update_fields=[fk])
                contacts.append([fk, link.pk])
    snapshot["contacts_moved"] = contacts
    # Survivorship: the kept record keeps its values and takes the absorbed one's where empty.
    changed = []
    for name in PROFILE_FIELDS:
        if name in ("kind", "external_ref", "country"):
            continue
        if getattr(target, name) in ("", None) and getattr(absorbed, name) not in ("", None):
            setattr(target, name, getattr(absorbed, name))
            changed.append(name)
    if changed:
        target.save(update_fields=[*changed, "updated_at"])
    absorbed.merged_into = target
    absorbed.save(update_fields=["merged_into", "updated_at"])
    return Merge.objects.create(
        target=target,
        absorbed=absorbed,
        rule=rule[:100],
        score=score,
        snapshot=snapshot,
        created_by=by,
        actor=actor[:100],
    )


@transaction.atomic
def undo_merge(merge: Merge, by: AbstractBaseUser | None = None) -> Merge:
    """Restore both records as they were before the merge."""
    merge = Merge.objects.select_for_update().get(pk=merge.pk)
    if merge.undone_at:
        raise ValidationError(_("merge #%(id)s was already undone") % {"id": merge.pk})
    involved = [merge.target_id, merge.absorbed_id]
    later = (
        Merge.objects.filter(undone_at__isnull=True, pk__gt=merge.pk)
        .filter(Q(target_id__in=involved) | Q(absorbed_id__in=involved))
        .order_by("-pk")
        .first()
    )
    if later is not None:
        raise ValidationError(
            _("undo the later merge #%(id)s (%(merge)s) first") % {"id": later.pk, "merge": later}
        )
    snapshot = merge.snapshot
    target, absorbed = merge.target, merge.absorbed
    for key, (model, fk) in _MOVABLE.items():
        ids = snapshot.get(key) or []
        for start in range(0, len(ids), 5000):
            model.objects.filter(pk__in=ids[start : start + 5000], **{fk: target}).update(
                **{fk: absorbed}
            )
    CustomerTag.objects.filter(pk__in=snapshot.get("tags_moved", []), customer=target).update(
        customer=absorbed
    )
    for link in snapshot.get("tags_removed", []):
        CustomerTag.objects.get_or_create(
            customer=absorbed,
            tag_id=link["tag"],
            defaults={"added_by_id": link["by"], "added_at": link["at"]},
        )
    for fk, link_id in snapshot.get("contacts_moved", []):
        CompanyContact.objects.filter(pk=link_id).update(**{fk: absorbed})
    fields = snapshot.get("target_fields", {})
    for name, value in fields.items():
        setattr(target, name, date.fromisoformat(value) if name == "birthday" and value else value)
    target.save()
    absorbed.merged_into = None
    absorbed.save(update_fields=["merged_into", "updated_at"])
    merge.undone_at = timezone.now()
    merge.undone_by = by
    merge.save(update_fields=["undone_at", "undone_by"])
    # An undone merge is a human "these are different people": keep the matcher from redoing it.
    MatchCandidate.objects.filter(merge=merge).update(
        status=MatchCandidate.Status.REJECTED, decided_at=timezone.now(), decided_by=by
    )
    return merge


def get_surviving_record(customer: Customer) -> Customer:
    """Return the record a customer was (transitively) merged into, or itself."""
    return _root(customer)


# ---------------------------------------------------------------- rows → records


@dataclass
class Rejection:
    row_number: int
    field: str
    reason: str
    message: str
    values: dict[str, str]


@dataclass
class CustomerRecord:
    row_number: int
    keys: list[tuple[str, str, str]]
    profile: dict[str, object]
    address: dict[str, str]


@dataclass
class Summary:
    """What an import did; the counts add up to rows_read."""

    run_id: int | None
    file: str
    kind: str
    dry_run: bool = False
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    merged: int = 0
    review: int = 0
    quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    # What happened to each row (the first PREVIEW_ROWS): shown by the dry run.
    rows: list[dict] = field(default_factory=list)

    def add(self, outcome: str, n: int = 1) -> None:
        setattr(self, outcome, getattr(self, outcome) + n)

    def to_dict(self) -> dict:
        return asdict(self)


MAX_FIELD = 10_000
KEEP_CHARS = 1_000
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


def _stored_values(row: dict[str, str]) -> dict[str, str]:
    """Return the row as kept in quarantine; huge cells are cut so one bad file can't bloat it."""
    kept = {}
    for key, value in row.items():
        if len(value) > KEEP_CHARS:
            value = value[:KEEP_CHARS] + f"…[{len(value) - KEEP_CHARS} more characters cut]"
        kept[key] = value
    return kept


class RowError(Exception):
    def __init__(self, field_name: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.field, self.reason, self.message = field_name, reason, message


def _country(value: str) -> str:
    text = fold(value).upper()
    if text in ("中国", "CHINA", "PRC", "CHN", "中华人民共和国", "CN"):
        return "CN"
    return text if len(text) == 2 and text.isalpha() else ""


class Importer:
    """Parse rows of one kind and apply batches of them; subclasses per kind."""

    kind = ""

    def __init__(self, mapping: Mapping, checksum: str, actor: str = "") -> None:
        self.mapping = mapping
        self.system = mapping.system
        self.checksum = checksum
        self.actor = actor
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

    def parse(self, row_number: int, row: dict[str, str]):
        raise NotImplementedError

    def apply(self, records: list) -> tuple[dict[int, str], list[Rejection]]:
        raise NotImplementedError

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


def _insert_rows(
    model: type[models.Model], objs: list[models.Model], *, set_ids: bool = False
) -> None:
    """Insert new rows by COPY on PostgreSQL, by a prepared INSERT on SQLite; set_ids fills in pks.

    Values are prepared as bulk_create prepares them (pre_save, then get_db_prep_save, so
    encrypted, blind-index and derived columns are filled as usual); what is saved is
    bulk_create's SQL building, most of its time on a million rows.
    """
    if not objs:
        return
    opts = model._meta
    connection = transaction.get_connection(router.db_for_write(model))
    fields, left_to_db = [], []
    for f in opts.local_concrete_fields:
        if f.primary_key:
            continue
        if f.has_db_default() and all(
            hasattr(getattr(obj, f.attname), "resolve_expression") for obj in objs
        ):
            left_to_db.append(f)  # the database fills it in, as bulk_create lets it
            continue
        fields.append(f)
    if (
        connection.vendor not in ("postgresql", "sqlite")
        or not isinstance(opts.pk, AutoFieldMixin)
        or any(f.has_db_default() for f in fields)
    ):
        model.objects.bulk_create(objs, batch_size=1000)
        return
    columns = [
        [f.get_db_prep_save(f.pre_save(obj, True), connection) for obj in objs] for f in fields
    ]
    quote = connection.ops.quote_name
    table = quote(opts.db_table)
    names = [quote(f.column) for f in fields]
    connection.ensure_connection()
    with connection.wrap_database_errors:
        if connection.vendor == "postgresql":
            with connection.connection.cursor() as cursor:
                if set_ids:
                    # Sequence values are never handed out twice, whoever else is inserting.
                    cursor.execute(
                        "SELECT nextval(pg_get_serial_sequence(%s, %s)) "
                        "FROM generate_series(1, %s)",
                        [opts.db_table, opts.pk.column, len(objs)],
                    )
                    ids = sorted(row[0] for row in cursor.fetchall())
                    columns.append(ids)
                    names.append(quote(opts.pk.column))
                with cursor.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
                    for row in zip(*columns, strict=True):
                        copy.write_row(row)
        else:
            sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
            cursor = connection.connection.cursor()  # sqlite3's own: no placeholder rewriting
            try:
                if set_ids:
                    ids = []
                    for row in zip(*columns, strict=True):
                        cursor.execute(sql, row)
                        ids.append(cursor.lastrowid)
                else:
                    cursor.executemany(sql, zip(*columns, strict=True))
            finally:
                cursor.close()
    for index, obj in enumerate(objs):
        if set_ids:
            obj.pk = ids[index]
        obj._state.adding, obj._state.db = False, connection.alias
        for f in left_to_db:
            obj.__dict__.pop(f.attname, None)  # read from the database when first asked for


def _update_rows(model: type[models.Model], objs: list[models.Model], names: list[str]) -> None:
    """Write the named fields of existing rows: one UPDATE statement run for every row.

    Unlike bulk_update, pre_save runs, so auto_now and derived columns (blind indexes, the
    year of a date) follow the values they come from.
    """
    if not objs:
        return
    connection = transaction.get_connection(router.db_for_write(model))
    fields = [model._meta.get_field(n) for n in names]
    quote = connection.ops.quote_name
    sets = ", ".join(f"{quote(f.column)} = %s" for f in fields)
    sql = (
        f"UPDATE {quote(model._meta.db_table)} SET {sets} WHERE {quote(model._meta.pk.column)} = %s"
    )
    params = [
        [f.get_db_prep_save(f.pre_save(obj, False), connection) for f in fields] + [obj.pk]
        for obj in objs
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict = {}

    def find(self, x):
        parent = self.parent
        parent.setdefault(x, x)
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    def union(self, a, b) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


class CustomerImporter(Importer):
    kind = "customers"

    def parse(self, row_number: int, row: dict[str, str]) -> CustomerRecord:
        keys = self.identity_keys(row)
        if not keys:
            raise RowError(
                "email",
                "missing_identifier",
                _("no email, phone or customer id: fill in at least one to import the row"),
            )
        profile: dict[str, object] = {}
        name = self.get(row, "name")
        if not name and (self.get(row, "first_name") or self.get(row, "last_name")):
            name = join_name(self.get(row, "first_name"), self.get(row, "last_name"))
        if name:
            profile["name"] = self.clean("name", clean_name, name)
        gender = self.get(row, "gender")
        if gender:
            profile["gender"] = clean_gender(gender)
        birthday = self.get(row, "birthday")
        if birthday:
            day = self.clean("birthday", clean_date, birthday)
            if not date(1900, 1, 1) <= day <= date.today():
                raise RowError(
                    "birthday", "invalid_date", _("birthday %(d)s is not plausible") % {"d": day}
                )
            profile["birthday"] = day
        country = _country(self.get(row, "country"))
        if country:
            profile["country"] = country
        # Cleaning cuts at the column size; an over-long cell is quarantined, not cut short.
        province = clean_province(self.fit("province", self.get(row, "province"), 50))
        city = clean_city(self.fit("city", self.get(row, "city"), 50), province)
        province = province or get_province_of_city(city)
        if province:
            profile["province"] = province
        if city:
            profile["city"] = city
        for name_ in ("occupation", "industry"):
            value = self.get(row, name_)
            if value:
                profile[name_] = self.fit(name_, value, 100)
        ext = [k for k in keys if k[0] == "external"]
        if ext:
            profile["external_ref"] = ext[0][2][:100]
        address = {}
        for src, dst, size in (
            ("address", "line", 255),
            ("district", "district", 50),
            ("postcode", "postcode", 20),
        ):
            value = self.get(row, src)
            if value:
                address[dst] = self.fit(src, value, size)
        if address:
            address.update({k: profile[k] for k in ("province", "city") if k in profile})
        return CustomerRecord(row_number, keys, profile, address)

    def apply(self, records: list[CustomerRecord]) -> tuple[dict[int, str], list[Rejection]]:
        """Match rows to people by identity, keep conflicting matches apart, apply the rest.

        Rows are taken in file order. A row joins the person its identities lead to unless
        the match is a conflicting one (see kequn.ingest.survivorship); then it becomes a new
        person (or the one split off from the same person by an earlier import) and the pair
        goes to the review queue. Identities nobody owns yet go to the row's person.
        """
        owners = find_identity_owners({k for r in records for k in r.keys})
        existing = Customer.objects.in_bulk(set(owners.values()))
        self._dirty: dict[int, set[str]] = {}
        order = get_trust_order()
        source = self.system[:50]
        uf = _UnionFind()  # over entities: ("c", customer id) or ("n", index into `fresh`)
        fresh: list[dict[str, object]] = []  # accumulated profiles of people not stored yet
        fresh_sources: list[dict[str, str]] = []
        key_owner: dict[tuple[str, str, str], tuple] = {k: ("c", c) for k, c in owners.items()}
        row_entity: dict[int, tuple] = {}
        row_flags: dict[int, dict] = {}
        review_pairs: list[tuple[tuple, tuple, list[str], str]] = []
        customer_merges: list[tuple[int, int, list[str]]] = []
        split_offs = self._find_split_offs(records, owners, existing)

        def profile_of(entity: tuple) -> dict[str, object]:
            if entity[0] == "c":
                customer = existing[entity[1]]
                return {n: getattr(customer, n) for n in IDENTIFYING_FIELDS}
            return fresh[entity[1]]

        def new_entity(profile: dict[str, object]) -> tuple:
            fresh.append(dict(profile))
            fresh_sources.append(dict.fromkeys(profile, source))
            return ("n", len(fresh) - 1)

        for index, record in enumerate(records):
            reached: dict[tuple, list] = {}
            for key in record.keys:
                if key in key_owner:
                    reached.setdefault(uf.find(key_owner[key]), []).append(key)
            agreeing, conflicting = [], []
            for entity, keys in reached.items():
                conflicts = find_conflicts(profile_of(entity), record.profile)
                if conflicts and len({k[0] for k in keys}) < 2:
                    conflicting.append((entity, keys, conflicts))
                else:
                    agreeing.append(entity)
            flags = {"changes": [], "kept": [], "merged": False, "review": None, "new_keys": 0}
            if not agreeing and conflicting:
                entity, keys, conflicts = conflicting[0]
                partner = split_offs.get((entity, fold_name(record.profile.get("name", ""))))
                if partner is not None:
                    agreeing.append(partner)  # split off by an earlier import: the same person
                else:
                    target = new_entity(record.profile)
                    # A later row with the same name and number joins this person, not a third.
                    split_offs[(entity, fold_name(record.profile.get("name", "")))] = target
                    kinds = sorted({k[0] for k in keys})
                    review_pairs.append((entity, target, conflicts, "/".join(kinds)))
                    flags["review"] = (entity, conflicts, kinds)
                    row_entity[index] = target
            if agreeing:
                agreeing.sort(key=lambda e: (e[0] != "c", e[1]))  # stored people first, oldest
                target = agreeing[0]
                for other in agreeing[1:]:
                    flags["merged"] = True
                    if other[0] == "c" and target[0] == "c":
                        evidence = sorted({"/".join(k) for k in reached[other]})
                        customer_merges.append((target[1], other[1], evidence))
                    elif other[0] == "n":
                        self._fold(fresh[other[1]], fresh_sources[other[1]], target, existing,
                                   fresh, fresh_sources, source, order)  # fmt: skip
                    uf.union(target, other)
                changes, kept = self._apply_profile(
                    target, record.profile, existing, fresh, fresh_sources, source, order
                )
                flags["changes"], flags["kept"] = changes, kept
                row_entity[index] = target
            elif index not in row_entity:
                row_entity[index] = new_entity(record.profile)
            for key in record.keys:
                if key not in key_owner:
                    key_owner[key] = row_entity[index]
                    flags["new_keys"] += 1
            row_flags[index] = flags

        # Store the new people, then their identities, the changed people and addresses.
        new_customers: dict[int, Customer] = {}
        for position, profile in enumerate(fresh):
            if uf.find(("n", position))[0] == "c":
                continue  # folded into a stored person
            customer = Customer(source_channel=source)
            for name, value in profile.items():
                setattr(customer, name, value)
            customer.field_sources = fresh_sources[position]
            new_customers[position] = customer
        if new_customers:
            _insert_rows(Customer, list(new_customers.values()), set_ids=True)

        def customer_of(entity: tuple) -> Customer:
            entity = uf.find(entity)
            return existing[entity[1]] if entity[0] == "c" else new_customers[entity[1]]

        if self._dirty:
            fields = {"updated_at", "field_sources"}.union(*self._dirty.values())
            if "birthday" in fields:
                fields.add("birth_year")  # derived from the birthday by pre_save in _update_rows
            now = timezone.now()
            to_update = [existing[pk] for pk in self._dirty]
            for customer in to_update:
                customer.updated_at = now
            _update_rows(Customer, to_update, sorted(fields))
        identities = [
            Identity(customer_id=customer_of(entity).pk, kind=k, system=s, value=v)
            for (k, s, v), entity in key_owner.items()
            if (k, s, v) not in owners
        ]
        _insert_rows(Identity, identities)
        self._store_addresses(records, {i: customer_of(e) for i, e in row_entity.items()})
        for left, right, conflicts, kinds in review_pairs:
            self._queue_review(customer_of(left), customer_of(right), conflicts, kinds)
        for target_id, absorbed_id, evidence in customer_merges:
            absorbed = Customer.objects.get(pk=absorbed_id)
            if absorbed.merged_into_id:
                continue
            merge_customers(
                Customer.objects.get(pk=target_id),
                absorbed,
                rule="deterministic: shared identifier",
                actor=self.actor,
                evidence=evidence,
            )
        return self._outcomes(records, row_entity, row_flags, uf, customer_of), []

    def _outcomes(self, records, row_entity, row_flags, uf, customer_of) -> dict[int, str]:
        outcomes: dict[int, str] = {}
        first_row: dict[tuple, int] = {}
        for index, record in enumerate(records):
            entity, flags = uf.find(row_entity[index]), row_flags[index]
            customer = customer_of(entity)
            note = ""
            if flags["review"] is not None:
                other, conflicts, kinds = flags["review"]
                outcome = "review"
                note = _("shared or reassigned %(id)s: %(old)s vs %(new)s") % {
                    "id": "/".join(str(Identity.Kind(k).label).lower() for k in kinds),
                    "old": customer_of(other).name or f"#{customer_of(other).pk}",
                    "new": record.profile.get("name", "") or ", ".join(conflicts),
                }
            elif entity[0] == "n" and entity not in first_row:
                outcome = "inserted"
            elif entity[0] == "n" or flags["merged"]:
                outcome = "merged"
            elif flags["changes"] or flags["new_keys"] or row_entity[index][0] == "n":
                outcome = "updated"  # new values, a new identity, or rows folded into this one
            else:
                outcome = "unchanged"
            first_row.setdefault(entity, index)
            if flags["kept"] and not note:
                note = _("kept the stored %(fields)s (set by a source trusted more)") % {
                    "fields": ", ".join(
                        str(Customer._meta.get_field(f).verbose_name) for f in flags["kept"]
                    )
                }
            outcomes[record.row_number] = outcome
            changes = (
                flags["changes"]
                if entity[0] == "c"
                else [(n, "", v) for n, v in record.profile.items()]
            )
            self.report.add(
                record.row_number, outcome, customer=customer.pk, name=customer.name,
                changes=changes, note=note, new=entity[0] == "n",
            )  # fmt: skip
        return outcomes

    def _find_split_offs(self, records, owners, existing) -> dict[tuple, tuple]:
        """Return {(stored person, name key): person split off from them by an earlier import}."""
        names = {fold_name(r.profile.get("name", "")) for r in records if r.profile.get("name")}
        if not names or not existing:
            return {}
        found: dict[tuple, tuple] = {}
        pairs = MatchCandidate.objects.filter(
            Q(left_id__in=list(existing)) | Q(right_id__in=list(existing))
        ).exclude(status=MatchCandidate.Status.ACCEPTED)
        for left_id, right_id, left_name, right_name, left_root, right_root in pairs.values_list(
            "left_id", "right_id", "left__name", "right__name",
            "left__merged_into_id", "right__merged_into_id",
        ):  # fmt: skip
            for stored, partner, name, root in (
                (left_id, right_id, right_name, right_root),
                (right_id, left_id, left_name, left_root),
            ):
                if stored in existing and root is None and fold_name(name) in names:
                    found.setdefault((("c", stored), fold_name(name)), ("c", partner))
                    existing.setdefault(partner, None)
        missing = [pk for pk, c in existing.items() if c is None]
        existing.update(Customer.objects.in_bulk(missing))
        return found

    def _apply_profile(self, target, profile, existing, fresh, fresh_sources, source, order):
        """Apply a row's values to a person field by field; return (changes, kept fields)."""
        changes: list[tuple[str, object, object]] = []
        kept: list[str] = []
        if target[0] == "n":
            values, sources = fresh[target[1]], fresh_sources[target[1]]
            for name, value in profile.items():
                if values.get(name) != value:
                    values[name], sources[name] = value, source
            return changes, kept
        customer = existing[target[1]]
        sources = dict(customer.field_sources or {})
        # The city goes first: a province is not changed under a city that is kept.
        for name, value in sorted(profile.items(), key=lambda item: item[0] != "city"):
            # The first system's key stays the record's reference; others are identities.
            if name == "external_ref" and customer.external_ref:
                continue
            old = getattr(customer, name)
            if old == value:
                continue
            if name == "province" and "city" in kept:
                kept.append(name)
                continue
            if old not in ("", None):
                current = sources.get(name) or customer.source_channel
                if not may_overwrite(current_source=current, incoming_source=source, order=order):
                    kept.append(name)
                    continue
            setattr(customer, name, value)
            sources[name] = source
            changes.append((name, old, value))
        if changes:
            customer.field_sources = sources
            self._dirty.setdefault(customer.pk, set()).update(c[0] for c in changes)
        return changes, kept

    def _fold(self, profile, sources, target, existing, fresh, fresh_sources, source, order):
        """Move a not-yet-stored person's values onto the person it turned out to be."""
        if target[0] == "n":
            values, target_sources = fresh[target[1]], fresh_sources[target[1]]
            for name, value in profile.items():
                if values.get(name) in ("", None):
                    values[name], target_sources[name] = value, sources.get(name, source)
        else:
            self._apply_profile(target, profile, existing, fresh, fresh_sources, source, order)

    def _queue_review(
        self, stored: Customer, new: Customer, conflicts: list[str], kinds: str
    ) -> None:
        left, right = sorted((stored, new), key=lambda c: c.pk)
        MatchCandidate.objects.get_or_create(
            left=left,
            right=right,
            defaults={
                "score": 0.5,
                "details": {
                    "reason": "shared_identity",
                    "identity": kinds,
                    "conflicts": conflicts,
                    "name": [left.name, right.name],
                    "source": self.actor,
                },
            },
        )

    def _store_addresses(self, records, customer_of_row: dict[int, Customer]) -> None:
        label = self.system[:30]
        wanted: dict[int, dict] = {}
        for index, record in enumerate(records):
            if record.address:
                wanted.setdefault(customer_of_row[index].pk, {}).update(record.address)
        if not wanted:
            return
        current = {
            a.customer_id: a
            for a in Address.objects.filter(customer_id__in=list(wanted), label=label)
        }
        create, update = [], []
        for customer_id, data in wanted.items():
            address = current.get(customer_id)
            if address is None:
                create.append(
                    Address(customer_id=customer_id, label=label, is_default=True, **data)
                )
            elif any(getattr(address, k) != v for k, v in data.items()):
                for k, v in data.items():
                    setattr(address, k, v)
                update.append(address)
        Address.objects.bulk_create(create, batch_size=1000)
        if update:
            Address.objects.bulk_update(
                update, ["line", "district", "postcode", "province", "city"]
            )


_STATUSES = {
    "paid": "paid", "partially_paid": "paid", "partially_refunded": "paid", "authorized": "pending",
    "pending": "pending", "unpaid": "pending", "shipped": "shipped", "fulfilled": "shipped",
    "completed": "completed", "complete": "completed", "closed": "completed",
    "cancelled": "cancelled", "canceled": "cancelled", "voided": "cancelled",
    "refunded": "refunded", "已付款": "paid", "已支付": "paid", "待付款": "pending",
    "待支付": "pending", "已发货": "shipped", "已完成": "completed", "交易成功": "completed",
    "已取消": "cancelled", "交易关闭": "cancelled", "已退款": "refunded",
}  # fmt: skip


@dataclass
class OrderRecord:
    row_number: int
    number: str
    order: dict[str, object]
    keys: list[tuple[str, str, str]]
    name: str
    line: dict[str, object] | None


class OrderImporter(Importer):
    kind = "orders"

    def parse(self, row_number: int, row: dict[str, str]) -> OrderRecord:
        number = self.get(row, "number")
        if not number:
            raise RowError("number", "missing_value", _("no order number: fill it in"))
        if len(number) > 64:
            raise RowError("number", "too_long", _("order number longer than 64 characters"))
        raw_time = self.get(row, "ordered_at")
        if not raw_time:
            raise RowError("ordered_at", "missing_value", _("no order date: fill it in"))
        order: dict[str, object] = {
            "ordered_at": self.clean("ordered_at", lambda v: clean_datetime(v, self.tz), raw_time)
        }
        currency = self.get(row, "currency").upper()[:3]
        line = None
        sku = self.get(row, "sku")
        if sku:
            quantity = self.clean("quantity", clean_quantity, self.get(row, "quantity") or "1")
            unit_price, cur = self.clean(
                "unit_price", clean_amount, self.get(row, "unit_price") or "0"
            )
            if unit_price < 0:
                raise RowError("unit_price", "negative_amount", _("unit price below zero"))
            currency = currency or cur
            line = {
                "sku": sku[:64],
                "quantity": quantity,
                "unit_price": unit_price,
                "amount": unit_price * quantity,
            }
        raw_total = self.get(row, "total")
        if raw_total:
            total, cur = self.clean("total", clean_amount, raw_total)
            if total < 0:
                raise RowError(
                    "total",
                    "negative_amount",
                    _("order total below zero: import refunds as status refunded"),
                )
            order["total_amount"] = total
            currency = currency or cur
        elif line is not None:
            order["total_amount"] = line["amount"]
        else:
            raise RowError("total", "missing_value", _("no total and no line price: fill one in"))
        raw_discount = self.get(row, "discount")
        if raw_discount:
            order["discount_amount"] = abs(self.clean("discount", clean_amount, raw_discount)[0])
        order["currency"] = currency or "CNY"
        status = self.get(row, "status")
        if status:
            mapped = _STATUSES.get(status.lower().replace(" ", "_"))
            if mapped is None:
                raise RowError(
                    "status",
                    "invalid_status",
                    _(
                        "unknown order status %(s)r: use paid, shipped, completed, cancelled or refunded"
                    )
                    % {"s": status[:30]},
                )
            order["status"] = mapped
        channel = self.get(row, "channel")
        if channel:
            order["channel"] = channel[:50]
        return OrderRecord(
            row_number,
            number,
            order,
            self.identity_keys(row, "customer_"),
            self.get(row, "name"),
            line,
        )

    def apply(self, records: list[OrderRecord]) -> tuple[dict[int, str], list[Rejection]]:
        rejections: list[Rejection] = []
        skus = {r.line["sku"] for r in records if r.line}
        products = {p.sku: p.pk for p in Product.objects.filter(sku__in=skus)}
        kept = []
        for record in records:
            if record.line and record.line["sku"] not in products:
                rejections.append(Rejection(record.row_number, "sku", "unknown_product",
                    _("no product with SKU %(sku)r: import products first, then retry") % {"sku": record.line["sku"]}, {}))  # fmt: skip
            else:
                kept.append(record)
        records = kept
        # Buyers not known yet become customers, so no order is left without its buyer.
        buyers = [
            CustomerRecord(r.row_number, r.keys, {"name": clean_name(r.name)} if r.name else {}, {})
            for r in records
            if r.keys
        ]
        owners = find_identity_owners({k for r in records for k in r.keys})
        missing = [b for b in buyers if not any(k in owners for k in b.keys)]
        if missing:
            CustomerImporter(self.mapping, self.checksum, self.actor).apply(missing)
            owners = find_identity_owners({k for r in records for k in r.keys})
        channel_codes = {r.order["channel"] for r in records if "channel" in r.order}
        channels = {c.code: c.pk for c in Channel.objects.filter(code__in=channel_codes)}
        for code in channel_codes - set(channels):
            channels[code] = Channel.objects.create(
                code=code, name=code, kind=Channel.Kind.ONLINE
            ).pk
        orders = Order.objects.in_bulk({r.number for r in records}, field_name="number")
        outcomes: dict[int, str] = {}
        new_orders: dict[str, Order] = {}
        dirty: dict[str, set[str]] = {}
        for record in records:
            values = dict(record.order)
            if "channel" in values:
                values["channel_id"] = channels[values.pop("channel")]
            customer_id = next((owners[k] for k in record.keys if k in owners), None)
            if customer_id:
                values["customer_id"] = customer_id
            order = orders.get(record.number) or new_orders.get(record.number)
            if order is None:
                order = Order(number=record.number, **values)
                new_orders[record.number] = order
                outcomes[record.row_number] = "inserted"
                continue
            changed = False
            for name, value in values.items():
                if getattr(order, name) != value:
                    setattr(order, name, value)
                    changed = True
                    if order.pk:
                        dirty.setdefault(record.number, set()).add(name)
            outcomes[record.row_number] = "updated" if changed else "unchanged"
        Order.objects.bulk_create(list(new_orders.values()), batch_size=1000)
        if dirty:
            fields = sorted({f for names in dirty.values() for f in names})
            Order.objects.bulk_update([orders[n] for n in dirty], fields, batch_size=1000)
        all_orders = {**orders, **new_orders}
        lines = {
            (line.order_id, line.product_id): line
            for line in OrderLine.objects.filter(order_id__in=[o.pk for o in all_orders.values()])
        }
        create, update = {}, {}
        for record in records:
            if not record.line:
                continue
            order = all_orders[record.number]
            key = (order.pk, products[record.line["sku"]])
            data = {k: record.line[k] for k in ("quantity", "unit_price", "amount")}
            line = lines.get(key) or create.get(key)
            if line is None:
                create[key] = OrderLine(order_id=order.pk, product_id=key[1], **data)
                if outcomes[record.row_number] == "unchanged":
                    outcomes[record.row_number] = "updated"
            elif any(getattr(line, k) != v for k, v in data.items()):
                for k, v in data.items():
                    setattr(line, k, v)
                if line.pk:
                    update[key] = line
                if outcomes[record.row_number] == "unchanged":
                    outcomes[record.row_number] = "updated"
        OrderLine.objects.bulk_create(list(create.values()), batch_size=1000)
        if update:
            OrderLine.objects.bulk_update(
                list(update.values()), ["quantity", "unit_price", "amount"]
            )
        return outcomes, rejections


@dataclass
class ProductRecord:
    row_number: int
    sku: str
    values: dict[str, object]
    category: str


_FALSE = {"false", "0", "no", "n", "否", "下架", "draft", "archived", "inactive"}


class ProductImporter(Importer):
    kind = "products"

    def parse(self, row_number: int, row: dict[str, str]) -> ProductRecord:
        sku = self.get(row, "sku")
        if not sku:
            raise RowError("sku", "missing_value", _("no SKU: fill it in"))
        if len(sku) > 64:
            raise RowError("sku", "too_long", _("SKU longer than 64 characters"))
        name = self.get(row, "name")
        if not name:
            raise RowError("name", "missing_value", _("no product name: fill it in"))
        price, currency = self.clean("price", clean_amount, self.get(row, "price"))
        if price < 0:
            raise RowError("price", "negative_amount", _("price below zero"))
        values: dict[str, object] = {"name": clean_name(name)[:200], "price": price}
        currency = self.get(row, "currency").upper()[:3] or currency
        if currency:
            values["currency"] = currency
        brand = self.get(row, "brand")
        if brand:
            values["brand"] = brand[:100]
        active = self.get(row, "is_active")
        if active:
            values["is_active"] = active.lower() not in _FALSE
        return ProductRecord(row_number, sku, values, self.get(row, "category")[:100])

    def apply(self, records: list[ProductRecord]) -> tuple[dict[int, str], list[Rejection]]:
        names = {r.category for r in records if r.category}
        categories = {c.name: c.pk for c in Category.objects.filter(name__in=names)}
        for name in sorted(names - set(categories)):
            code = slugify(name, allow_unicode=True)[:50] or name[:50]
            categories[name] = Category.objects.get_or_create(code=code, defaults={"name": name})[
                0
            ].pk
        products = Product.objects.in_bulk({r.sku for r in records}, field_name="sku")
        outcomes, create, dirty = {}, {}, {}
        for record in records:
            values = dict(record.values)
            if record.category:
                values["category_id"] = categories[record.category]
            product = products.get(record.sku) or create.get(record.sku)
            if product is None:
                create[record.sku] = Product(sku=record.sku, **values)
                outcomes[record.row_number] = "inserted"
                continue
            changed = [k for k, v in values.items() if getattr(product, k) != v]
            for k in changed:
                setattr(product, k, values[k])
            if changed and product.pk:
                dirty.setdefault(record.sku, set()).update(changed)
            outcomes[record.row_number] = "updated" if changed else "unchanged"
        Product.objects.bulk_create(list(create.values()), batch_size=1000)
        if dirty:
            fields = sorted({f for names in dirty.values() for f in names})
            Product.objects.bulk_update([products[s] for s in dirty], fields)
        return outcomes, []


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


IMPORTERS: dict[str, type[Importer]] = {
    "customers": CustomerImporter,
    "orders": OrderImporter,
    "products": ProductImporter,
    "events": EventImporter,
}


# ---------------------------------------------------------------- running an import


def _process(
    importer: Importer, rows: list[tuple[int, dict[str, str]]]
) -> tuple[dict[int, str], list[Rejection]]:
    records, rejections = [], []
    raw_of = dict(rows)
    for row_number, row in rows:
        try:
            importer.check(row_number, row)
            records.append(importer.parse(row_number, row))
        except RowError as exc:
            rejections.append(Rejection(row_number, exc.field, exc.reason, exc.message, row))
    records = _drop_suppressed(records, rejections, raw_of)
    reported = len(importer.report.rows)
    outcomes, late = importer.apply(records) if records else ({}, [])
    for rejection in late:
        rejection.values = raw_of[rejection.row_number]
    # Importers without their own per-row report (orders, products, events) get the outcome.
    seen = {r["row"] for r in importer.report.rows[reported:]}
    for row_number, outcome in outcomes.items():
        if row_number not in seen:
            importer.report.add(row_number, outcome)
    for rejection in rejections + late:
        importer.report.add(
            rejection.row_number, "quarantined", field_name=rejection.field,
            note=rejection.message, changes=(),
        )  # fmt: skip
    return outcomes, rejections + late


def _drop_suppressed(records: list, rejections: list[Rejection], raw_of: dict) -> list:
    """Quarantine rows naming a person erased on request, so an import cannot bring them back."""
    from kequn.privacy.services import describe_suppression, find_suppressed

    suppressed = find_suppressed(k for r in records for k in getattr(r, "keys", ()))
    if not suppressed:
        return records
    kept = []
    for record in records:
        hit = next((k for k in getattr(record, "keys", ()) if k in suppressed), None)
        if hit is None:
            kept.append(record)
            continue
        field_name = "external_id" if hit[0] == "external" else hit[0]
        message = describe_suppression(suppressed[hit])
        rejections.append(
            Rejection(
                record.row_number, field_name, "suppressed", message, raw_of[record.row_number]
            )
        )
    return kept


def _quarantine(
    run: ImportRun | None,
    file_name: str,
    checksum: str,
    mapping: Mapping,
    rejections: list[Rejection],
) -> None:
    QuarantinedRow.objects.bulk_create(
        [
            QuarantinedRow(
                run=run,
                kind=mapping.kind,
                file_name=file_name[:255],
                checksum=checksum,
                row_number=r.row_number,
                field=r.field[:50],
                reason=r.reason,
                message=r.message[:2000],
                values=_stored_values(r.values),
                mapping=mapping.to_json(),
            )  # fmt: skip
            for r in rejections
        ],
        ignore_conflicts=True,
    )


def _chunks(iterable, size: int):
    batch = []
    for item in iterable:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _count(
    summary: Summary, outcomes: dict[int, str], rejections: list[Rejection], n_rows: int
) -> Summary:
    delta = Summary(run_id=summary.run_id, file=summary.file, kind=summary.kind)
    delta.rows_read = n_rows
    for outcome in outcomes.values():
        delta.add(outcome)
    for rejection in rejections:
        delta.quarantined += 1
        delta.reasons[rejection.reason] = delta.reasons.get(rejection.reason, 0) + 1
    return delta


def _merge_into(summary: Summary, delta: Summary) -> None:
    for name in ("rows_read", "quarantined", *OUTCOMES):
        summary.add(name, getattr(delta, name))
    for reason, n in delta.reasons.items():
        summary.reasons[reason] = summary.reasons.get(reason, 0) + n


def inspect_file(
    path: str | os.PathLike, kind: str, *, source: str = "", mapping: str | None = None
) -> tuple[FileInfo, Mapping]:
    """Open a file and work out its column mapping, without importing anything."""
    if kind not in IMPORTERS:
        raise ImportFileError(
            _("unknown kind %(k)r: use customers, orders, products or events") % {"k": kind}
        )
    info = open_file(path)
    return info, resolve_mapping(info.headers, kind, mapping, source, info.name)


def import_file(
    path: str | os.PathLike,
    kind: str,
    *,
    source: str = "",
    mapping: str | Mapping | None = None,
    dry_run: bool = False,
    batch_size: int = 2000,
    progress: bool = False,
    by: AbstractBaseUser | None = None,
    stop_after_batches: int | None = None,
    display_name: str = "",
) -> Summary:
    """Import a file batch by batch; every batch commits on its own and is safe to repeat."""
    if isinstance(mapping, Mapping):
        info = open_file(path)
        resolved = mapping
    else:
        info, resolved = inspect_file(path, kind, source=source, mapping=mapping)
    file_name = display_name or info.name
    stale.fail_stale_runs()  # imports killed earlier stop showing as running
    run = ImportRun.objects.create(
        kind=kind, file_name=file_name[:255], checksum=info.checksum, source=resolved.system[:50],
        mapping=resolved.to_json(), started_by=by,
        status=ImportRun.Status.DRY_RUN if dry_run else ImportRun.Status.RUNNING,
    )  # fmt: skip
    summary = Summary(run_id=run.pk, file=file_name, kind=kind, dry_run=dry_run)
    importer = IMPORTERS[kind](resolved, info.checksum, actor=f"import #{run.pk} {file_name}"[:100])
    bar = tqdm(
        total=info.total_rows,
        unit=" rows",
        file=sys.stderr,
        disable=not progress,
        desc=file_name[:30],
    )
    from kequn.security.audit import services as audit

    def record_on_trail(status: str) -> None:
        # One audit entry per import job, not one per row (row-level events are suppressed).
        audit.record_event(
            audit.IMPORT,
            actor=by,
            target=run,
            detail={
                "kind": kind,
                "status": status,
                "dry_run": dry_run,
                **{n: getattr(summary, n) for n in ("rows_read", "quarantined", *OUTCOMES)},
            },
        )

    if not dry_run:
        # Written before any row: an import killed midway has committed batches on the trail.
        record_on_trail(ImportRun.Status.RUNNING)
        stale.beat(run.pk)
    try:
        with audit.suppress_model_events(), transaction.atomic() if dry_run else nullcontext():
            for number, batch in enumerate(_chunks(iter_rows(info), batch_size), start=1):
                if stop_after_batches is not None and number > stop_after_batches:
                    raise ImportInterruptedError(f"stopped after {stop_after_batches} batches")
                with transaction.atomic():
                    outcomes, rejections = _process(importer, batch)
                    delta = _count(summary, outcomes, rejections, len(batch))
                    _quarantine(run, file_name, info.checksum, resolved, rejections)
                    if not dry_run:
                        _add_to_run(run.pk, delta)
                        stale.beat(run.pk)
                _merge_into(summary, delta)
                bar.update(len(batch))
            if dry_run:
                transaction.set_rollback(True)
    except BaseException as exc:
        ImportRun.objects.filter(pk=run.pk).update(
            status=ImportRun.Status.FAILED,
            error=str(exc)[:2000] or type(exc).__name__,
            finished_at=timezone.now(),
        )
        with suppress(Exception):  # never hide the import's own error
            record_on_trail(ImportRun.Status.FAILED)
        raise
    finally:
        bar.close()
        stale.forget(run.pk)
    summary.rows = sorted(importer.report.rows, key=lambda r: r["row"])
    ImportRun.objects.filter(pk=run.pk).update(
        status=ImportRun.Status.DRY_RUN if dry_run else ImportRun.Status.FINISHED,
        finished_at=timezone.now(),
        # A dry run's ids were rolled back with everything else: nothing to link to.
        records={} if dry_run else importer.report.ids,
        **({"rows_read": summary.rows_read, "inserted": summary.inserted, "updated": summary.updated,
            "unchanged": summary.unchanged, "merged": summary.merged, "review": summary.review,
            "quarantined": summary.quarantined, "reasons": summary.reasons} if dry_run else {}),
    )  # fmt: skip
    record_on_trail(ImportRun.Status.DRY_RUN if dry_run else ImportRun.Status.FINISHED)
    return summary


class ImportInterruptedError(RuntimeError):
    """Raised on purpose in tests to stop an import between batches."""


def _add_to_run(run_id: int, delta: Summary) -> None:
    run = ImportRun.objects.select_for_update().get(pk=run_id)
    for name in ("rows_read", "quarantined", *OUTCOMES):
        setattr(run, name, getattr(run, name) + getattr(delta, name))
    reasons = dict(run.reasons)
    for reason, n in delta.reasons.items():
        reasons[reason] = reasons.get(reason, 0) + n
    run.reasons = reasons
    run.save(update_fields=["rows_read", "quarantined", *OUTCOMES, "reasons"])


def retry_quarantined_rows(rows: Iterable[QuarantinedRow]) -> dict[str, int]:
    """Import quarantined rows again (after their values were fixed); return counts."""
    counts = {"resolved": 0, "still_rejected": 0}
    groups: dict[tuple[str, str], list[QuarantinedRow]] = {}
    for row in rows:
        if row.status != QuarantinedRow.Status.OPEN:
            continue
        groups.setdefault((row.checksum, json.dumps(row.mapping, sort_keys=True)), []).append(row)
    for (checksum, _m), items in groups.items():
        mapping = Mapping.from_json(items[0].mapping)
        importer = IMPORTERS[mapping.kind](
            mapping, checksum, actor=f"quarantine retry {items[0].file_name}"[:100]
        )
        by_number = {item.row_number: item for item in items}
        with transaction.atomic():
            outcomes, rejections = _process(
                importer, [(i.row_number, {k: str(v) for k, v in i.values.items()}) for i in items]
            )
            for rejection in rejections:
                item = by_number[rejection.row_number]
                item.field, item.reason, item.message = (
                    rejection.field[:50],
                    rejection.reason,
                    rejection.message[:2000],
                )
                item.save(update_fields=["field", "reason", "message"])
                counts["still_rejected"] += 1
            done = [n for n in outcomes if n in by_number]
            QuarantinedRow.objects.filter(pk__in=[by_number[n].pk for n in done]).update(
                status=QuarantinedRow.Status.RESOLVED, resolved_at=timezone.now()
            )
            counts["resolved"] += len(done)
    return counts


def discard_quarantined_rows(rows: Iterable[QuarantinedRow]) -> int:
    """Mark quarantined rows as deliberately not imported."""
    ids = [r.pk for r in rows if r.status == QuarantinedRow.Status.OPEN]
    return QuarantinedRow.objects.filter(pk__in=ids).update(
        status=QuarantinedRow.Status.DISCARDED, resolved_at=timezone.now()
    )


def update_quarantined_values(row: QuarantinedRow, values: dict[str, str]) -> QuarantinedRow:
    """Replace the stored values of a quarantined row (the fix before a retry)."""
    row.values = {str(k): "" if v is None else str(v) for k, v in values.items()}
    row.save(update_fields=["values"])
    return row


def describe_quarantine_message(row: QuarantinedRow, groups: frozenset[str] | None = None) -> str:
    """Return a row's message, or a neutral one when it may quote a value hidden from `groups`."""
    if groups is None or not is_target_masked(groups, row.field):
        return row.message
    return _("%(reason)s in %(field)s (the value is hidden from your role)") % {
        "reason": row.reason,
        "field": row.field,
    }


def write_quarantine_csv(
    rows: Iterable[QuarantinedRow], out, groups: frozenset[str] | None = None
) -> int:
    """Write quarantined rows (id, file, row, field, reason, message, original values) as CSV.

    With `groups` (the viewer's unmasked field groups), personal values outside them are masked.
    """
    from kequn.security.formulas import escape_row

    writer = csv.writer(out)
    writer.writerow(["id", "file", "row", "field", "reason", "message", "status", "values"])
    count = 0
    for row in rows:
        values = row.values
        if groups is not None:
            values = mask_mapped_values(groups, values, (row.mapping or {}).get("columns", {}))
        writer.writerow(escape_row(
            [row.pk, row.file_name, row.row_number, row.field, row.reason,
             describe_quarantine_message(row, groups), row.status,
             json.dumps(values, ensure_ascii=False)]
        ))  # fmt: skip
        count += 1
    return count


# ---------------------------------------------------------------- probabilistic matches


@transaction.atomic
def accept_match(candidate: MatchCandidate, by: AbstractBaseUser | None = None) -> Merge:
    """Merge a reviewed pair: the older record is kept."""
    left, right = get_surviving_record(candidate.left), get_surviving_record(candidate.right)
    if left.pk == right.pk:
        raise ValidationError(_("the two records are already one customer"))
    target, absorbed = (left, right) if left.pk < right.pk else (right, left)
    merge = merge_customers(
        target, absorbed, rule="probabilistic: reviewed", score=candidate.score, by=by,
        actor=by.get_username() if by else "review", evidence=candidate.details,
    )  # fmt: skip
    candidate.status = MatchCandidate.Status.ACCEPTED
    candidate.decided_at, candidate.decided_by, candidate.merge = timezone.now(), by, merge
    candidate.save(update_fields=["status", "decided_at", "decided_by", "merge"])
    return merge


def reject_match(candidate: MatchCandidate, by: AbstractBaseUser | None = None) -> None:
    """Keep a reviewed pair apart; the matcher will not propose it again."""
    candidate.status = MatchCandidate.Status.REJECTED
    candidate.decided_at, candidate.decided_by = timezone.now(), by
    candidate.save(update_fields=["status", "decided_at", "decided_by"])


@dataclass
class ResolveSummary:
    records: int = 0
    pairs: int = 0
    merged: int = 0
    queued: int = 0
    skipped: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def resolve_probabilistic(
    upper: float = 0.95, lower: float = 0.60, by: AbstractBaseUser | None = None
) -> ResolveSummary:
    """Score records without a shared identifier; merge above `upper`, queue the rest above `lower`."""
    from kequn.ingest.resolution import load_profiles, score_pairs

    frame = load_profiles()
    pairs = score_pairs(frame, lower=lower)
    summary = ResolveSummary(records=len(frame), pairs=len(pairs))
    decided = {
        (a, b): status
        for a, b, status in MatchCandidate.objects.exclude(
            status=MatchCandidate.Status.PENDING
        ).values_list("left_id", "right_id", "status")
    }
    undone = {
        tuple(sorted(p))
        for p in Merge.objects.filter(undone_at__isnull=False).values_list(
            "target_id", "absorbed_id"
        )
    }
    uf = _UnionFind()
    evidence: dict[int, tuple] = {}
    for pair in sorted(pairs, key=lambda p: -p.probability):
        key = (pair.left, pair.right)
        if decided.get(key) == MatchCandidate.Status.REJECTED or key in undone:
            summary.skipped += 1
            continue
        if pair.probability >= upper:
            uf.union(pair.left, pair.right)
            evidence.setdefault(pair.right, (pair.left, pair.probability, pair.details))
        else:
            MatchCandidate.objects.update_or_create(
                left_id=pair.left, right_id=pair.right,
                defaults={"score": pair.probability, "details": pair.details},
            )  # fmt: skip
            summary.queued += 1
    clusters: dict[int, list[int]] = {}
    for node in list(uf.parent):
        clusters.setdefault(uf.find(node), []).append(node)
    for members in clusters.values():
        members.sort()
        target = Customer.objects.get(pk=members[0])
        for absorbed_id in members[1:]:
            _other, probability, details = evidence.get(absorbed_id, (None, None, {}))
            merge_customers(
                target, Customer.objects.get(pk=absorbed_id), rule="probabilistic: splink",
                score=probability, by=by, actor="resolve", evidence=details,
            )  # fmt: skip
            summary.merged += 1
    return summary
