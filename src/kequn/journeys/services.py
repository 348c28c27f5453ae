"""Every change to journeys goes through here: definitions, enrolments and each step taken.

Other apps start journeys with :func:`fire_trigger` and add trigger and step kinds through
``kequn.journeys.registry``. The runner (:func:`run_due`, called by the worker's journeys task)
moves due enrollments on, each in its own transaction: a step's effect (history, tag, queued
message) commits together with the enrollment's new place, so a worker killed at any moment
redoes at most the step it was in, and messages carry a dedupe key of enrollment and step,
so nothing is sent twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from kequn.commerce.models import Order
from kequn.customers.models import Customer
from kequn.events.models import Event
from kequn.journeys import registry
from kequn.journeys.models import Enrollment, EnrollmentEvent, Journey
from kequn.journeys.registry import StepContext, StepResult
from kequn.security.actors import Actor, get_user_or_none
from kequn.security.audit import services as audit
from kequn.segments.services import check_rule, select_rule_members

logger = logging.getLogger(__name__)

# A step chain longer than this in one go is a loop of steps that never wait.
MAX_STEPS_PER_RUN = 50
DEFAULT_BATCH = 500
STEP_ID_MAX = 64


class JourneyError(ValidationError):
    """A journey definition or action that cannot be accepted; the message says why and how."""


# ---------------------------------------------------------------- definitions


def _iter_targets(step: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Return every (label, step id) a step may go to: its branches, then its "next"."""
    found: list[tuple[str, str]] = []
    kind = registry.get_step(str(step.get("kind", "")))
    if kind is not None and kind.get_targets is not None:
        found.extend(kind.get_targets(step.get("config") or {}))
    if step.get("next"):
        found.append(("", str(step["next"])))
    return found


def check_definition(
    *, trigger_kind: str, trigger_config: Any, steps: Any, goal: Any = None
) -> list[str]:
    """Return one line per problem of a journey's trigger, steps and goal (empty: fine)."""
    problems: list[str] = []
    trigger = registry.get_trigger(trigger_kind)
    if trigger is None:
        known = ", ".join(t.kind for t in registry.list_triggers())
        problems.append(f"trigger: unknown kind {trigger_kind!r}; use one of {known}")
    elif not isinstance(trigger_config, dict):
        problems.append("trigger settings: must be an object")
    elif trigger.check_config is not None:
        problems.extend(f"trigger: {p}" for p in trigger.check_config(trigger_config))
    if not isinstance(steps, list):
        return [*problems, "steps: must be a list of steps"]
    ids: list[str] = []
    for index, step in enumerate(steps):
        where = f"steps[{index}]"
        if not isinstance(step, dict):
            problems.append(f"{where}: must be an object with id, kind, config and next")
            continue
        step_id = str(step.get("id") or "")
        if not step_id or len(step_id) > STEP_ID_MAX:
            problems.append(f"{where}: needs an id of 1 to {STEP_ID_MAX} characters")
        elif step_id in ids:
            problems.append(f"{where}: id {step_id!r} is used twice")
        ids.append(step_id)
        kind = registry.get_step(str(step.get("kind") or ""))
        if kind is None:
            known = ", ".join(s.kind for s in registry.list_steps())
            problems.append(f"{where}: unknown kind {step.get('kind')!r}; use one of {known}")
            continue
        config = step.get("config") or {}
        if not isinstance(config, dict):
            problems.append(f"{where}: config must be an object")
        elif kind.check_config is not None:
            problems.extend(f"{where} ({step_id}): {p}" for p in kind.check_config(config))
    known_ids = set(ids)
    graph: dict[str, list[str]] = {}
    for index, step in enumerate(steps):
        if not isinstance(step, dict):
            continue
        targets = [target for _label, target in _iter_targets(step)]
        graph[str(step.get("id") or "")] = targets
        for target in targets:
            if target not in known_ids:
                problems.append(f"steps[{index}]: goes to {target!r}, which is no step's id")
    if not problems and _has_cycle(graph):
        problems.append("steps: they go round in a circle; a journey must come to an end")
    if goal is not None:
        problems.extend(f"goal: {p}" for p in check_goal(goal))
    return problems


