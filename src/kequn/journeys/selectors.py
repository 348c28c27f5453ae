"""Reads of journeys: the flow with counts at each step, a customer's journeys and history."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, QuerySet

from kequn.customers.models import Customer
from kequn.journeys import registry
from kequn.journeys.models import Enrollment, EnrollmentEvent, Journey


@dataclass
class StepBox:
    """One step as the flow draws it: what it does, where it goes, how many passed."""

    id: str
    kind: str
    label: str
    summary: str
    level: int
    passed: int = 0
    here: int = 0
    targets: list[tuple[str, str]] = field(default_factory=list)  # (label, step id)
    branches: dict[str, int] = field(default_factory=dict)
    errors: int = 0


def summarise_step(step: dict[str, Any]) -> str:
    """Return a short description of a step's settings (no personal data is in them)."""
    config = step.get("config") or {}
    kind = step.get("kind")
    if kind == "wait":
        parts = [f"{config[k]}{k[0]}" for k in ("days", "hours", "minutes") if config.get(k)]
        if config.get("at"):
            parts.append(f"@{config['at']}")
        return " ".join(parts)
    if kind == "send":
        return f"{config.get('channel', '')} #{config.get('template', '')}"
    if kind == "tag":
        return f"{config.get('action', 'add')} {config.get('tag', '')}"
    if kind == "webhook":
        return str(config.get("url", ""))[:60]
    if kind == "split":
        return " / ".join(
            f"{v.get('name')} {v.get('percent')}%" for v in config.get("variants", [])
        )
    if kind == "branch":
        return ", ".join(
            f"{c.get('field')} {c.get('operator')} {c.get('value', '')}"
            for c in (config.get("rule") or {}).get("conditions", [])
            if isinstance(c, dict)
        )[:80]
    return ", ".join(f"{k}={v}" for k, v in config.items())[:80]


def _levels(journey: Journey, targets: dict[str, list[str]]) -> dict[str, int]:
    """Return each step's row: one below the deepest step leading to it (steps form no circle)."""
    order = [str(s["id"]) for s in journey.steps]
    level = dict.fromkeys(order, 0)
    for _round in range(len(order)):
        changed = False
        for step_id in order:
            for target in targets.get(step_id, []):
                if target in level and level[target] < level[step_id] + 1:
                    level[target] = level[step_id] + 1
                    changed = True
        if not changed:
            break
    return level


def get_flow(journey: Journey) -> dict[str, Any]:
    """Return the journey's steps in rows, each with its counts, and the totals."""
    passed: dict[str, int] = defaultdict(int)
    branches: dict[str, dict[str, int]] = defaultdict(dict)
    errors: dict[str, int] = defaultdict(int)
    for step_id, kind, branch, n in (
        EnrollmentEvent.objects.filter(journey=journey, kind__in=["step", "error"])
        .values_list("step_id", "kind", "branch")
        .annotate(n=Count("id"))
    ):
        if kind == "error":
            errors[step_id] += n
            continue
        passed[step_id] += n
        if branch:
            branches[step_id][branch] = branches[step_id].get(branch, 0) + n
    here: dict[str, int] = defaultdict(int)
    states: dict[str, int] = defaultdict(int)
    for state, step_id, n in (
        Enrollment.objects.filter(journey=journey)
        .values_list("state", "current_step")
        .annotate(n=Count("id"))
    ):
        states[state] += n
        if state in Enrollment.OPEN_STATES:
            here[step_id] += n
    targets: dict[str, list[tuple[str, str]]] = {}
    for step in journey.steps:
        kind = registry.get_step(str(step.get("kind")))
        found = (
            list(kind.get_targets(step.get("config") or {})) if kind and kind.get_targets else []
        )
        if step.get("next"):
            found.append(("", str(step["next"])))
        targets[str(step["id"])] = found
    levels = _levels(journey, {k: [t for _l, t in v] for k, v in targets.items()})
    boxes = []
    for step in journey.steps:
        step_id = str(step["id"])
        kind = registry.get_step(str(step.get("kind")))
        boxes.append(
            StepBox(
                id=step_id,
                kind=str(step.get("kind")),
                label=str(kind.label) if kind else str(step.get("kind")),
                summary=summarise_step(step),
                level=levels.get(step_id, 0),
                passed=passed.get(step_id, 0),
                here=here.get(step_id, 0),
                targets=targets[step_id],
                branches=dict(branches.get(step_id, {})),
                errors=errors.get(step_id, 0),
            )
        )
    rows: list[list[StepBox]] = []
    for box in boxes:
        while len(rows) <= box.level:
            rows.append([])
        rows[box.level].append(box)
    exits = list(
        Enrollment.objects.filter(journey=journey, state=Enrollment.State.EXITED)
        .values_list("exit_reason")
        .annotate(n=Count("id"))
        .order_by("-n")[:5]
    )
    trigger = registry.get_trigger(journey.trigger_kind)
    return {
        "rows": rows,
        "entered": sum(states.values()),
        "open": states.get("active", 0) + states.get("waiting", 0),
        "completed": states.get("completed", 0),
        "exited": states.get("exited", 0),
        "exit_reasons": exits,
        "trigger_label": str(trigger.label) if trigger else journey.trigger_kind,
    }


def list_customer_enrollments(customer: Customer, limit: int = 10) -> list[dict[str, Any]]:
    """Return the customer's latest enrollments, each with its history, newest first."""
    enrollments = list(
        Enrollment.objects.filter(customer=customer)
        .select_related("journey")
        .order_by("-entered_at", "-id")[:limit]
    )
    history: dict[int, list[EnrollmentEvent]] = defaultdict(list)
    for event in EnrollmentEvent.objects.filter(enrollment__in=enrollments).order_by("at", "id"):
        history[event.enrollment_id].append(event)
    return [{"enrollment": e, "history": history.get(e.pk, [])} for e in enrollments]


def list_journeys() -> QuerySet[Journey]:
    """Return the journeys, newest first, with their open and total enrolment counts."""
    return Journey.objects.annotate(enrolled_total=Count("enrollments")).order_by("-id")
