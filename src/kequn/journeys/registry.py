"""The trigger kinds and step kinds journeys know, filled by the apps that provide them.

Journeys sits below loyalty, service, feedback and sales, so it cannot import them. Each of
those apps registers what it adds from its ``AppConfig.ready()``:

    from kequn.journeys.registry import StepResult, register_step, register_trigger

    register_trigger("loyalty.tier_changed", _("Loyalty tier changed"),
                     config_fields={"tier": _("new tier (empty: any)")})
    register_step("sales.create_task", _("Create a task"), create_task_step,
                  config_fields={"title": _("task title"), "due_days": _("due in days")})

and then, when the thing happens, enrols the customers into every active journey started
by that trigger with ``kequn.journeys.services.fire_trigger(kind=..., customer_ids=[...],
payload={...}, by=...)``.

A step handler is called once per enrollment reaching the step, inside the transaction that
records the step (so its own writes commit with it, exactly once) and gets a StepContext;
it returns a StepResult: go on (to the step's ``next`` or a named one), wait until a moment,
or exit the journey with a reason. It must be idempotent on ``context.dedupe_key`` for any
effect outside the database (a message, a call), because a worker killed after the effect
and before the commit runs the step again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from kequn.security.actors import Actor

Outcome = Literal["next", "wait", "exit"]


@dataclass(frozen=True)
class StepContext:
    """What a step handler knows: the enrollment, its journey, the step, the time, the actor."""

    enrollment: Any  # kequn.journeys.models.Enrollment (registry stays below the models)
    journey: Any  # kequn.journeys.models.Journey
    step: Mapping[str, Any]  # {"id", "kind", "config", "next"}
    now: datetime
    by: Actor
    # Unique per enrollment and step: pass it on to anything sent, so a re-run sends nothing twice.
    dedupe_key: str
    payload: Mapping[str, Any] = field(default_factory=dict)  # what the trigger carried
    # True when the enrollment waited at this step and woke up (a wait ends, a retry is due).
    resumed: bool = False
    attempts: int = 0  # earlier tries of this step that asked to be retried

    @property
    def customer_id(self) -> int:
        """Return the enrolled customer's id."""
        return int(self.enrollment.customer_id)

    @property
    def config(self) -> Mapping[str, Any]:
        """Return the step's settings."""
        return self.step.get("config") or {}


@dataclass(frozen=True)
class StepResult:
    """What a step decided: go on, wait, or leave the journey."""

    outcome: Outcome = "next"
    next_step: str | None = None  # None with "next": the step's own "next" (or the end)
    wake_at: datetime | None = None  # with "wait": when to look again
    reason: str = ""  # with "exit": why, shown in the history
    detail: dict[str, Any] = field(default_factory=dict)  # kept in the history (no personal data)
    branch: str = ""  # the branch taken (branch, A/B split), shown in the flow's counts


StepHandler = Callable[[StepContext], StepResult]
ConfigCheck = Callable[[Mapping[str, Any]], list[str]]
TargetsOf = Callable[[Mapping[str, Any]], list[tuple[str, str]]]


@dataclass(frozen=True)
class TriggerKind:
    kind: str
    label: Any  # a (lazy) translated string
    config_fields: Mapping[str, Any] = field(default_factory=dict)
    check_config: ConfigCheck | None = None


@dataclass(frozen=True)
class StepKind:
    kind: str
    label: Any
    handler: StepHandler
    config_fields: Mapping[str, Any] = field(default_factory=dict)
    check_config: ConfigCheck | None = None
    # The steps this step may jump to besides its "next", as (label, step id) pairs.
    get_targets: TargetsOf | None = None


_triggers: dict[str, TriggerKind] = {}
_steps: dict[str, StepKind] = {}


def register_trigger(
    kind: str,
    label: Any,
    *,
    config_fields: Mapping[str, Any] | None = None,
    check_config: ConfigCheck | None = None,
) -> None:
    """Add a trigger kind journeys can start on (registering a kind again replaces it).

    kind: a stable name, prefixed by the app ("loyalty.tier_changed"); label: shown in the
    back office; config_fields: the keys of the journey's trigger config with their labels;
    check_config: returns one line per problem of a config (empty: fine). The app then calls
    ``kequn.journeys.services.fire_trigger(kind=kind, customer_ids=..., payload=..., by=...)``.
    """
    _triggers[kind] = TriggerKind(kind, label, dict(config_fields or {}), check_config)


def register_step(
    kind: str,
    label: Any,
    handler: StepHandler,
    *,
    config_fields: Mapping[str, Any] | None = None,
    check_config: ConfigCheck | None = None,
    get_targets: TargetsOf | None = None,
) -> None:
    """Add a step kind journeys can use (registering a kind again replaces it).

    handler(context: StepContext) -> StepResult runs once per enrollment reaching the step,
    inside the transaction recording it; effects outside the database must be idempotent on
    context.dedupe_key. get_targets(config) -> [(label, step id)]: where a branching step
    may go besides its "next" (checked on save, drawn as arrows).
    """
    _steps[kind] = StepKind(
        kind, label, handler, dict(config_fields or {}), check_config, get_targets
    )


def get_trigger(kind: str) -> TriggerKind | None:
    """Return a registered trigger kind, or None."""
    return _triggers.get(kind)


def get_step(kind: str) -> StepKind | None:
    """Return a registered step kind, or None."""
    return _steps.get(kind)


def list_triggers() -> list[TriggerKind]:
    """Return the registered trigger kinds by name."""
    return [_triggers[k] for k in sorted(_triggers)]


def list_steps() -> list[StepKind]:
    """Return the registered step kinds by name."""
    return [_steps[k] for k in sorted(_steps)]