def _has_cycle(graph: dict[str, list[str]]) -> bool:
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(node: str) -> bool:
        state[node] = 1
        for target in graph.get(node, []):
            if state.get(target) == 1 or (target not in state and visit(target)):
                return True
        state[node] = 2
        return False

    return any(node not in state and visit(node) for node in graph)


def check_goal(goal: Any) -> list[str]:
    """Return the problems of a goal rule: purchase, an event by name, or a segment-style rule."""
    if not isinstance(goal, dict):
        return ['must be an object such as {"kind": "purchase"}']
    kind = goal.get("kind")
    if kind == "purchase":
        return []
    if kind == "event":
        return [] if str(goal.get("event") or "").strip() else ["an event goal needs an event name"]
    if kind == "rule":
        return _check_rule(goal.get("rule"))
    return [f"unknown kind {kind!r}; use purchase, event or rule"]


def _check_rule(rule: Any) -> list[str]:
    try:
        check_rule(rule)
    except ValidationError as exc:
        return [" ".join(exc.messages)]
    return []


def _raise_problems(problems: list[str]) -> None:
    if problems:
        raise JourneyError("; ".join(problems))


JOURNEY_FIELDS = (
    "name",
    "description",
    "trigger_kind",
    "trigger_config",
    "reentry",
    "reentry_days",
    "goal",
    "steps",
)


def create_journey(
    *,
    name: str,
    trigger_kind: str,
    steps: list[dict[str, Any]],
    trigger_config: dict[str, Any] | None = None,
    reentry: str = Journey.Reentry.ONCE,
    reentry_days: int = 0,
    goal: dict[str, Any] | None = None,
    description: str = "",
    activate: bool = False,
    by: Actor,
) -> Journey:
    """Create a journey (a draft unless activate); refuse a definition with problems."""
    trigger_config = trigger_config or {}
    _raise_problems(
        check_definition(
            trigger_kind=trigger_kind, trigger_config=trigger_config, steps=steps, goal=goal
        )
    )
    journey = Journey(
        name=(name or "").strip(),
        description=description,
        trigger_kind=trigger_kind,
        trigger_config=trigger_config,
        reentry=reentry,
        reentry_days=reentry_days,
        goal=goal,
        steps=steps,
    )
    journey.created_by_id = getattr(get_user_or_none(by), "pk", None)
    if activate:
        journey.status = Journey.Status.ACTIVE
        journey.activated_at = timezone.now()
    journey.full_clean(exclude=["created_at", "updated_at", "created_by"])
    with transaction.atomic():
        journey.save()
        audit.record_event(audit.CREATE, actor=by, target=journey, detail={"trigger": trigger_kind})
        if activate:
            start_runner()
    return journey


def update_journey(journey: Journey, *, by: Actor, **changes: Any) -> Journey:
    """Change a journey's definition; open enrollments at a removed step leave it."""
    unknown = set(changes) - set(JOURNEY_FIELDS)
    if unknown:
        raise JourneyError(f"unknown journey field(s): {', '.join(sorted(unknown))}")
    for name, value in changes.items():
        setattr(journey, name, value)
    _raise_problems(
        check_definition(
            trigger_kind=journey.trigger_kind,
            trigger_config=journey.trigger_config,
            steps=journey.steps,
            goal=journey.goal,
        )
    )
    journey.full_clean(exclude=["created_at", "updated_at", "created_by"])
    with transaction.atomic():
        journey.save()
        audit.record_event(
            audit.CHANGE, actor=by, target=journey, detail={"fields": sorted(changes)}
        )
    return journey


