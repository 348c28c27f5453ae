"""Sales: teams, account profiles, pipelines and deals, activities and tasks, the lead pool."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from kequn.commerce.models import Product
from kequn.customers.models import CompanyContact, Customer

USER = settings.AUTH_USER_MODEL


class Team(models.Model):
    """A sales team; a team's manager sees the deals of its members and of its sub-teams."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    parent = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
        verbose_name=_("parent team"),
    )
    manager = models.ForeignKey(
        USER,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="managed_sales_teams",
        verbose_name=_("manager"),
    )
    members: models.ManyToManyField = models.ManyToManyField(
        USER, blank=True, related_name="sales_teams", verbose_name=_("members")
    )

    class Meta:
        verbose_name = _("sales team")
        verbose_name_plural = _("sales teams")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PoolSettings(models.Model):
    """The lead pool's rules (one row): when owned accounts return, and how many a rep may hold."""

    idle_days = models.PositiveIntegerField(
        _("days without activity before return"),
        default=30,
        validators=[MinValueValidator(1)],
        help_text=_("An owned account with no activity for this long returns to the pool."),
    )
    warn_days = models.PositiveIntegerField(
        _("days of warning"),
        default=7,
        help_text=_("The owner is warned this many days before the account returns."),
    )
    claim_limit = models.PositiveIntegerField(
        _("claim limit per rep"),
        default=50,
        validators=[MinValueValidator(1)],
        help_text=_("Accounts a rep may hold that were claimed from the pool."),
    )

    class Meta:
        verbose_name = _("lead pool settings")
        verbose_name_plural = _("lead pool settings")

    def __str__(self) -> str:
        return str(_("Lead pool settings"))


class AccountProfile(models.Model):
    """Sales data of a company account (or a lead): hierarchy, team, pool state, last activity."""

    customer = models.OneToOneField(
        Customer,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="sales_profile",
        verbose_name=_("account"),
    )
    parent = models.ForeignKey(
        Customer,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="branch_profiles",
        limit_choices_to={"kind": Customer.Kind.COMPANY},
        verbose_name=_("parent company"),
    )
    team = models.ForeignKey(
        Team,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="accounts",
        verbose_name=_("team"),
    )
    in_pool = models.BooleanField(_("in the lead pool"), default=False)
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    last_activity_at = models.DateTimeField(_("last activity"), null=True, blank=True)
    warned_at = models.DateTimeField(_("return warning sent"), null=True, blank=True)

    class Meta:
        verbose_name = _("account profile")
        verbose_name_plural = _("account profiles")
        indexes = [
            models.Index(fields=["in_pool"], name="sales_acct_pool_idx"),
            models.Index(fields=["last_activity_at"], name="sales_acct_activity_idx"),
        ]

    def __str__(self) -> str:
        return str(self.customer)


class BuyingRole(models.Model):
    """The role a company's contact plays in the buying decision."""

    class Role(models.TextChoices):
        DECISION_MAKER = "decision", _("Decision maker")
        INFLUENCER = "influencer", _("Influencer")
        CHAMPION = "champion", _("Champion")
        USER = "user", _("User")
        GATEKEEPER = "gatekeeper", _("Gatekeeper")
        OTHER = "other", _("Other")

    link = models.OneToOneField(
        CompanyContact,
        on_delete=models.CASCADE,
        related_name="buying_role",
        verbose_name=_("company contact"),
    )
    role = models.CharField(_("buying role"), max_length=12, choices=Role.choices)

    class Meta:
        verbose_name = _("buying role")
        verbose_name_plural = _("buying roles")

    def __str__(self) -> str:
        return f"{self.link}: {self.get_role_display()}"


class Pipeline(models.Model):
    name = models.CharField(_("name"), max_length=100, unique=True)
    position = models.PositiveIntegerField(_("position"), default=0)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("pipeline")
        verbose_name_plural = _("pipelines")
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name


