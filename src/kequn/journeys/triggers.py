"""The built-in triggers and the runner's polls that fire them.

Events, lifecycle-stage changes, segment entries and exits and first purchases are read from
their tables past a cursor (a few seconds after they are stored, under ``kequn worker``);
birthdays and first-purchase anniversaries once a day from a per-customer day table.
Every enrolment carries an entry key naming what caused it, so a row read twice enrols once.
"""

from __future__ import annotations

import hmac
from collections import defaultdict
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max, Min
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from kequn.commerce.models import Order
from kequn.customers.models import Customer
from kequn.db.writes import insert_columns
from kequn.events.models import Event
from kequn.journeys.models import CustomerDate, Journey, RunnerCursor
from kequn.journeys.registry import register_trigger
from kequn.journeys.services import enroll_customers, enroll_entries
from kequn.scoring.models import LifecycleStage, StageChange
from kequn.security.actors import Actor
from kequn.security.keys import derive_key
from kequn.segments.models import MembershipChange, Segment

EVENT = "event"
SEGMENT_ENTERED = "segment_entered"
SEGMENT_LEFT = "segment_left"
STAGE_CHANGED = "stage_changed"
FIRST_PURCHASE = "first_purchase"
BIRTHDAY = "birthday"
ANNIVERSARY = "first_purchase_anniversary"

# Events this old (by their own time) start nothing: an import of last year's history is not
# a visit today.
EVENT_MAX_AGE = timedelta(hours=24)
# Rows re-read behind the cursor on every pass: on PostgreSQL an id is taken before its
# transaction commits, so a slow writer may commit a row below ids already read.
LOOKBACK_IDS = 2000
POLL_BATCH = 5000


# ---------------------------------------------------------------- settings checks


def _check_event(config: Mapping[str, Any]) -> list[str]:
    return [] if str(config.get("event") or "").strip() else ['needs "event": an event name']


def _check_segment(config: Mapping[str, Any]) -> list[str]:
    segment = config.get("segment")
    if isinstance(segment, bool) or not isinstance(segment, int):
        return ['needs "segment": a segment id']
    if not Segment.objects.filter(pk=segment).exists():
        return [f"segment {segment} does not exist"]
    return []


def _check_stage(config: Mapping[str, Any]) -> list[str]:
    stages = set(LifecycleStage.values)
    problems = []
    for key in ("to", "from"):
        value = config.get(key)
        if value and value not in stages:
            problems.append(
                f"{key}: unknown stage {value!r}; use one of {', '.join(sorted(stages))}"
            )
    if not config.get("to"):
        problems.append('needs "to": the stage entered (e.g. at_risk)')
    return problems


def _check_days_before(config: Mapping[str, Any]) -> list[str]:
    days = config.get("days_before", 0)
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= 60:
        return ["days_before must be a whole number from 0 to 60"]
    return []


def register_builtin_triggers() -> None:
    """Register the triggers journeys bring themselves."""
    register_trigger(
        EVENT,
        _("An event happens"),
        config_fields={"event": _("event name, e.g. Product Viewed")},
        check_config=_check_event,
    )
    register_trigger(
        SEGMENT_ENTERED,
        _("Enters a segment"),
        config_fields={"segment": _("segment id")},
        check_config=_check_segment,
    )
    register_trigger(
        SEGMENT_LEFT,
        _("Leaves a segment"),
        config_fields={"segment": _("segment id")},
        check_config=_check_segment,
    )
    register_trigger(
        STAGE_CHANGED,
        _("Lifecycle stage changes"),
        config_fields={"to": _("new stage"), "from": _("previous stage (empty: any)")},
        check_config=_check_stage,
    )
    register_trigger(FIRST_PURCHASE, _("First purchase"))
    register_trigger(
        BIRTHDAY,
        _("Birthday"),
        config_fields={"days_before": _("days ahead")},
        check_config=_check_days_before,
    )
    register_trigger(
        ANNIVERSARY,
        _("First-purchase anniversary"),
        config_fields={"days_before": _("days ahead")},
        check_config=_check_days_before,
    )


# ---------------------------------------------------------------- cursors


def _cursor(name: str, start: int) -> RunnerCursor:
    cursor, _created = RunnerCursor.objects.get_or_create(name=name, defaults={"position": start})
    return cursor


def _top(model: Any) -> int:
    return int(model.objects.aggregate(top=Max("pk"))["top"] or 0)


def _active(kind: str) -> list[Journey]:
    return list(Journey.objects.filter(trigger_kind=kind, status=Journey.Status.ACTIVE))