def save_journey(journey: Journey, *, changed: Iterable[str], by: Actor) -> Journey:
    """Save a journey a validated back-office form has set; `changed` names the fields set."""
    _raise_problems(
        check_definition(
            trigger_kind=journey.trigger_kind,
            trigger_config=journey.trigger_config,
            steps=journey.steps,
            goal=journey.goal,
        )
    )
    created = journey.pk is None
    if created and journey.created_by_id is None:
        journey.created_by_id = getattr(get_user_or_none(by), "pk", None)
    if journey.status == Journey.Status.ACTIVE and journey.activated_at is None:
        journey.activated_at = timezone.now()
    with transaction.atomic():
        journey.save()
        audit.record_event(
            audit.CREATE if created else audit.CHANGE,
            actor=by,
            target=journey,
            detail={"fields": sorted(changed)},
        )
        if journey.status == Journey.Status.ACTIVE:
            start_runner()
    return journey


# The worker's journeys task, named by path: it imports the runner, which imports this module.
RUNNER_TASK = "kequn.journeys.tasks.run_journeys_task"


def start_runner() -> None:
    """Ask the worker for a runner pass once this transaction commits (it starts the quick chain)."""
    transaction.on_commit(lambda: import_string(RUNNER_TASK).enqueue())


def _set_status(journey: Journey, status: str, *, by: Actor) -> Journey:
    with transaction.atomic():
        journey = Journey.objects.select_for_update().get(pk=journey.pk)
        if journey.status == status:
            return journey
        before = journey.status
        journey.status = status
        fields = ["status", "updated_at"]
        if status == Journey.Status.ACTIVE and journey.activated_at is None:
            journey.activated_at = timezone.now()
            fields.append("activated_at")
        journey.save(update_fields=fields)
        audit.record_event(
            audit.CHANGE,
            actor=by,
            target=journey,
            detail={"fields": ["status"], "from": before, "to": status},
        )
        if status == Journey.Status.ACTIVE:
            start_runner()
    return journey


def activate_journey(journey: Journey, *, by: Actor) -> Journey:
    """Start a journey: its trigger enrols customers from now on."""
    _raise_problems(
        check_definition(
            trigger_kind=journey.trigger_kind,
            trigger_config=journey.trigger_config,
            steps=journey.steps,
            goal=journey.goal,
        )
    )
    if not journey.steps:
        raise JourneyError(_("a journey needs at least one step before it can start"))
    return _set_status(journey, Journey.Status.ACTIVE, by=by)


def pause_journey(journey: Journey, *, by: Actor) -> Journey:
    """Pause a journey: nobody enters and nobody moves on until it is resumed."""
    if journey.status == Journey.Status.DRAFT:
        raise JourneyError(_("journey %(id)s is a draft: activate it first") % {"id": journey.pk})
    return _set_status(journey, Journey.Status.PAUSED, by=by)


def resume_journey(journey: Journey, *, by: Actor) -> Journey:
    """Resume a paused journey: waits that ended meanwhile move on at the runner's next pass."""
    if journey.status == Journey.Status.DRAFT:
        raise JourneyError(_("journey %(id)s is a draft: activate it first") % {"id": journey.pk})
    return activate_journey(journey, by=by)


# ---------------------------------------------------------------- enrolment


def _matches_config(config: Mapping[str, Any], payload: Mapping[str, Any]) -> bool:
    """Return whether a trigger's payload fits a journey's trigger settings.

    Every setting the payload also names must be equal (as text); empty settings match all.
    """
    for key, wanted in config.items():
        if wanted in (None, "", []) or key not in payload:
            continue
        if isinstance(wanted, list):
            if str(payload[key]) not in {str(w) for w in wanted}:
                return False
        elif str(payload[key]) != str(wanted):
            return False
    return True


def _eligible(journey: Journey, customer_ids: list[int], now: datetime) -> list[int]:
    """Return the customers the journey's re-entry rule lets in now (and who may be processed)."""
    ids = set(
        Customer.objects.filter(
            pk__in=customer_ids, processing_restricted=False, merged_into__isnull=True
        ).values_list("pk", flat=True)
    )
    if not ids:
        return []
    past = Enrollment.objects.filter(journey=journey, customer_id__in=ids)
    blocked = set(
        past.filter(state__in=Enrollment.OPEN_STATES).values_list("customer_id", flat=True)
    )
    if journey.reentry == Journey.Reentry.ONCE:
        blocked |= set(past.values_list("customer_id", flat=True))
    elif journey.reentry == Journey.Reentry.AFTER_DAYS:
        since = now - timedelta(days=journey.reentry_days)
        blocked |= set(past.filter(left_at__gt=since).values_list("customer_id", flat=True))
    return sorted(ids - blocked)


