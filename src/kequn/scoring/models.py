"""Scores written by `kequn analytics refresh`: one row per customer, plus stage history."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from kequn.customers.models import Customer


class LifecycleStage(models.TextChoices):
    PROSPECT = "prospect", _("Prospect")
    NEW = "new", _("New")
    ACTIVE = "active", _("Active")
    LOYAL = "loyal", _("Loyal")
    AT_RISK = "at_risk", _("At risk")
    CHURNED = "churned", _("Churned")
    REACTIVATED = "reactivated", _("Reactivated")


class RFMSegment(models.TextChoices):
    CHAMPIONS = "champions", _("Champions")
    LOYAL = "loyal_customers", _("Loyal customers")
    POTENTIAL_LOYALISTS = "potential_loyalists", _("Potential loyalists")
    NEW = "new_customers", _("New customers")
    PROMISING = "promising", _("Promising")
    NEED_ATTENTION = "need_attention", _("Need attention")
    ABOUT_TO_SLEEP = "about_to_sleep", _("About to sleep")
    AT_RISK = "at_risk", _("At risk")
    CANT_LOSE = "cant_lose_them", _("Can't lose them")
    HIBERNATING = "hibernating", _("Hibernating")


class ScoreFields(models.Model):
    """The score columns, shared by the live table and the one a refresh builds beside it."""

    computed_at = models.DateTimeField(_("computed at"))
    orders = models.PositiveIntegerField(_("purchases"), default=0)
    revenue = models.FloatField(_("revenue"), default=0)
    recency_days = models.PositiveIntegerField(_("days since last purchase"), null=True)
    r_score = models.PositiveSmallIntegerField(_("R score"), null=True)
    f_score = models.PositiveSmallIntegerField(_("F score"), null=True)
    m_score = models.PositiveSmallIntegerField(_("M score"), null=True)
    rfm_segment = models.CharField(
        _("RFM segment"), max_length=32, choices=RFMSegment.choices, blank=True
    )
    lifecycle_stage = models.CharField(
        _("lifecycle stage"), max_length=16, choices=LifecycleStage.choices, blank=True
    )
    p_alive = models.FloatField(_("probability alive"), null=True)
    expected_purchases = models.FloatField(_("expected purchases in the churn horizon"), null=True)
    expected_spend = models.FloatField(_("expected order value"), null=True)
    clv = models.FloatField(_("customer lifetime value"), null=True)
    churn_risk = models.FloatField(_("churn risk"), null=True)
    churn_percentile = models.FloatField(_("churn-risk percentile"), null=True)
    churn_reasons = models.JSONField(_("churn reasons"), default=list, blank=True)

    class Meta:
        abstract = True


class CustomerScore(ScoreFields):
    customer = models.OneToOneField(
        Customer,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="score",
        verbose_name=_("customer"),
    )

    class Meta:
        verbose_name = _("customer score")
        verbose_name_plural = _("customer scores")
        # Each ends with the customer: a segment's "customer id IN (scores WHERE …)" then
        # reads the index alone (the refresh vacuums the new table for that).
        indexes = [
            models.Index(fields=["rfm_segment", "customer"], name="score_rfm_idx"),
            models.Index(fields=["lifecycle_stage", "customer"], name="score_stage_idx"),
            models.Index(fields=["clv", "customer"], name="score_clv_idx"),
            models.Index(fields=["churn_percentile", "customer"], name="score_churn_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.rfm_segment} / {self.lifecycle_stage}"


class StageChange(models.Model):
    """A customer's move from one lifecycle stage to another, as seen by a refresh."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="stage_changes", verbose_name=_("customer")
    )
    from_stage = models.CharField(
        _("from"), max_length=16, choices=LifecycleStage.choices, blank=True
    )
    to_stage = models.CharField(_("to"), max_length=16, choices=LifecycleStage.choices)
    changed_at = models.DateTimeField(_("changed at"))

    class Meta:
        verbose_name = _("lifecycle stage change")
        verbose_name_plural = _("lifecycle stage changes")
        ordering = ["-changed_at", "-id"]
        indexes = [
            models.Index(fields=["customer", "changed_at"], name="stagechange_customer_idx"),
            models.Index(fields=["changed_at", "to_stage"], name="stagechange_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.from_stage or '—'} → {self.to_stage}"


class ScoreRun(models.Model):
    """One refresh: when, how many customers, fitted parameters and evaluation metrics."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    started_at = models.DateTimeField(_("started at"))
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices)
    customers = models.PositiveIntegerField(_("customers scored"), default=0)
    details = models.JSONField(_("details"), default=dict, blank=True)
    message = models.TextField(_("message"), blank=True)

    class Meta:
        verbose_name = _("score refresh")
        verbose_name_plural = _("score refreshes")
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{timezone.localtime(self.started_at):%Y-%m-%d %H:%M} {self.status}"


class NextCustomerScore(ScoreFields):
    """The score table a refresh fills beside CustomerScore and swaps in (see scoring.swap).

    Not managed: a refresh creates it as a copy of CustomerScore's table and renames it.
    """

    # A plain id: the swap gives the table CustomerScore's foreign key with its name.
    customer_id = models.BigIntegerField(_("customer"), primary_key=True)

    class Meta:
        managed = False
        db_table = "scoring_customerscore_next"

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.rfm_segment} / {self.lifecycle_stage}"


class PurchaseSummary(models.Model):
    """One customer's purchase statistics that do not depend on the scoring day.

    Kept by the refresh from SummaryJournal: only customers whose orders changed are read
    again. Days count from 1970-01-01 (UTC), like the purchases the analytics read.
    Columns are those of kequn.analytics.summaries.summarize_purchases.
    """

    customer_id = models.BigIntegerField(_("customer"), primary_key=True)
    first_day = models.IntegerField(_("first purchase day"))
    last_day = models.IntegerField(_("last purchase day"))
    latest_at = models.BigIntegerField(_("latest order time (µs since 1970)"))
    n_days = models.IntegerField(_("purchase days"))
    total = models.FloatField(_("spend on purchase days"))
    first_amount = models.FloatField(_("spend on the first purchase day"))
    n_rows = models.IntegerField(_("orders on purchase days"))
    refunds = models.FloatField(_("net of refund-only days"))
    median_gap_days = models.FloatField(_("median gap in days"), null=True)
    last_gap_days = models.FloatField(_("last gap in days"), null=True)
    max_prior_gap_days = models.FloatField(_("longest earlier gap in days"), null=True)
    last_amount = models.FloatField(_("spend on the last purchase day"), null=True)
    late_total = models.FloatField(_("spend of the later half of purchase days"), null=True)
    early_total = models.FloatField(_("spend of the earlier half of purchase days"), null=True)

    class Meta:
        verbose_name = _("purchase summary")
        verbose_name_plural = _("purchase summaries")

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.n_days} purchase days"


class SummaryJournal(models.Model):
    """A customer whose orders changed since their summary was computed.

    Written by database triggers on the orders table (migration 0003), so every writer
    (services, importers, bulk updates, merges and their undo, erasure) is covered. A
    change to a listed customer bumps ``version``; the refresh deletes only the
    (customer, version) pairs it read, in the transaction that stores their summaries.
    """

    customer_id = models.BigIntegerField(_("customer"), primary_key=True)
    version = models.BigIntegerField(_("version"), default=0)

    class Meta:
        verbose_name = _("changed customer")
        verbose_name_plural = _("changed customers")

    def __str__(self) -> str:
        return f"{self.customer_id} (v{self.version})"
