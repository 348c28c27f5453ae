"""Every change to segments, memberships, tag rules and personas goes through here."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from kequn.commerce.models import Category, Product
from kequn.customers.models import Customer, CustomerTag, Identity, Tag, TagGroup
from kequn.security.actors import Actor, get_user_or_none
from kequn.security.audit.services import CHANGE as AUDIT_CHANGE
from kequn.security.audit.services import record_event
from kequn.security.inputs import strip_control
from kequn.security.permissions import scope_customers
from kequn.segments.models import (
    MembershipChange,
    Persona,
    Segment,
    SegmentMember,
    SegmentSize,
    TagRule,
)
from kequn.segments.rules import ROOT, RuleError, iter_conditions, validate_rule
from kequn.segments.sqlgen import compile_sql

BATCH = 5000


@dataclass(frozen=True)
class RefreshResult:
    size: int
    entered: int
    left: int


def lookup_segment(segment_id: int) -> tuple[dict, bool] | None:
    """Return (rules, is_dynamic) of a segment, or None if it does not exist."""
    row = Segment.objects.filter(pk=segment_id).values("rules", "kind").first()
    if row is None:
        return None
    return row["rules"], row["kind"] == Segment.Kind.DYNAMIC


def check_rule(rule: Any, segment_id: int | None = None) -> dict:
    """Validate a rule (fields, operators, groups, cycles, what it names); raise ValidationError."""
    try:
        validate_rule(rule, lookup_segment, segment_id)
    except RuleError as exc:
        raise ValidationError(exc.errors) from None
    problems = find_missing_references(rule)
    if problems:
        # Named like the other rule errors: the place in the rule, then what is wrong.
        raise ValidationError(
            [f"{p['path']}: unknown {p['kind']} {p['value']!r}" for p in problems]
        )
    return rule


# --- what a rule names: tags, categories, products, other segments ----------------------

# A problem is a dict {"kind": "tag" | "category" | "product" | "segment" | "error",
# "value": ..., "path": "rules.conditions[0]"}, stored as is on a disabled segment and put in
# words (in the reader's language) by describe_problem.
REFERENCE_FIELDS = {
    "tag": "tag",
    "bought_category": "category",
    "bought_product": "product",
    "in_segment": "segment",
}


def _iter_paths(node: Any, path: str = ROOT) -> Iterator[tuple[str, dict]]:
    if not isinstance(node, dict):
        return
    if "conditions" in node:
        for i, child in enumerate(node.get("conditions") or []):
            yield from _iter_paths(child, f"{path}.conditions[{i}]")
    else:
        yield path, node


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def list_references(rule: Any) -> list[tuple[str, str, Any]]:
    """Return (path, kind, value) for each tag, category, product and segment a rule names."""
    found = []
    for path, cond in _iter_paths(rule):
        kind = REFERENCE_FIELDS.get(str(cond.get("field")))
        if kind is None:
            continue
        for value in _as_list(cond.get("value")):
            if isinstance(value, str | int):
                found.append((path, kind, value))
    return found


def find_missing_references(rule: Any, _seen: frozenset[int] = frozenset()) -> list[dict]:
    """Return a problem for each tag, category, product or segment the rule names that is gone.

    A dynamic segment named by the rule is compiled into it, so what that one names counts too.
    """
    refs = list_references(rule)
    if not refs:
        return []
    wanted: dict[str, set] = {"tag": set(), "category": set(), "product": set(), "segment": set()}
    for _path, kind, value in refs:
        wanted[kind].add(value)
    tag_ids = {v for v in wanted["tag"] if isinstance(v, int) and not isinstance(v, bool)}
    tag_names = {v for v in wanted["tag"] if isinstance(v, str)}
    present: dict[str, set] = {
        "tag": set(Tag.objects.filter(pk__in=tag_ids).values_list("pk", flat=True))
        | set(Tag.objects.filter(name__in=tag_names).values_list("name", flat=True)),
        "category": set(
            Category.objects.filter(
                code__in=[v for v in wanted["category"] if isinstance(v, str)]
            ).values_list("code", flat=True)
        ),
        "product": set(
            Product.objects.filter(
                sku__in=[v for v in wanted["product"] if isinstance(v, str)]
            ).values_list("sku", flat=True)
        ),
    }
    segment_ids = [v for v in wanted["segment"] if isinstance(v, int) and not isinstance(v, bool)]
    segments = {
        row["pk"]: row
        for row in Segment.objects.filter(pk__in=segment_ids).values("pk", "rules", "kind")
    }
    present["segment"] = set(segments)
    problems = []
    for path, kind, value in refs:
        if value not in present[kind]:
            problems.append({"kind": kind, "value": value, "path": path})
    for seg_id, row in segments.items():
        if row["kind"] == Segment.Kind.DYNAMIC and seg_id not in _seen:
            problems.extend(find_missing_references(row["rules"], _seen | {seg_id}))
    return problems


def describe_problem(problem: dict) -> str:
    """Put one problem of a rule in words, in the current language."""
    value = problem.get("value")
    shown = f"#{value}" if problem.get("kind") == "segment" else str(value)
    messages = {
        "tag": _("the rule names the tag “%(value)s”, which no longer exists"),
        "category": _("the rule names the category “%(value)s”, which no longer exists"),
        "product": _("the rule names the product “%(value)s”, which no longer exists"),
        "segment": _("the rule names the segment %(value)s, which no longer exists"),
    }
    text = messages.get(str(problem.get("kind")), _("the rule cannot be evaluated: %(value)s"))
    return text % {"value": shown}


def describe_problems(problems: Any) -> str:
    """Put the problems that disabled a segment or tag rule in words (current language)."""
    if not isinstance(problems, list):
        return ""
    return "; ".join(describe_problem(p) for p in problems if isinstance(p, dict))


def plan_without_jit() -> None:
    """Turn off PostgreSQL's JIT compilation for the rest of the current transaction."""
    # Correlated subqueries make the planner's cost estimates huge, so PostgreSQL JIT-compiles
    # every segment query; compiling takes longer than the index lookups it is meant to speed
    # up (0.5 s of a 1 s count over a million customers).
    if connection.vendor == "postgresql" and connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")