# ---------------------------------------------------------------- events


def poll_events(*, now: datetime, by: Actor) -> int:
    """Enrol the customers of new events into the journeys those events start; return how many."""
    cursor = _cursor("events", _top(Event))
    journeys = _active(EVENT)
    if not journeys:
        top = _top(Event)
        if top != cursor.position:
            RunnerCursor.objects.filter(pk=cursor.pk).update(position=top)
        return 0
    by_name: dict[str, list[Journey]] = defaultdict(list)
    for journey in journeys:
        by_name[str(journey.trigger_config.get("event"))].append(journey)
    low = max(cursor.position - LOOKBACK_IDS, 0)
    rows = list(
        Event.objects.filter(
            pk__gt=low,
            pk__lte=cursor.position + POLL_BATCH,
            name__in=list(by_name),
            customer__isnull=False,
            occurred_at__gte=now - EVENT_MAX_AGE,
        )
        .order_by("pk")
        .values_list("pk", "name", "customer_id", "received_at", "properties")
    )
    top = _top(Event)
    entered = 0
    for journey in journeys:
        wanted = str(journey.trigger_config.get("event"))
        causes: dict[int, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
        for pk, name, customer_id, received_at, properties in rows:
            if name != wanted or (journey.activated_at and received_at < journey.activated_at):
                continue  # another event, or stored before the journey started
            causes[customer_id].append(
                (f"event:{pk}", {"event": name, "event_id": pk, **_plain(properties)})
            )
        if causes:
            entered += enroll_entries(journey, causes, now=now, by=by)
    position = min(top, cursor.position + POLL_BATCH)
    RunnerCursor.objects.filter(pk=cursor.pk).update(position=max(position, cursor.position))
    return entered


def _plain(properties: Any) -> dict[str, Any]:
    """Return the event properties a journey may keep: scalar values, no masked personal data."""
    if not isinstance(properties, dict):
        return {}
    return {
        str(k)[:50]: v
        for k, v in list(properties.items())[:20]
        if isinstance(v, str | int | float | bool)
        and not (isinstance(v, str) and v.startswith("["))
    }


# ---------------------------------------------------------------- stages, segments, orders


def poll_stage_changes(*, now: datetime, by: Actor) -> int:
    """Enrol customers whose lifecycle stage changed as a journey asks (→ at risk: win-back)."""
    cursor = _cursor("stage_changes", _top(StageChange))
    journeys = _active(STAGE_CHANGED)
    rows = list(
        StageChange.objects.filter(pk__gt=cursor.position)
        .order_by("pk")
        .values_list("pk", "customer_id", "from_stage", "to_stage")[:POLL_BATCH]
    )
    entered = 0
    for journey in journeys:
        wanted_to = journey.trigger_config.get("to")
        wanted_from = journey.trigger_config.get("from")
        matches: dict[str, list[int]] = defaultdict(list)
        for pk, customer_id, from_stage, to_stage in rows:
            if to_stage == wanted_to and (not wanted_from or from_stage == wanted_from):
                matches[f"stage:{pk}"].append(customer_id)
        for key, ids in matches.items():
            entered += enroll_customers(
                journey, ids, entry_key=key, payload={"to": wanted_to}, now=now, by=by
            )
    if rows:
        RunnerCursor.objects.filter(pk=cursor.pk).update(position=rows[-1][0])
    return entered


def poll_segment_changes(*, now: datetime, by: Actor) -> int:
    """Enrol customers who entered or left a segment a journey watches."""
    cursor = _cursor("segment_changes", _top(MembershipChange))
    journeys = _active(SEGMENT_ENTERED) + _active(SEGMENT_LEFT)
    rows = list(
        MembershipChange.objects.filter(pk__gt=cursor.position)
        .order_by("pk")
        .values_list("pk", "segment_id", "customer_id", "change")[:POLL_BATCH]
    )
    entered = 0
    for journey in journeys:
        change = (
            MembershipChange.Change.ENTERED
            if journey.trigger_kind == SEGMENT_ENTERED
            else MembershipChange.Change.LEFT
        )
        segment = journey.trigger_config.get("segment")
        for pk, segment_id, customer_id, kind in rows:
            if segment_id == segment and kind == change:
                entered += enroll_customers(
                    journey,
                    [customer_id],
                    entry_key=f"segment:{pk}",
                    payload={"segment": segment},
                    now=now,
                    by=by,
                )
    if rows:
        RunnerCursor.objects.filter(pk=cursor.pk).update(position=rows[-1][0])
    return entered


def poll_orders(*, now: datetime, by: Actor) -> int:
    """Keep first-purchase days current and enrol first-time buyers; return how many entered."""
    cursor = _cursor("orders", _top(Order))
    rows = list(
        Order.objects.filter(
            pk__gt=cursor.position,
            customer__isnull=False,
            status__in=Order.PURCHASE_STATUSES,
        )
        .order_by("pk")
        .values_list("pk", "customer_id")[:POLL_BATCH]
    )
    if not rows:
        return 0
    customer_ids = sorted({c for _pk, c in rows})
    firsts = dict(
        Order.objects.filter(customer_id__in=customer_ids, status__in=Order.PURCHASE_STATUSES)
        .values_list("customer_id")
        .annotate(first=Min("ordered_at"))
        .values_list("customer_id", "first")
    )
    _store_first_purchases(firsts, now)
    # A first purchase made lately (not history imported today) starts the journeys.
    first_timers = sorted(c for c, first in firsts.items() if first >= now - timedelta(days=2))
    entered = 0
    for journey in _active(FIRST_PURCHASE):
        entered += enroll_customers(
            journey, first_timers, entry_key="first_purchase", payload={}, now=now, by=by
        )
    RunnerCursor.objects.filter(pk=cursor.pk).update(position=rows[-1][0])
    return entered


def build_first_purchases(*, now: datetime, batch: int = 20_000) -> int:
    """Store every customer's first purchase day from the order history (once, set-based).

    The order poll keeps the days current from then on; this fills them in for the orders
    stored before journeys ran. Return how many customers have one.
    """
    firsts = (
        Order.objects.filter(customer__isnull=False, status__in=Order.PURCHASE_STATUSES)
        .values_list("customer_id")
        .annotate(first=Min("ordered_at"))
        .order_by("customer_id")
        .values_list("customer_id", "first")
    )
    chunk: dict[int, datetime] = {}
    total = 0
    for customer_id, first in firsts.iterator(chunk_size=batch):
        chunk[customer_id] = first
        if len(chunk) >= batch:
            _store_first_purchases(chunk, now)
            total += len(chunk)
            chunk = {}
    _store_first_purchases(chunk, now)
    return total + len(chunk)


def _store_first_purchases(firsts: Mapping[int, datetime], now: datetime) -> None:
    with transaction.atomic():
        existing = {
            d.customer_id: d
            for d in CustomerDate.objects.filter(
                kind=CustomerDate.Kind.FIRST_PURCHASE, customer_id__in=list(firsts)
            )
        }
        new, changed = [], []
        for customer_id, first in firsts.items():
            local = timezone.localtime(first).date()
            key = f"{local:%m-%d}"
            row = existing.get(customer_id)
            if row is None:
                new.append(
                    CustomerDate(
                        customer_id=customer_id,
                        kind=CustomerDate.Kind.FIRST_PURCHASE,
                        day_key=key,
                        year=local.year,
                        synced_at=now,
                    )
                )
            elif (row.day_key, row.year) != (key, local.year):
                row.day_key, row.year, row.synced_at = key, local.year, now
                changed.append(row)
        try:
            with transaction.atomic():  # plain column inserts: the ORM's objects cost more
                insert_columns(
                    CustomerDate,
                    {
                        "customer": [d.customer_id for d in new],
                        "day_key": [d.day_key for d in new],
                        "year": [d.year for d in new],
                    },
                    fixed={"kind": CustomerDate.Kind.FIRST_PURCHASE, "synced_at": now},
                )
        except IntegrityError:  # another worker stored some of them meanwhile
            CustomerDate.objects.bulk_create(new, ignore_conflicts=True)
        CustomerDate.objects.bulk_update(changed, ["day_key", "year", "synced_at"])


# ---------------------------------------------------------------- dates


def birthday_key(month: int, day: int) -> str:
    """Return the keyed hash stored for a birthday's month and day (never the day itself)."""
    key = derive_key("journeys-birthday-day")
    return hmac.digest(key, f"{month:02d}-{day:02d}".encode(), "sha256").hex()[:32]


def sync_birthdays(*, since: datetime | None, now: datetime, batch: int = 5000) -> int:
    """Bring the birthday days up to date for customers changed since `since` (all if None).

    Reads (and decrypts) only those customers; removes the day of one whose birthday was
    removed. Return how many customers were looked at.
    """
    customers = Customer.objects.all()
    if since is not None:
        customers = customers.filter(updated_at__gte=since)
    else:
        customers = customers.filter(birth_year__isnull=False)
    ids = list(customers.order_by("pk").values_list("pk", flat=True))
    digest_key = derive_key("journeys-birthday-day")
    cache: dict[tuple[int, int], str] = {}
    for start in range(0, len(ids), batch):
        chunk = ids[start : start + batch]
        found, keys = [], []
        for customer_id, birthday in Customer.objects.filter(pk__in=chunk).values_list(
            "pk", "birthday"
        ):
            if birthday is None:
                continue
            md = (birthday.month, birthday.day)
            if md not in cache:
                cache[md] = hmac.digest(
                    digest_key, f"{md[0]:02d}-{md[1]:02d}".encode(), "sha256"
                ).hex()[:32]
            found.append(customer_id)
            keys.append(cache[md])
        with transaction.atomic():
            # Replaced wholesale (a removed birthday leaves no row); plain column inserts:
            # the ORM's per-object preparation cost more than the decryption.
            CustomerDate.objects.filter(
                kind=CustomerDate.Kind.BIRTHDAY, customer_id__in=chunk
            ).delete()
            insert_columns(
                CustomerDate,
                {"customer": found, "day_key": keys},
                fixed={"kind": CustomerDate.Kind.BIRTHDAY, "synced_at": now},
            )
    return len(ids)


def _days_matching(target: date) -> list[tuple[int, int]]:
    """Return the (month, day) pairs celebrated on a date: 29 February on the 28th in other years."""
    days = [(target.month, target.day)]
    if (target.month, target.day) == (2, 28):
        try:
            date(target.year, 2, 29)
        except ValueError:
            days.append((2, 29))
    return days


def find_birthdays(target: date) -> list[int]:
    """Return the customers whose birthday falls on a date."""
    keys = [birthday_key(m, d) for m, d in _days_matching(target)]
    return list(
        CustomerDate.objects.filter(kind=CustomerDate.Kind.BIRTHDAY, day_key__in=keys)
        .order_by("customer_id")
        .values_list("customer_id", flat=True)
    )


def find_anniversaries(target: date) -> list[int]:
    """Return the customers whose first purchase was on this day of an earlier year."""
    keys = [f"{m:02d}-{d:02d}" for m, d in _days_matching(target)]
    return list(
        CustomerDate.objects.filter(
            kind=CustomerDate.Kind.FIRST_PURCHASE, day_key__in=keys, year__lt=target.year
        )
        .order_by("customer_id")
        .values_list("customer_id", flat=True)
    )


def run_date_triggers(*, today: date, now: datetime, by: Actor) -> int:
    """Enrol today's birthdays and anniversaries (each journey's days ahead); once per year each."""
    entered = 0
    for journey in _active(BIRTHDAY) + _active(ANNIVERSARY):
        target = today + timedelta(days=int(journey.trigger_config.get("days_before") or 0))
        if journey.trigger_kind == BIRTHDAY:
            ids = find_birthdays(target)
        else:
            ids = find_anniversaries(target)
        entered += enroll_customers(
            journey,
            ids,
            entry_key=f"{journey.trigger_kind}:{target.isoformat()}",
            payload={"date": target.isoformat()},
            now=now,
            by=by,
        )
    return entered


def run_daily(*, now: datetime, by: Actor, force: bool = False) -> int | None:
    """Once per local day: sync birthdays changed since the last run, then fire the date triggers.

    Return how many entered, or None when today's run was done already.
    """
    today = timezone.localtime(now).date()
    cursor = _cursor("dates", 0)
    done = cursor.moment and timezone.localtime(cursor.moment).date() >= today
    if done and not force:
        return None
    # Claim today's run first, so two workers do not both run it.
    won = RunnerCursor.objects.filter(pk=cursor.pk, moment=cursor.moment).update(moment=now)
    if not won and not force:
        return None
    if not RunnerCursor.objects.filter(name="first_purchases_built").exists():
        build_first_purchases(now=now)
        RunnerCursor.objects.get_or_create(name="first_purchases_built", defaults={"moment": now})
    # Birthdays changed since the last sync (by the clock: updated_at is the clock's time),
    # with an hour's overlap for writes that committed late.
    synced = _cursor("birthdays", 0)
    started = timezone.now()
    since = synced.moment - timedelta(hours=1) if synced.moment else None
    sync_birthdays(since=since, now=started)
    RunnerCursor.objects.filter(pk=synced.pk).update(moment=started)
    return run_date_triggers(today=today, now=now, by=by)