def enroll_customers(
    journey: Journey,
    customer_ids: Iterable[int],
    *,
    entry_key: str = "",
    payload: Mapping[str, Any] | None = None,
    now: datetime | None = None,
    by: Actor,
) -> int:
    """Enrol customers into an active journey as its re-entry rule allows; return how many entered.

    Idempotent on entry_key: the same trigger seen twice (a re-read event) enrols once.
    """
    entry = (entry_key[:100], dict(payload or {}))
    return enroll_entries(journey, {int(c): [entry] for c in customer_ids}, now=now, by=by)


def enroll_entries(
    journey: Journey,
    entries: Mapping[int, list[tuple[str, dict[str, Any]]]],
    *,
    now: datetime | None = None,
    by: Actor,
) -> int:
    """Enrol customers, each by the first of their (entry key, payload) not seen before.

    The batch form of enroll_customers for many causes at once (a pass's events): a handful
    of queries per thousand customers rather than per cause. Return how many entered.
    """
    if journey.status != Journey.Status.ACTIVE or not journey.steps:
        return 0
    now = now or timezone.now()
    wanted = sorted(entries)
    entered = 0
    for start in range(0, len(wanted), 1000):
        chunk = wanted[start : start + 1000]
        with transaction.atomic():
            ids = _eligible(journey, chunk, now)
            keys = {k for c in ids for k, _payload in entries[c] if k}
            seen = set(
                Enrollment.objects.filter(
                    journey=journey, customer_id__in=ids, entry_key__in=keys
                ).values_list("customer_id", "entry_key")
            ) if keys else set()  # fmt: skip
            chosen: dict[int, tuple[str, dict[str, Any]]] = {}
            for c in ids:
                for key, payload in entries[c]:
                    if not key or (c, key) not in seen:
                        chosen[c] = (key, payload)
                        break
            if not chosen:
                continue
            # Unique constraints settle a race with another worker: its row wins, ours is dropped.
            Enrollment.objects.bulk_create(
                [
                    Enrollment(
                        journey=journey,
                        customer_id=c,
                        current_step=journey.first_step_id or "",
                        wake_at=now,
                        entered_at=now,
                        entry_key=key,
                        payload=payload,
                    )
                    for c, (key, payload) in chosen.items()
                ],
                ignore_conflicts=True,
            )
            created = list(
                Enrollment.objects.filter(
                    journey=journey,
                    customer_id__in=list(chosen),
                    entered_at=now,
                    state=Enrollment.State.ACTIVE,
                ).values_list("pk", "entry_key")
            )
            EnrollmentEvent.objects.bulk_create(
                [
                    EnrollmentEvent(
                        enrollment_id=pk,
                        journey=journey,
                        kind=EnrollmentEvent.Kind.ENTERED,
                        detail={"trigger": journey.trigger_kind, "key": key},
                        at=now,
                    )
                    for pk, key in created
                ]
            )
            entered += len(created)
    return entered


def fire_trigger(
    *,
    kind: str,
    customer_ids: Iterable[int],
    payload: dict[str, Any] | None = None,
    by: Actor,
    entry_key: str = "",
    now: datetime | None = None,
) -> int:
    """Enrol these customers into every active journey started by trigger ``kind``; return how many.

    Call it when the thing happened (after the commit that made it true, e.g. from
    ``transaction.on_commit``). ``payload`` is kept on each enrollment and matched against
    each journey's trigger settings: every setting the payload also names must be equal
    (``{"tier": "gold"}`` enters journeys set to tier gold or to no tier). ``entry_key`` (or
    ``payload["key"]``) makes a repeated call harmless: one enrolment per customer and key.
    Each journey's re-entry rule and restricted customers are respected. Customers move on at
    the runner's next pass (a few seconds under ``kequn worker``).
    """
    payload = dict(payload or {})
    entry_key = entry_key or str(payload.get("key") or "")
    ids = list(customer_ids)
    total = 0
    for journey in Journey.objects.filter(trigger_kind=kind, status=Journey.Status.ACTIVE):
        if _matches_config(journey.trigger_config or {}, payload):
            total += enroll_customers(
                journey, ids, entry_key=entry_key, payload=payload, now=now, by=by
            )
    return total