def compile_member_sql(
    rule: dict, now: datetime | None = None, *, candidates_first: bool = True
) -> tuple[str, list[Any]]:
    """Return (query, parameters) of the ids of the customers matching a validated rule now."""
    # A tag the rule names by name or id must exist (a rule naming a deleted tag would
    # silently match no one); the other references only narrow the result.
    unknown_tags = [p for p in find_missing_references(rule) if p["kind"] == "tag"]
    if unknown_tags:
        raise ValidationError([f"{p['path']}: unknown tag {p['value']!r}" for p in unknown_tags])
    now = now or timezone.now()
    try:
        return compile_sql(
            rule,
            now,
            timezone.localtime(now).date(),
            lookup_segment,
            timezone.get_current_timezone(),
            candidates_first=candidates_first,
        )
    except RuleError as exc:
        raise ValidationError(exc.errors) from None


def select_rule_members(rule: dict, now: datetime | None = None) -> QuerySet:
    """Return the customers matching a validated rule now (a QuerySet to scope or page)."""
    sql, params = compile_member_sql(rule, now)
    return Customer.objects.filter(pk__in=RawSQL(sql, params))  # noqa: S611 -- generated, values bound


def count_members(rule: dict, now: datetime | None = None) -> int:
    """Return how many customers match a validated rule now."""
    sql, params = compile_member_sql(rule, now)
    with transaction.atomic(), connection.cursor() as cursor:
        plan_without_jit()
        cursor.execute(f"SELECT count(*) FROM ({sql}) q", params)  # noqa: S608 -- generated, values bound
        return cursor.fetchone()[0]


# Up to this many matches, the live count reads the matching ids once and samples them.
SAMPLE_SCAN_LIMIT = 10_000