class Stage(models.Model):
    class Forecast(models.TextChoices):
        PIPELINE = "pipeline", _("Pipeline")
        BEST_CASE = "best_case", _("Best case")
        COMMIT = "commit", _("Commit")
        CLOSED = "closed", _("Closed")
        OMITTED = "omitted", _("Omitted")

    pipeline = models.ForeignKey(
        Pipeline, on_delete=models.CASCADE, related_name="stages", verbose_name=_("pipeline")
    )
    name = models.CharField(_("name"), max_length=100)
    position = models.PositiveIntegerField(_("position"), default=0)
    probability = models.PositiveSmallIntegerField(
        _("win probability (%)"), default=10, validators=[MaxValueValidator(100)]
    )
    forecast_category = models.CharField(
        _("forecast category"), max_length=10, choices=Forecast.choices, default=Forecast.PIPELINE
    )
    is_won = models.BooleanField(_("won"), default=False)
    is_lost = models.BooleanField(_("lost"), default=False)

    class Meta:
        verbose_name = _("stage")
        verbose_name_plural = _("stages")
        ordering = ["pipeline", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["pipeline", "name"], name="sales_stage_unique_name"),
            models.CheckConstraint(
                condition=~Q(is_won=True, is_lost=True), name="sales_stage_not_won_and_lost"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pipeline} · {self.name}"

    @property
    def is_closed(self) -> bool:
        """Return whether a deal in this stage is over (won or lost)."""
        return self.is_won or self.is_lost


