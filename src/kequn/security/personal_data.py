"""The registry of personal data: each app declares once which of its tables hold a person's data.

Every app that stores data about a customer declares it in its own ``personal_data.py``
(found by :func:`discover`, called from ``SecurityConfig.ready()``): the model, the path from
a row to the customer, the fields a data-subject export shows, how an erasure removes the
rows, whether changes are audited field by field, and which fields are masked by which field
group. Export and erasure (privacy), the audit signals and masking read this registry, so a
new app never edits a list in another one; the system check below fails when a model points
at the customer and nobody declared it.

This module sits in the bottom layer and names no business model: the customer model itself
is the one entry whose path is ``"pk"``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from django.apps import apps
from django.core import checks
from django.db import models
from django.db.models import Q
from django.utils.module_loading import autodiscover_modules

# The path of the customer model's own entry.
SUBJECT = "pk"


class Erase(StrEnum):
    """How an erasure removes an app's rows of a person."""

    CASCADE = "cascade"  # deleted with the customer rows (on_delete=CASCADE)
    DELETE = "delete"  # deleted before the customer rows
    DETACH = "detach"  # kept, the link to the person set to NULL (accounting records)
    BLANK = "blank"  # kept, the listed fields emptied
    KEEP = "keep"  # kept: the row no longer leads to anyone once its parent is detached
    CUSTOM = "custom"  # the entry's own function does it


@dataclass(frozen=True)
class ErasureContext:
    """What an erasure step may need to find a person's rows."""

    customer_ids: list[int]
    # Normalised identity values of the person, for rows that hold them as text.
    identity_values: frozenset[str]


@dataclass(frozen=True)
class PersonalData:
    """One table's personal data, as its app declares it."""

    model: type[models.Model]
    # The path from a row to the customer ("customer", "order__customer"); several paths
    # match a row through any of them; "pk" marks the customer model itself; none for rows
    # that hold the person only as text (an erasure step finds those by identity values).
    paths: tuple[str, ...]
    # The table name in a data-subject export; None keeps the table out of exports.
    export_as: str | None = None
    # The export's place among the tables (lower first).
    position: int = 1000
    # Exported fields (related ones as "tag__name"): every concrete field when None; then
    # `related`, the labels of what the ids point at (e.g. "channel__name").
    fields: tuple[str, ...] | None = None
    related: tuple[str, ...] = ()
    # The export's row order; None keeps the model's default ordering.
    order_by: tuple[str, ...] | None = ("pk",)
    erase: Erase = Erase.CASCADE
    # For Erase.BLANK: the fields to empty; for Erase.CUSTOM: the function doing the work.
    blank_fields: tuple[str, ...] = ()
    eraser: Callable[[ErasureContext], int] | None = None
    # The key under which an erasure reports how many rows this step touched.
    erase_count: str | None = None
    # Whether each save and delete is audited, with the names of the changed fields.
    audited: bool = False
    # Field -> field group (security.masking) that must be unmasked to read it.
    masked: Mapping[str, str] = field(default_factory=dict)
    # Masked fields shown empty rather than starred (a postcode gives nothing away blank).
    masked_blank: tuple[str, ...] = ()
    # Rows derived from the person (audiences, rankings), dropped when processing is restricted.
    derived: bool = False

    @property
    def label(self) -> str:
        """Return the model's label ("customers.identity")."""
        return self.model._meta.label_lower

    def filter_for(self, customer_ids: Iterable[int]) -> Q:
        """Return the condition selecting the rows of these customers."""
        ids = list(customer_ids)
        if not self.paths:
            return Q(pk__in=[])
        condition = Q()
        for path in self.paths:
            condition |= Q(**{f"{path}__in": ids})
        return condition

    def rows_of(self, customer_ids: Iterable[int]) -> models.QuerySet:
        """Return this table's rows of these customers, in export order."""
        rows = self.model._default_manager.filter(self.filter_for(customer_ids))
        return rows if self.order_by is None else rows.order_by(*self.order_by)

    def export_fields(self) -> list[str]:
        """Return the fields (and related labels) an export shows."""
        own = (
            [f.attname for f in self.model._meta.concrete_fields]
            if self.fields is None
            else list(self.fields)
        )
        return [*own, *self.related]

    def customer_id_of(self, instance: models.Model) -> int | None:
        """Return the id of the customer a row belongs to (by its first path)."""
        if not self.paths:
            return None
        *hops, last = self.paths[0].split("__")
        target: Any = instance
        for hop in hops:
            target = getattr(target, hop, None)
            if target is None:
                return None
        if last == SUBJECT:
            return target.pk
        return getattr(target, f"{last}_id", getattr(target, last, None))