def count_and_sample_members(
    rule: dict, limit: int, now: datetime | None = None
) -> tuple[int, list[int]]:
    """Return how many customers match a validated rule and the ids of the newest few."""
    # A rare rule: one evaluation yields both (the ORM's "newest ten" would walk the id index
    # backwards, running the per-customer lookups row by row, through every customer). A
    # common rule: the count, then the newest ten, which are near the top of the index.
    # (ORDER BY ... LIMIT on the generated SQL makes PostgreSQL pick a slower plan.)
    sql, params = compile_member_sql(rule, now)
    with transaction.atomic(), connection.cursor() as cursor:
        plan_without_jit()
        cursor.execute(f"SELECT q.id FROM ({sql}) q LIMIT %s", [*params, SAMPLE_SCAN_LIMIT + 1])  # noqa: S608 -- generated, values bound
        ids = [row[0] for row in cursor.fetchall()]
        if len(ids) <= SAMPLE_SCAN_LIMIT:
            return len(ids), sorted(ids, reverse=True)[:limit]
        cursor.execute(f"SELECT count(*) FROM ({sql}) q", params)  # noqa: S608 -- generated, values bound
        count = cursor.fetchone()[0]
        # One WHERE clause over the customers, walked down the id index until enough match.
        plain, plain_params = compile_member_sql(rule, now, candidates_first=False)
        cursor.execute(f"{plain} ORDER BY c.id DESC LIMIT %s", [*plain_params, limit])
        return count, [row[0] for row in cursor.fetchall()]


def count_rule(rule: Any, segment_id: int | None = None) -> int:
    """Return how many customers match a rule (validated first)."""
    check_rule(rule, segment_id)
    return count_members(rule)


def _has_conditions(rule: Any) -> bool:
    return isinstance(rule, dict) and bool(rule.get("conditions"))


def _iter_chunks(ids: list[int], size: int = BATCH) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _apply_membership(segment: Segment, entered: list[int], left: list[int]) -> None:
    now = timezone.now()
    for chunk in _iter_chunks(left):
        SegmentMember.objects.filter(segment=segment, customer_id__in=chunk).delete()
    for chunk in _iter_chunks(entered):
        SegmentMember.objects.bulk_create(
            [SegmentMember(segment=segment, customer_id=c, added_at=now) for c in chunk],
            ignore_conflicts=True,
        )
    changes = [(c, MembershipChange.Change.ENTERED) for c in entered] + [
        (c, MembershipChange.Change.LEFT) for c in left
    ]
    for start in range(0, len(changes), BATCH):
        MembershipChange.objects.bulk_create(
            [
                MembershipChange(segment=segment, customer_id=c, change=kind, changed_at=now)
                for c, kind in changes[start : start + BATCH]
            ]
        )


def _diff_members(rule: dict, current, now: datetime | None) -> tuple[list[int], list[int]]:
    # The rule is evaluated once and the two id sets compared here: a diff in SQL runs the
    # rule twice (once for who entered, once for who left).
    sql, params = compile_member_sql(rule, now)
    plan_without_jit()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        matched = {row[0] for row in cursor.fetchall()}
    existing = set(current)
    return sorted(matched - existing), sorted(existing - matched)


@transaction.atomic
def evaluate_segment(segment: Segment, now: datetime | None = None, *, by: Actor) -> RefreshResult:
    """Re-evaluate the rule and record who entered and left."""
    rule = check_rule(segment.rules, segment.pk)
    current = SegmentMember.objects.filter(segment=segment).values_list("customer_id", flat=True)
    entered, left = _diff_members(rule, current, now)
    _apply_membership(segment, entered, left)
    if segment.disabled_at is not None:
        _enable(segment)  # the rule runs again (fixed, or what it names is back)
    return _record_size(segment, len(entered), len(left))


def _record_size(segment: Segment, entered: int, left: int) -> RefreshResult:
    size = SegmentMember.objects.filter(segment=segment).count()
    segment.member_count = size
    segment.refreshed_at = timezone.now()
    segment.save(update_fields=["member_count", "refreshed_at", "updated_at"])
    SegmentSize.objects.create(segment=segment, size=size, entered=entered, left=left)
    return RefreshResult(size, entered, left)