def exit_enrollment(enrollment: Enrollment, *, reason: str, by: Actor) -> Enrollment:
    """Take a customer out of a journey by hand (or by a job), with the reason in the history."""
    with transaction.atomic():
        enrollment = Enrollment.objects.select_for_update().get(pk=enrollment.pk)
        if enrollment.is_open:
            _leave(enrollment, Enrollment.State.EXITED, reason, timezone.now())
            enrollment.save()
            audit.record_event(
                audit.CHANGE,
                actor=by,
                target=enrollment,
                detail={"fields": ["state"], "reason": reason},
            )
    return enrollment


# ---------------------------------------------------------------- the runner


def _record(
    enrollment: Enrollment,
    kind: str,
    step_id: str = "",
    *,
    now: datetime,
    branch: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    EnrollmentEvent.objects.create(
        enrollment=enrollment,
        journey_id=enrollment.journey_id,
        kind=kind,
        step_id=step_id,
        branch=branch[:64],
        detail=detail or {},
        at=now,
    )


def _leave(enrollment: Enrollment, state: str, reason: str, now: datetime) -> None:
    enrollment.state = state
    enrollment.exit_reason = reason[:200]
    enrollment.left_at = now
    enrollment.wake_at = None
    kind = (
        EnrollmentEvent.Kind.COMPLETED
        if state == Enrollment.State.COMPLETED
        else EnrollmentEvent.Kind.EXITED
    )
    _record(enrollment, kind, enrollment.current_step, now=now, detail={"reason": reason[:200]})


def is_goal_reached(goal: Mapping[str, Any] | None, customer_id: int, since: datetime) -> bool:
    """Return whether the customer reached a journey's goal since they entered."""
    if not goal:
        return False
    kind = goal.get("kind")
    if kind == "purchase":
        return Order.objects.filter(
            customer_id=customer_id,
            ordered_at__gte=since,
            status__in=Order.PURCHASE_STATUSES,
        ).exists()
    if kind == "event":
        return Event.objects.filter(
            customer_id=customer_id, name=goal.get("event"), occurred_at__gte=since
        ).exists()
    if kind == "rule":
        return select_rule_members(goal["rule"]).filter(pk=customer_id).exists()
    return False


def _lock_due(enrollment_id: int, now: datetime) -> Enrollment | None:
    rows = Enrollment.objects.filter(
        pk=enrollment_id,
        state__in=Enrollment.OPEN_STATES,
        wake_at__lte=now,
        journey__status=Journey.Status.ACTIVE,
    ).select_related("journey")
    if connection.features.has_select_for_update_skip_locked:
        # Another worker holding it is moving it on already: skip, don't wait.
        rows = rows.select_for_update(skip_locked=True, of=("self",))
    return rows.first()


def advance_enrollment(enrollment_id: int, *, now: datetime | None = None, by: Actor) -> str:
    """Move one due enrollment on as far as it goes now; return its state afterwards ("" if not due)."""
    now = now or timezone.now()
    with transaction.atomic():
        enrollment = _lock_due(enrollment_id, now)
        if enrollment is None:
            return ""
        journey = enrollment.journey
        if is_goal_reached(journey.goal, enrollment.customer_id, enrollment.entered_at):
            _leave(enrollment, Enrollment.State.EXITED, "goal reached", now)
            enrollment.save()
            return enrollment.state
        resumed = enrollment.state == Enrollment.State.WAITING
        for _hop in range(MAX_STEPS_PER_RUN):
            step = journey.get_step(enrollment.current_step)
            if step is None:
                _leave(
                    enrollment,
                    Enrollment.State.EXITED,
                    f"step {enrollment.current_step!r} no longer exists",
                    now,
                )
                break
            result = _run_step(enrollment, journey, step, now=now, resumed=resumed, by=by)
            resumed = False
            step_id = str(step["id"])
            if result.outcome == "wait":
                enrollment.state = Enrollment.State.WAITING
                enrollment.wake_at = result.wake_at or now
                _record(
                    enrollment,
                    EnrollmentEvent.Kind.WAIT,
                    step_id,
                    now=now,
                    detail={"until": enrollment.wake_at.isoformat(), **result.detail},
                )
                break
            if result.outcome == "exit":
                _record(
                    enrollment,
                    EnrollmentEvent.Kind.STEP,
                    step_id,
                    now=now,
                    branch=result.branch,
                    detail=result.detail,
                )
                _leave(enrollment, Enrollment.State.EXITED, result.reason or "exit step", now)
                break
            _record(
                enrollment,
                EnrollmentEvent.Kind.STEP,
                step_id,
                now=now,
                branch=result.branch,
                detail=result.detail,
            )
            target = result.next_step or step.get("next")
            enrollment.attempts = 0
            if not target:
                _leave(enrollment, Enrollment.State.COMPLETED, "", now)
                break
            enrollment.current_step = str(target)
            enrollment.state = Enrollment.State.ACTIVE
        else:
            _leave(enrollment, Enrollment.State.EXITED, "too many steps in one go", now)
        enrollment.save()
        return enrollment.state


def _run_step(
    enrollment: Enrollment,
    journey: Journey,
    step: Mapping[str, Any],
    *,
    now: datetime,
    resumed: bool,
    by: Actor,
) -> StepResult:
    kind = registry.get_step(str(step.get("kind")))
    if kind is None:
        return StepResult("exit", reason=f"unknown step kind {step.get('kind')!r}")
    context = StepContext(
        enrollment=enrollment,
        journey=journey,
        step=step,
        now=now,
        by=by,
        dedupe_key=f"journey:{enrollment.pk}:{step['id']}",
        payload=enrollment.payload or {},
        resumed=resumed,
        attempts=enrollment.attempts,
    )
    try:
        with transaction.atomic():  # a failing step undoes its own writes only
            return kind.handler(context)
    except Exception as exc:  # one broken step must not stop the runner for everyone
        logger.exception("journey %s step %s failed", journey.pk, step.get("id"))
        message = " ".join(str(exc).split())[:180] or type(exc).__name__
        _record(
            enrollment,
            EnrollmentEvent.Kind.ERROR,
            str(step.get("id")),
            now=now,
            detail={"error": message},
        )
        return StepResult("exit", reason=f"error: {message}")


def find_due(*, now: datetime | None = None, limit: int = DEFAULT_BATCH) -> list[int]:
    """Return the ids of enrollments due to move on (oldest wake time first)."""
    now = now or timezone.now()
    return list(
        Enrollment.objects.filter(
            state__in=Enrollment.OPEN_STATES,
            wake_at__lte=now,
            journey__status=Journey.Status.ACTIVE,
        )
        .order_by("wake_at", "id")
        .values_list("pk", flat=True)[:limit]
    )


def run_due(
    *, now: datetime | None = None, limit: int = DEFAULT_BATCH, by: Actor, budget_seconds: float = 0
) -> int:
    """Move due enrollments on, in batches; return how many moved (stop after budget_seconds)."""
    started = timezone.now()
    moved = 0
    while True:
        moment = now or timezone.now()
        due = find_due(now=moment, limit=limit)
        if not due:
            break
        for enrollment_id in due:
            if advance_enrollment(enrollment_id, now=moment, by=by):
                moved += 1
        if len(due) < limit or now is not None:
            break
        if budget_seconds and (timezone.now() - started).total_seconds() > budget_seconds:
            break
    return moved