class Deal(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        WON = "won", _("Won")
        LOST = "lost", _("Lost")

    name = models.CharField(_("name"), max_length=200)
    account = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="deals",
        verbose_name=_("account"),
    )
    pipeline = models.ForeignKey(
        Pipeline, on_delete=models.PROTECT, related_name="deals", verbose_name=_("pipeline")
    )
    stage = models.ForeignKey(
        Stage, on_delete=models.PROTECT, related_name="deals", verbose_name=_("stage")
    )
    status = models.CharField(
        _("status"), max_length=4, choices=Status.choices, default=Status.OPEN, editable=False
    )
    amount = models.DecimalField(
        _("amount"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    close_date = models.DateField(_("expected close date"))
    probability = models.PositiveSmallIntegerField(
        _("win probability override (%)"),
        null=True,
        blank=True,
        validators=[MaxValueValidator(100)],
        help_text=_("Leave empty to use the stage's default probability."),
    )
    owner = models.ForeignKey(
        USER,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sales_deals",
        verbose_name=_("owner"),
    )
    team = models.ForeignKey(
        Team,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="deals",
        verbose_name=_("team"),
    )
    contacts = models.ManyToManyField(
        Customer, blank=True, related_name="contact_deals", verbose_name=_("contacts")
    )
    source = models.CharField(_("source"), max_length=50, blank=True)
    source_campaign_id = models.PositiveBigIntegerField(
        _("source campaign id"), null=True, blank=True
    )
    lost_reason = models.CharField(_("lost reason"), max_length=200, blank=True)
    external_ref = models.CharField(_("external reference"), max_length=100, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    stage_entered_at = models.DateTimeField(_("in stage since"), default=timezone.now)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("deal")
        verbose_name_plural = _("deals")
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["status", "pipeline", "stage"], name="sales_deal_board_idx"),
            models.Index(fields=["owner", "status"], name="sales_deal_owner_idx"),
            # Covers the forecast's scan (close date range, grouped by status and stage).
            models.Index(
                fields=["close_date", "status", "stage", "probability", "amount"],
                name="sales_deal_forecast_idx",
            ),
            models.Index(fields=["external_ref"], name="sales_deal_extref_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_probability(self) -> int:
        """Return the deal's own probability, else its stage's default (0 lost, 100 won)."""
        if self.status == self.Status.WON:
            return 100
        if self.status == self.Status.LOST:
            return 0
        return self.stage.probability if self.probability is None else self.probability

    @property
    def weighted_amount(self) -> Decimal:
        """Return the amount times the win probability."""
        return (self.amount or Decimal(0)) * self.get_probability() / 100


class DealProduct(models.Model):
    deal = models.ForeignKey(
        Deal, on_delete=models.CASCADE, related_name="lines", verbose_name=_("deal")
    )
    product = models.ForeignKey(
        Product, on_delete=models.PROTECT, related_name="+", verbose_name=_("product")
    )
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    unit_price = models.DecimalField(_("unit price"), max_digits=12, decimal_places=2)

    class Meta:
        verbose_name = _("deal product")
        verbose_name_plural = _("deal products")

    def __str__(self) -> str:
        return f"{self.product} × {self.quantity}"


class DealStageChange(models.Model):
    """One move of a deal (or its creation), kept for stage ageing, conversion and slips."""

    deal = models.ForeignKey(
        Deal, on_delete=models.CASCADE, related_name="stage_changes", verbose_name=_("deal")
    )
    from_stage = models.ForeignKey(
        Stage,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("from stage"),
    )
    to_stage = models.ForeignKey(
        Stage, on_delete=models.PROTECT, related_name="+", verbose_name=_("to stage")
    )
    changed_at = models.DateTimeField(_("changed at"), default=timezone.now)
    days_in_previous = models.FloatField(_("days in the previous stage"), null=True, blank=True)
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2, null=True)
    close_date = models.DateField(_("expected close date"), null=True)
    previous_close_date = models.DateField(_("previous close date"), null=True, blank=True)
    changed_by = models.CharField(_("changed by"), max_length=150, blank=True)

    class Meta:
        verbose_name = _("deal stage change")
        verbose_name_plural = _("deal stage changes")
        ordering = ["deal", "changed_at", "id"]
        indexes = [models.Index(fields=["changed_at"], name="sales_change_at_idx")]

    def __str__(self) -> str:
        return f"{self.deal}: {self.from_stage} → {self.to_stage}"


class Activity(models.Model):
    class Kind(models.TextChoices):
        CALL = "call", _("Call")
        MEETING = "meeting", _("Meeting")
        VISIT = "visit", _("Visit")
        EMAIL = "email", _("Email")
        NOTE = "note", _("Note")

    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    subject = models.CharField(_("subject"), max_length=200)
    notes = models.TextField(_("notes"), blank=True)
    occurred_at = models.DateTimeField(_("when"), default=timezone.now)
    duration_minutes = models.PositiveIntegerField(_("duration (minutes)"), null=True, blank=True)
    location = models.CharField(_("location"), max_length=200, blank=True)
    account = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="sales_activities",
        verbose_name=_("account"),
    )
    contact = models.ForeignKey(
        Customer,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="contact_activities",
        verbose_name=_("contact"),
    )
    deal = models.ForeignKey(
        Deal,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="activities",
        verbose_name=_("deal"),
    )
    owner = models.ForeignKey(
        USER,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sales_activities",
        verbose_name=_("owner"),
    )
    external_ref = models.CharField(_("external reference"), max_length=100, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("activity")
        verbose_name_plural = _("activities")
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["account", "occurred_at"], name="sales_activity_acct_idx"),
            models.Index(fields=["deal"], name="sales_activity_deal_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.subject}"


class Task(models.Model):
    class Recurrence(models.TextChoices):
        NONE = "", _("Does not repeat")
        DAILY = "daily", _("Daily")
        WEEKLY = "weekly", _("Weekly")
        MONTHLY = "monthly", _("Monthly")

    title = models.CharField(_("title"), max_length=200)
    notes = models.TextField(_("notes"), blank=True)
    due_at = models.DateTimeField(_("due"))
    remind_at = models.DateTimeField(_("remind at"), null=True, blank=True)
    reminded_at = models.DateTimeField(_("reminder sent"), null=True, blank=True, editable=False)
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)
    recurrence = models.CharField(
        _("repeats"), max_length=8, choices=Recurrence.choices, blank=True, default=""
    )
    owner = models.ForeignKey(
        USER,
        on_delete=models.CASCADE,
        related_name="sales_tasks",
        verbose_name=_("owner"),
    )
    account = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="sales_tasks",
        verbose_name=_("account"),
    )
    deal = models.ForeignKey(
        Deal,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="tasks",
        verbose_name=_("deal"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("task")
        verbose_name_plural = _("tasks")
        ordering = ["due_at", "id"]
        indexes = [
            models.Index(fields=["owner", "done_at", "due_at"], name="sales_task_owner_idx"),
            models.Index(fields=["remind_at"], name="sales_task_remind_idx"),
        ]

    def __str__(self) -> str:
        return self.title


class PoolEvent(models.Model):
    """A claim, release, return or warning of an account in the lead pool (history)."""

    class Kind(models.TextChoices):
        ADDED = "added", _("Put in the pool")
        CLAIMED = "claimed", _("Claimed")
        RELEASED = "released", _("Released")
        RECLAIMED = "reclaimed", _("Returned for inactivity")
        WARNED = "warned", _("Warned")

    account = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="pool_events", verbose_name=_("account")
    )
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    user = models.ForeignKey(
        USER,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("rep"),
    )
    at = models.DateTimeField(_("at"), default=timezone.now)
    reason = models.CharField(_("reason"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("pool event")
        verbose_name_plural = _("pool events")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["account", "at"], name="sales_pool_acct_idx")]

    def __str__(self) -> str:
        return f"{self.account}: {self.get_kind_display()}"


class Quota(models.Model):
    """A sales target for one month, of a rep or a team."""

    owner = models.ForeignKey(
        USER,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="sales_quotas",
        verbose_name=_("rep"),
    )
    team = models.ForeignKey(
        Team,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="quotas",
        verbose_name=_("team"),
    )
    month = models.DateField(_("month"), help_text=_("The first day of the month."))
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)

    class Meta:
        verbose_name = _("quota")
        verbose_name_plural = _("quotas")
        ordering = ["-month", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(owner__isnull=False, team__isnull=True)
                | Q(owner__isnull=True, team__isnull=False),
                name="sales_quota_rep_or_team",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.owner or self.team} {self.month:%Y-%m}"