def refresh_segment(segment: Segment, now: datetime | None = None, *, by: Actor) -> RefreshResult:
    """Refresh a dynamic segment; a static one keeps its snapshot."""
    if not segment.is_dynamic:
        size = segment.member_count
        return RefreshResult(size, 0, 0)
    return evaluate_segment(segment, now, by=by)


@transaction.atomic
def create_segment(
    name: str,
    rules: dict | None = None,
    *,
    kind: str = Segment.Kind.DYNAMIC,
    description: str = "",
    customer_ids: Iterable[int] | None = None,
    by: Actor,
) -> Segment:
    """Create a segment; a static one is snapshotted now from its rule or the given ids."""
    rules = rules if rules is not None else {"match": "all", "conditions": []}
    if kind not in Segment.Kind.values:
        raise ValidationError(_("kind must be 'dynamic' or 'static'"))
    if kind == Segment.Kind.DYNAMIC or _has_conditions(rules):
        check_rule(rules)
    # Saving strips control characters: compare the name that will be stored.
    name = strip_control(name)
    if Segment.objects.filter(name=name).exists():
        raise ValidationError(_("a segment named %(name)s already exists") % {"name": name})
    user = get_user_or_none(by)
    segment = Segment(
        name=name,
        rules=rules,
        kind=kind,
        description=description,
        created_by_id=user.pk if user is not None else None,
    )
    segment.full_clean(exclude=["created_by", "rules"])
    segment.save()
    if customer_ids is not None:
        set_static_members(segment, customer_ids, by=by)
    else:
        evaluate_segment(segment, by=by)
    return segment


@transaction.atomic
def update_segment(segment: Segment, data: dict[str, Any], *, by: Actor) -> Segment:
    """Change name, description, kind or rules; a changed rule is re-evaluated at once."""
    unknown = set(data) - {"name", "description", "kind", "rules"}
    if unknown:
        raise ValidationError(f"unknown segment field(s): {', '.join(sorted(unknown))}")
    if "kind" in data and data["kind"] not in Segment.Kind.values:
        raise ValidationError(_("kind must be 'dynamic' or 'static'"))
    rules_changed = "rules" in data and data["rules"] != segment.rules
    for key, value in data.items():
        setattr(segment, key, value)
    if segment.is_dynamic or _has_conditions(segment.rules):
        check_rule(segment.rules, segment.pk)
    segment.name = strip_control(segment.name)
    if Segment.objects.filter(name=segment.name).exclude(pk=segment.pk).exists():
        raise ValidationError(_("a segment named %(name)s already exists") % {"name": segment.name})
    segment.full_clean(exclude=["created_by", "rules"])
    segment.save()
    if segment.is_dynamic or rules_changed:
        evaluate_segment(segment, by=by)
    return segment


def snapshot_segment(segment: Segment, *, by: Actor) -> RefreshResult:
    """Take a new snapshot of a static segment from its rule."""
    return evaluate_segment(segment, by=by)


@transaction.atomic
def delete_segment(segment: Segment, *, by: Actor) -> None:
    """Delete a segment unless another segment's rule refers to it."""
    for other in Segment.objects.exclude(pk=segment.pk).only("id", "name", "rules"):
        if _refers_to(other.rules, segment.pk):
            raise ValidationError(
                _("segment %(other)s refers to this segment; change it first")
                % {"other": other.name}
            )
    for tag_rule in TagRule.objects.select_related("tag"):
        if _refers_to(tag_rule.rules, segment.pk):
            raise ValidationError(
                _("the tag rule %(other)s refers to this segment; change it first")
                % {"other": str(tag_rule)}
            )
    segment.delete()


def _refers_to(rule: Any, segment_id: int) -> bool:
    if not isinstance(rule, dict):
        return False
    return any(
        c.get("field") == "in_segment" and c.get("value") == segment_id
        for c in iter_conditions(rule)
    )