_entries: dict[str, PersonalData] = {}
_discovered = False


def register(
    model: type[models.Model],
    *,
    path: str | Sequence[str],
    export_as: str | None = None,
    position: int = 1000,
    fields: Sequence[str] | None = None,
    related: Sequence[str] = (),
    order_by: Sequence[str] | None = ("pk",),
    erase: Erase = Erase.CASCADE,
    blank_fields: Sequence[str] = (),
    eraser: Callable[[ErasureContext], int] | None = None,
    erase_count: str | None = None,
    audited: bool = False,
    masked: Mapping[str, str] | None = None,
    masked_blank: Sequence[str] = (),
    derived: bool = False,
) -> PersonalData:
    """Declare a model's personal data (once, from the app's personal_data module)."""
    if erase is Erase.CUSTOM and eraser is None:
        raise ValueError(f"{model._meta.label}: a custom erasure needs an eraser function")
    if erase is Erase.BLANK and not blank_fields:
        raise ValueError(f"{model._meta.label}: a blanking erasure needs blank_fields")
    entry = PersonalData(
        model=model,
        paths=(path,) if isinstance(path, str) else tuple(path),
        export_as=export_as,
        position=position,
        fields=None if fields is None else tuple(fields),
        related=tuple(related),
        order_by=None if order_by is None else tuple(order_by),
        erase=erase,
        blank_fields=tuple(blank_fields),
        eraser=eraser,
        erase_count=erase_count,
        audited=audited,
        masked=dict(masked or {}),
        masked_blank=tuple(masked_blank),
        derived=derived,
    )
    _entries[entry.label] = entry
    return entry


def unregister(model: type[models.Model]) -> PersonalData | None:
    """Remove a model's declaration (tests); return it."""
    return _entries.pop(model._meta.label_lower, None)


def discover() -> None:
    """Import every installed app's personal_data module (once)."""
    global _discovered  # the registry is filled once per process
    if not _discovered:
        _discovered = True
        autodiscover_modules("personal_data")


def get_entries() -> list[PersonalData]:
    """Return every declaration, in export order."""
    discover()
    return sorted(_entries.values(), key=lambda e: (e.position, e.label))


def get_entry(model: type[models.Model]) -> PersonalData | None:
    """Return a model's declaration, if any."""
    discover()
    return _entries.get(model._meta.label_lower)


def get_subject_model() -> type[models.Model] | None:
    """Return the customer model (the entry whose path is "pk")."""
    for entry in get_entries():
        if entry.paths == (SUBJECT,):
            return entry.model
    return None


def get_exported() -> list[PersonalData]:
    """Return the declarations shown in a data-subject export, in their order."""
    return [e for e in get_entries() if e.export_as]


def get_audited_models() -> list[type[models.Model]]:
    """Return the models whose changes are audited field by field."""
    return [e.model for e in get_entries() if e.audited]


def get_masked_fields(model: type[models.Model]) -> Mapping[str, str]:
    """Return a model's masked fields, each with its field group."""
    entry = get_entry(model)
    return entry.masked if entry is not None else {}


def find_undeclared() -> list[tuple[type[models.Model], str]]:
    """Return (model, field name) of every relation to the customer no app declared."""
    subject = get_subject_model()
    if subject is None:
        return []
    missing = []
    for model in apps.get_models():
        if model is subject or get_entry(model) is not None:
            continue
        for relation in model._meta.concrete_fields:
            if relation.is_relation and relation.related_model is subject:
                missing.append((model, relation.name))
    return missing


@checks.register(checks.Tags.models)
def check_personal_data_declared(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Fail when a model points at the customer but its app declared no personal data for it."""
    return [
        checks.Error(
            f"{model._meta.label}.{name} points at the customer, but {model._meta.label} is "
            "not declared as personal data",
            hint=(
                f"add kequn.security.personal_data.register({model.__name__}, path=...) to "
                f"{model._meta.app_config.name}.personal_data, so export and erasure include it"
            ),
            obj=model,
            id="kequn.E020",
        )
        for model, name in find_undeclared()
    ]