class ForecastSnapshot(models.Model):
    """The forecast of a month as it stood on a day, to measure accuracy against what was won."""

    month = models.DateField(_("month"))
    taken_on = models.DateField(_("taken on"))
    owner = models.ForeignKey(
        USER,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("rep"),
    )
    weighted = models.DecimalField(_("weighted"), max_digits=16, decimal_places=2)
    commit = models.DecimalField(_("commit"), max_digits=16, decimal_places=2)
    best_case = models.DecimalField(_("best case"), max_digits=16, decimal_places=2)

    class Meta:
        verbose_name = _("forecast snapshot")
        verbose_name_plural = _("forecast snapshots")
        ordering = ["-month", "taken_on"]
        constraints = [
            models.UniqueConstraint(
                fields=["month", "taken_on", "owner"], name="sales_snapshot_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} @ {self.taken_on}"


class WinModel(models.Model):
    """A trained win-probability model with its held-out evaluation against the stage baseline."""

    trained_at = models.DateTimeField(_("trained at"), default=timezone.now)
    parameters = models.JSONField(_("parameters"))
    metrics = models.JSONField(_("metrics"))
    is_used = models.BooleanField(
        _("used"), default=False, help_text=_("Only a model that beats the baseline is used.")
    )

    class Meta:
        verbose_name = _("win-probability model")
        verbose_name_plural = _("win-probability models")
        ordering = ["-trained_at"]

    def __str__(self) -> str:
        return f"{self.trained_at:%Y-%m-%d %H:%M}"