@transaction.atomic
def set_static_members(
    segment: Segment, customer_ids: Iterable[int], *, by: Actor
) -> RefreshResult:
    """Make the members of a static segment exactly these customers."""
    wanted = set(
        Customer.objects.filter(
            pk__in=list(customer_ids), merged_into__isnull=True, processing_restricted=False
        ).values_list("pk", flat=True)
    )
    current = set(
        SegmentMember.objects.filter(segment=segment).values_list("customer_id", flat=True)
    )
    entered, left = sorted(wanted - current), sorted(current - wanted)
    _apply_membership(segment, entered, left)
    return _record_size(segment, len(entered), len(left))


def refresh_tag_rule(tag_rule: TagRule, now: datetime | None = None, *, by: Actor) -> RefreshResult:
    """Make the tag's customers exactly those matching its rule."""
    rule = check_rule(tag_rule.rules)
    links = CustomerTag.objects.filter(tag=tag_rule.tag)
    with transaction.atomic():
        entered, left = _diff_members(rule, links.values_list("customer_id", flat=True), now)
        for chunk in _iter_chunks(left):
            links.filter(customer_id__in=chunk).delete()
        for chunk in _iter_chunks(entered):
            CustomerTag.objects.bulk_create(
                [CustomerTag(customer_id=c, tag=tag_rule.tag) for c in chunk],
                ignore_conflicts=True,
            )
        tag_rule.member_count = links.count()
        tag_rule.refreshed_at = timezone.now()
        tag_rule.disabled_at, tag_rule.disabled_reason = None, []
        tag_rule.save(
            update_fields=["member_count", "refreshed_at", "disabled_at", "disabled_reason"]
        )
    return RefreshResult(tag_rule.member_count, len(entered), len(left))


@transaction.atomic
def save_tag_rule(
    tag_name: str,
    rules: dict,
    group_name: str | None = None,
    *,
    enabled: bool = True,
    by: Actor,
) -> TagRule:
    """Create or change an automatic tag and fill it from its rule."""
    check_rule(rules)
    tag = get_or_create_tag(tag_name, group_name, kind=Tag.Kind.RULE, by=by)
    tag_rule, _created = TagRule.objects.update_or_create(
        tag=tag, defaults={"rules": rules, "enabled": enabled}
    )
    refresh_tag_rule(tag_rule, by=by)
    return tag_rule


def refresh_all(now: datetime | None = None, *, by: Actor) -> dict[str, Any]:
    """Refresh every dynamic segment and enabled tag rule; a broken rule disables only its own.

    Return how many of each were refreshed and, under "disabled", one line per segment or tag
    rule that is disabled because its rule names something deleted (newly or still).
    """
    segments, tag_rules, disabled = 0, 0, []
    for segment in Segment.objects.filter(kind=Segment.Kind.DYNAMIC).order_by("id"):
        if segment.disabled_at is not None and find_missing_references(segment.rules):
            disabled.append(_disabled_line(_("segment"), segment.pk, segment.name, segment))
            continue
        try:
            evaluate_segment(segment, now, by=by)
        except (ValidationError, RuleError) as exc:
            problems = _explain_failure(segment.rules, exc)
            if segment.disabled_at is None or segment.disabled_reason != problems:
                disable_segment(segment, problems=problems, by=by)
            disabled.append(_disabled_line(_("segment"), segment.pk, segment.name, segment))
            continue
        segments += 1
    for tag_rule in TagRule.objects.filter(enabled=True).select_related("tag").order_by("id"):
        if tag_rule.disabled_at is not None and find_missing_references(tag_rule.rules):
            disabled.append(_disabled_line(_("tag rule"), tag_rule.pk, str(tag_rule), tag_rule))
            continue
        try:
            refresh_tag_rule(tag_rule, now, by=by)
        except (ValidationError, RuleError) as exc:
            problems = _explain_failure(tag_rule.rules, exc)
            if tag_rule.disabled_at is None or tag_rule.disabled_reason != problems:
                disable_tag_rule(tag_rule, problems=problems, by=by)
            disabled.append(_disabled_line(_("tag rule"), tag_rule.pk, str(tag_rule), tag_rule))
            continue
        tag_rules += 1
    return {"segments": segments, "tag_rules": tag_rules, "disabled": disabled}


