"""Importing customers: match rows to people by identity, keep conflicts apart, store them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from kequn.customers.models import Address, Customer, Identity
from kequn.customers.selectors import find_identity_owners
from kequn.customers.services import record_consents_in_bulk, tag_customers_by_name
from kequn.db import insert_objects, update_objects
from kequn.ingest.cleaning import (
    clean_city,
    clean_date,
    clean_gender,
    clean_name,
    clean_province,
    fold,
    join_name,
)
from kequn.ingest.importers.base import Importer, Rejection, RowError
from kequn.ingest.merging import merge_customers
from kequn.ingest.models import MatchCandidate
from kequn.ingest.places import get_province_of_city
from kequn.ingest.survivorship import (
    IDENTIFYING_FIELDS,
    find_conflicts,
    fold_name,
    get_trust_order,
    may_overwrite,
)
from kequn.ingest.unionfind import UnionFind


@dataclass
class CustomerRecord:
    row_number: int
    keys: list[tuple[str, str, str]]
    profile: dict[str, object]
    address: dict[str, str]
    consents: dict[tuple[str, str], bool] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)


# How the systems write yes and no in their permission columns (HubSpot's marketing-contact
# status names the state; Shopify writes yes/no; Salesforce and Zoho true/false or 1/0).
YES = {"yes", "y", "true", "t", "1", "x", "是", "对", "√", "subscribed", "opted in",
       "marketing contact", "已订阅", "同意"}  # fmt: skip
NO = {"no", "n", "false", "f", "0", "否", "不", "×", "unsubscribed", "not subscribed",
      "opted out", "non-marketing contact", "未订阅", "已退订", "不同意"}  # fmt: skip
# Permission columns: the field, the consent it speaks of, and whether "yes" means withdrawn.
CONSENT_COLUMNS = (
    ("email_marketing", ("email", "marketing"), False),
    ("sms_marketing", ("sms", "marketing"), False),
    ("email_opt_out", ("email", "marketing"), True),
    ("sms_opt_out", ("sms", "marketing"), True),
    ("do_not_call", ("phone", "marketing"), True),
)


def _country(value: str) -> str:
    text = fold(value).upper()
    if text in ("中国", "CHINA", "PRC", "CHN", "中华人民共和国", "CN"):
        return "CN"
    return text if len(text) == 2 and text.isalpha() else ""


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
            if not date(1900, 1, 1) <= day <= timezone.localdate():
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
        return CustomerRecord(
            row_number, keys, profile, address, self._parse_consents(row), self._parse_tags(row)
        )

    def _parse_consents(self, row: dict[str, str]) -> dict[tuple[str, str], bool]:
        """Read the permission columns; an opt-out overrides a grant of the same consent."""
        consents: dict[tuple[str, str], bool] = {}
        for name, consent, inverted in sorted(CONSENT_COLUMNS, key=lambda c: c[2]):
            value = self.get(row, name)
            if not value:
                continue
            text = value.strip().lower()
            if text not in YES and text not in NO:
                raise RowError(
                    name,
                    "invalid_flag",
                    _(
                        "%(field)s is %(value)r, not a yes or no: write yes or no (or leave it empty)"
                    )
                    % {"field": name, "value": value[:40]},
                )
            granted = (text in YES) != inverted
            if inverted and consents.get(consent) is True and not granted:
                consents[consent] = False
            elif not inverted or consent not in consents:
                consents[consent] = granted
        return consents

    def _parse_tags(self, row: dict[str, str]) -> list[str]:
        """Split the tags cell (commas, semicolons, Chinese commas) into distinct tag names."""
        text = self.get(row, "tags")
        if not text:
            return []
        names = [part.strip() for part in re.split(r"[,;，；、|]", text)]
        return list(dict.fromkeys(self.fit("tags", n, 100) for n in names if n))

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
        uf = UnionFind()  # over entities: ("c", customer id) or ("n", index into `fresh`)
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
            insert_objects(Customer, list(new_customers.values()), set_ids=True)

        def customer_of(entity: tuple) -> Customer:
            entity = uf.find(entity)
            return existing[entity[1]] if entity[0] == "c" else new_customers[entity[1]]

        if self._dirty:
            fields = {"updated_at", "field_sources"}.union(*self._dirty.values())
            if "birthday" in fields:
                fields.add("birth_year")  # derived from the birthday by pre_save in update_objects
            now = timezone.now()
            to_update = [existing[pk] for pk in self._dirty]
            for customer in to_update:
                customer.updated_at = now
            update_objects(Customer, to_update, sorted(fields))
        identities = [
            Identity(customer_id=customer_of(entity).pk, kind=k, system=s, value=v)
            for (k, s, v), entity in key_owner.items()
            if (k, s, v) not in owners
        ]
        insert_objects(Identity, identities)
        customer_of_row = {i: customer_of(e) for i, e in row_entity.items()}
        self._store_addresses(records, customer_of_row)
        self._store_consents_and_tags(records, customer_of_row)
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
                by=self.by,
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

    def _store_consents_and_tags(self, records, customer_of_row: dict[int, Customer]) -> None:
        """Carry the file's marketing permissions into consents and its tags into tags."""
        consents: dict[int, dict[tuple[str, str], bool]] = {}
        tags: dict[int, list[str]] = {}
        for index, record in enumerate(records):
            customer_id = customer_of_row[index].pk
            if record.consents:
                consents.setdefault(customer_id, {}).update(record.consents)
            if record.tags:
                tags.setdefault(customer_id, []).extend(record.tags)
        source = f"{self.system or 'file'} {self.actor}".strip()
        record_consents_in_bulk(consents, source, by=self.by)
        tag_customers_by_name(tags, by=self.by)

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
