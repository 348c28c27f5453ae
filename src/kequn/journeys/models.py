"""Journeys: the automations, each customer's place in them, and the history of every move."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from kequn.customers.models import Customer


class Journey(models.Model):
    """An automation: a trigger enrols customers, who then walk its steps one by one.

    ``steps`` is a list of {"id": "s1", "kind": "wait", "config": {...}, "next": "s2"}; the
    first step is where enrolments start; a step without "next" ends the journey (completed).
    Branching steps name their targets in their config (see kequn.journeys.steps).
    """

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        ACTIVE = "active", _("Active")
        PAUSED = "paused", _("Paused")

    class Reentry(models.TextChoices):
        ONCE = "once", _("Once per customer")
        AFTER_DAYS = "after_days", _("Again after some days")
        ALWAYS = "always", _("Every time the trigger fires")

    name = models.CharField(_("name"), max_length=200, unique=True)
    description = models.TextField(_("description"), blank=True)
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.DRAFT
    )
    trigger_kind = models.CharField(_("trigger"), max_length=64)
    trigger_config = models.JSONField(_("trigger settings"), default=dict, blank=True)
    reentry = models.CharField(
        _("re-entry"), max_length=10, choices=Reentry.choices, default=Reentry.ONCE
    )
    reentry_days = models.PositiveIntegerField(
        _("re-entry after (days)"),
        default=0,
        help_text=_("With 're-entry after some days': how long after leaving."),
    )
    goal = models.JSONField(
        _("goal"),
        null=True,
        blank=True,
        help_text=_(
            'Customers who reach it leave the journey, e.g. {"kind": "purchase"} or '
            '{"kind": "event", "event": "Order Completed"}.'
        ),
    )
    steps = models.JSONField(_("steps"), default=list, blank=True)
    activated_at = models.DateTimeField(_("activated at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("journey")
        verbose_name_plural = _("journeys")
        ordering = ["-id"]
        indexes = [models.Index(fields=["trigger_kind", "status"], name="journey_trigger_idx")]

    def __str__(self) -> str:
        return self.name

    @property
    def first_step_id(self) -> str | None:
        """Return the id of the step enrolments start at, or None for an empty journey."""
        return str(self.steps[0]["id"]) if self.steps else None

    def get_step(self, step_id: str | None) -> dict | None:
        """Return the step with this id, or None."""
        for step in self.steps or []:
            if str(step.get("id")) == step_id:
                return step
        return None


class Enrollment(models.Model):
    """One customer's pass through a journey: where they are, until when they wait, why they left."""

    class State(models.TextChoices):
        ACTIVE = "active", _("Active")
        WAITING = "waiting", _("Waiting")
        EXITED = "exited", _("Exited")
        COMPLETED = "completed", _("Completed")

    OPEN_STATES = (State.ACTIVE, State.WAITING)

    journey = models.ForeignKey(
        Journey, on_delete=models.CASCADE, related_name="enrollments", verbose_name=_("journey")
    )
    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="journey_enrollments",
        verbose_name=_("customer"),
    )
    state = models.CharField(_("state"), max_length=9, choices=State.choices, default=State.ACTIVE)
    current_step = models.CharField(_("current step"), max_length=64, blank=True)
    wake_at = models.DateTimeField(_("next look at"), null=True, blank=True)
    entered_at = models.DateTimeField(_("entered at"), default=timezone.now)
    left_at = models.DateTimeField(_("left at"), null=True, blank=True)
    exit_reason = models.CharField(_("exit reason"), max_length=200, blank=True)
    # What made the customer enter ("event:123", "birthday:2026-05-04"): a trigger seen twice
    # enrols once.
    entry_key = models.CharField(_("entry key"), max_length=100, blank=True)
    payload = models.JSONField(_("trigger data"), default=dict, blank=True)
    # Tries of the current step that asked to be retried (webhooks that answered 5xx).
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)

    class Meta:
        verbose_name = _("journey enrollment")
        verbose_name_plural = _("journey enrollments")
        ordering = ["-entered_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["journey", "customer"],
                condition=Q(state__in=["active", "waiting"]),
                name="enrollment_one_open",
            ),
            models.UniqueConstraint(
                fields=["journey", "customer", "entry_key"],
                condition=~Q(entry_key=""),
                name="enrollment_unique_entry",
            ),
        ]
        indexes = [
            # The runner's due-work query: open enrollments by wake time.
            models.Index(
                fields=["wake_at"],
                condition=Q(state__in=["active", "waiting"]),
                name="enrollment_due_idx",
            ),
            models.Index(fields=["customer", "journey"], name="enrollment_customer_idx"),
            models.Index(fields=["journey", "state", "current_step"], name="enrollment_step_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.journey_id}: #{self.customer_id} ({self.state})"

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES


class EnrollmentEvent(models.Model):
    """One line of an enrollment's history: entered, a step done, a branch taken, a message, an exit."""

    class Kind(models.TextChoices):
        ENTERED = "entered", _("Entered")
        STEP = "step", _("Step done")
        WAIT = "wait", _("Waiting")
        MESSAGE = "message", _("Message queued")
        SKIPPED = "skipped", _("Message not sent")
        RETRY = "retry", _("Will retry")
        ERROR = "error", _("Error")
        EXITED = "exited", _("Exited")
        COMPLETED = "completed", _("Completed")

    enrollment = models.ForeignKey(
        Enrollment, on_delete=models.CASCADE, related_name="history", verbose_name=_("enrollment")
    )
    # Kept beside the enrollment so the flow's counts are one indexed GROUP BY.
    journey = models.ForeignKey(
        Journey, on_delete=models.CASCADE, related_name="+", verbose_name=_("journey")
    )
    kind = models.CharField(_("what"), max_length=9, choices=Kind.choices)
    step_id = models.CharField(_("step"), max_length=64, blank=True)
    branch = models.CharField(_("branch"), max_length=64, blank=True)
    detail = models.JSONField(_("detail"), default=dict, blank=True)
    at = models.DateTimeField(_("at"), default=timezone.now)

    class Meta:
        verbose_name = _("journey history entry")
        verbose_name_plural = _("journey history")
        ordering = ["at", "id"]
        indexes = [
            models.Index(fields=["journey", "kind", "step_id"], name="enrollevent_counts_idx"),
            models.Index(fields=["enrollment", "at"], name="enrollevent_enrollment_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.enrollment_id} {self.kind} {self.step_id}"


class CustomerDate(models.Model):
    """A customer's yearly date (birthday, first purchase) by day of the year, for date triggers.

    The birthday's day is stored as a keyed hash (the birthday itself is encrypted and only the
    year is in clear: a clear month and day beside it would give the date away); the first
    purchase's day, from the order dates that are in clear anyway, as MM-DD.
    """

    class Kind(models.TextChoices):
        BIRTHDAY = "birthday", _("Birthday")
        FIRST_PURCHASE = "first_purchase", _("First purchase")

    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        db_index=False,  # the unique (customer, kind) index leads with the customer
        related_name="+",
        verbose_name=_("customer"),
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    day_key = models.CharField(_("day"), max_length=40)
    year = models.PositiveSmallIntegerField(_("year"), null=True, blank=True)
    synced_at = models.DateTimeField(_("synced at"), default=timezone.now)

    class Meta:
        verbose_name = _("customer date")
        verbose_name_plural = _("customer dates")
        constraints = [
            models.UniqueConstraint(fields=["customer", "kind"], name="customerdate_unique")
        ]
        indexes = [models.Index(fields=["kind", "day_key"], name="customerdate_day_idx")]

    def __str__(self) -> str:
        return f"#{self.customer_id} {self.kind}"


class RunnerCursor(models.Model):
    """How far the runner has read a growing table (events, stage changes...), and its lease."""

    name = models.CharField(_("name"), max_length=64, unique=True)
    position = models.BigIntegerField(_("position"), default=0)
    moment = models.DateTimeField(_("moment"), null=True, blank=True)
    token = models.CharField(_("token"), max_length=64, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("runner cursor")
        verbose_name_plural = _("runner cursors")

    def __str__(self) -> str:
        return f"{self.name}: {self.position}"