def _disabled_line(kind: str, pk: int, name: str, obj: Segment | TagRule) -> str:
    return f"{kind} #{pk} {name}: {describe_problems(obj.disabled_reason)}"


def _explain_failure(rule: Any, exc: Exception) -> list[dict]:
    problems = find_missing_references(rule)
    if problems:
        return problems
    messages = exc.messages if isinstance(exc, ValidationError) else getattr(exc, "errors", [])
    return [{"kind": "error", "value": "; ".join(messages) or str(exc), "path": ROOT}]


def _enable(obj: Segment | TagRule) -> None:
    obj.disabled_at = None
    obj.disabled_reason = []
    obj.save(update_fields=["disabled_at", "disabled_reason"])


def _disable(obj: Segment | TagRule, *, problems: list[dict], by: Actor) -> None:
    obj.disabled_at = timezone.now()
    obj.disabled_reason = problems
    obj.save(update_fields=["disabled_at", "disabled_reason"])
    record_event(
        AUDIT_CHANGE,
        actor=by,
        target=obj,
        detail={"disabled": True, "problems": [p["kind"] for p in problems]},
    )


@transaction.atomic
def disable_segment(segment: Segment, *, problems: list[dict], by: Actor) -> Segment:
    """Stop refreshing a segment whose rule cannot run; tell its owner why (log and audit)."""
    _disable(segment, problems=problems, by=by)
    if segment.created_by_id:
        # The owner finds it under their recent actions and in the segment's history.
        with translation.override(settings.LANGUAGE_CODE):
            message = _("Disabled by the refresh: %(reason)s") % {
                "reason": describe_problems(problems)
            }
        LogEntry.objects.log_actions(
            user_id=segment.created_by_id,
            queryset=[segment],
            action_flag=CHANGE,
            change_message=message,
            single_object=True,
        )
    return segment


@transaction.atomic
def disable_tag_rule(tag_rule: TagRule, *, problems: list[dict], by: Actor) -> TagRule:
    """Stop refreshing a tag rule whose rule cannot run, keeping why (and audit it)."""
    _disable(tag_rule, problems=problems, by=by)
    return tag_rule


def find_rules_using(
    *, tags: Iterable[Tag] = (), categories: Iterable = (), segments: Iterable[Segment] = ()
) -> list[Segment | TagRule]:
    """Return the segments and tag rules whose rules name any of these tags, categories or segments."""
    tag_keys = set()
    for tag in tags:
        tag_keys |= {tag.pk, tag.name}
    category_codes = {c.code for c in categories}
    segment_ids = {s.pk for s in segments}
    wanted = {"tag": tag_keys, "category": category_codes, "segment": segment_ids}
    users: list[Segment | TagRule] = []
    candidates: list[Segment | TagRule] = [
        *Segment.objects.order_by("name"),
        *TagRule.objects.select_related("tag"),
    ]
    for obj in candidates:
        if isinstance(obj, Segment) and obj.pk in segment_ids:
            continue
        if any(value in wanted.get(kind, ()) for _p, kind, value in list_references(obj.rules)):
            users.append(obj)
    return users


# --- tags in bulk --------------------------------------------------------------------


@transaction.atomic
def get_or_create_tag(
    name: str, group_name: str | None = None, *, kind: str = Tag.Kind.MANUAL, by: Actor
) -> Tag:
    """Return the tag with this name in this group, creating tag and group if needed."""
    name = (name or "").strip()
    if not name:
        raise ValidationError(_("a tag needs a name"))
    group = None
    if group_name:
        group, _created = TagGroup.objects.get_or_create(name=group_name.strip())
    tag, _created = Tag.objects.get_or_create(group=group, name=name, defaults={"kind": kind})
    return tag


def tag_customer_ids(tag: Tag, customer_ids: Iterable[int], *, by: Actor) -> int:
    """Tag many customers by id (idempotent); return how many links were added."""
    ids = sorted(set(customer_ids))
    before = CustomerTag.objects.filter(tag=tag).count()
    user = get_user_or_none(by)
    user_id = user.pk if user is not None else None
    # A sales rep tags only accounts they may see, whatever ids a file or segment holds.
    taggable = scope_customers(by, Customer.objects.filter(processing_restricted=False))
    with transaction.atomic():
        for chunk in _iter_chunks(ids):
            existing = set(taggable.filter(pk__in=chunk).values_list("pk", flat=True))
            CustomerTag.objects.bulk_create(
                [
                    CustomerTag(customer_id=c, tag=tag, added_by_id=user_id)
                    for c in chunk
                    if c in existing
                ],
                ignore_conflicts=True,
            )
    return CustomerTag.objects.filter(tag=tag).count() - before


def tag_segment_members(segment: Segment, tag: Tag, *, by: Actor) -> int:
    """Tag every current member of a segment; return how many links were added."""
    ids = SegmentMember.objects.filter(segment=segment).values_list("customer_id", flat=True)
    return tag_customer_ids(tag, ids, by=by)


def read_id_values(data: str) -> list[str]:
    """Return the values of the first column of a CSV text, skipping a header and blanks."""
    values: list[str] = []
    for i, row in enumerate(csv.reader(io.StringIO(data))):
        if not row or not row[0].strip():
            continue
        value = row[0].strip()
        if (
            i == 0
            and not value.isdigit()
            and value.lower()
            in {
                "id",
                "customer_id",
                "external_id",
                "external_ref",
            }
        ):
            continue
        values.append(value)
    return values


def resolve_customer_ids(
    values: list[str], system: str | None = None, *, by: Actor | None = None
) -> tuple[list[int], list[str]]:
    """Map customer ids (system None) or external ids to customer ids; return (ids, unknown).

    With a user, customers outside their scope count as unknown, like ids that do not exist.
    """
    found: dict[str, int] = {}
    customers = Customer.objects.all()
    if by is not None:
        customers = scope_customers(by, customers)
    for start in range(0, len(values), BATCH):
        chunk = values[start : start + BATCH]
        pairs: Iterable[tuple[Any, int]]
        if system is None:
            numeric = [int(v) for v in chunk if v.isdigit() and len(v) < 19]
            pairs = customers.filter(pk__in=numeric).values_list("pk", "pk")
        elif system == "":
            pairs = customers.filter(external_ref__in=chunk).values_list("external_ref", "pk")
        else:
            pairs = (
                Identity.objects.with_values(chunk)
                .filter(kind=Identity.Kind.EXTERNAL, system=system, customer__in=customers)
                .values_list("value", "customer_id")
            )
        found.update({str(k): pk for k, pk in pairs})
    ids = sorted({found[v] for v in values if v in found})
    return ids, [v for v in values if v not in found]


# --- personas -------------------------------------------------------------------------


@transaction.atomic
def store_personas(result: Any, customer_ids: list[int], *, by: Actor) -> list[Persona]:
    """Store the personas of one clustering run (see personas.find_personas)."""
    now = timezone.now()
    personas = []
    for p in result.personas:
        members = [customer_ids[i] for i in p.member_rows]
        personas.append(
            Persona.objects.create(
                run_at=now,
                label=p.label,
                k=result.k,
                silhouette=result.silhouette,
                size=len(members),
                description_en=p.description_en[:300],
                description_zh=p.description_zh[:300],
                centre=p.centre,
                customer_ids=members,
            )
        )
    return personas


@transaction.atomic
def save_persona_as_segment(persona: Persona, name: str | None = None, *, by: Actor) -> Segment:
    """Save a persona's customers as a static segment (once)."""
    if persona.segment is not None:
        return persona.segment
    name = (
        name
        or f"{_('Persona')} {persona.run_at:%Y-%m-%d} #{persona.label}: {persona.description_en}"
    )
    segment = create_segment(
        name[:200],
        kind=Segment.Kind.STATIC,
        description=f"{persona.description_en}\n{persona.description_zh}",
        by=by,
        customer_ids=persona.customer_ids,
    )
    persona.segment = segment
    persona.save(update_fields=["segment"])
    return segment
