"""Precomputed dashboard aggregates, rewritten by services.refresh_dashboard()."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from kequn.commerce.models import Channel


class DashboardRefresh(models.Model):
    """One recomputation of the aggregates: when, on how much data, how long it took."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    started_at = models.DateTimeField(_("started at"))
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    as_of = models.DateTimeField(_("figures as of"))
    status = models.CharField(_("status"), max_length=8, choices=Status.choices)
    customers = models.PositiveIntegerField(_("customers"), default=0)
    purchases = models.PositiveIntegerField(_("purchases"), default=0)
    seconds = models.FloatField(_("seconds"), default=0)
    message = models.TextField(_("message"), blank=True)

    class Meta:
        verbose_name = _("dashboard refresh")
        verbose_name_plural = _("dashboard refreshes")
        ordering = ["-started_at"]
        permissions = [
            ("view_dashboard", _("Can view the dashboard and export it")),
            ("export_lists", _("Can export the customer, order and other lists to files")),
        ]

    def __str__(self) -> str:
        return f"{self.as_of:%Y-%m-%d %H:%M} {self.status}"


class KpiWindow(models.Model):
    """Headline numbers for one period length, one channel (null: all) and one time window."""

    period_days = models.PositiveSmallIntegerField(_("period (days)"))
    channel = models.ForeignKey(
        Channel,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("store or channel"),
    )
    is_current = models.BooleanField(_("current period"))
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"))
    customers = models.PositiveIntegerField(_("customers"), default=0)
    new_customers = models.PositiveIntegerField(_("new customers"), default=0)
    active_customers = models.PositiveIntegerField(_("active customers"), default=0)
    # Null when the stage history does not reach back to the end of the window.
    at_risk = models.PositiveIntegerField(_("at risk"), null=True)
    churned = models.PositiveIntegerField(_("churned"), null=True)
    purchases = models.PositiveIntegerField(_("purchases"), default=0)
    revenue = models.FloatField(_("revenue"), default=0)
    repeat_buyers = models.PositiveIntegerField(_("repeat buyers"), default=0)
    clv_total = models.FloatField(_("total CLV"), null=True)
    clv_customers = models.PositiveIntegerField(_("customers with a CLV"), null=True)

    class Meta:
        verbose_name = _("KPI window")
        verbose_name_plural = _("KPI windows")
        indexes = [
            models.Index(fields=["period_days", "channel", "is_current"], name="kpi_lookup_idx")
        ]

    def __str__(self) -> str:
        return (
            f"{self.period_days}d {self.channel_id or '*'} {'cur' if self.is_current else 'prev'}"
        )


class ChartCell(models.Model):
    """One bar, heatmap cell or flow of a dashboard chart."""

    class Chart(models.TextChoices):
        RFM = "rfm", _("RFM grid")
        STAGES = "stages", _("Lifecycle stages")
        FLOWS = "flows", _("Stage flows")
        COHORTS = "cohorts", _("Cohort retention")
        CLV = "clv", _("CLV distribution")
        CHURN = "churn", _("Churn-risk distribution")
        PROVINCE = "province", _("Province")
        CITY = "city", _("City")
        TREND = "trend", _("Revenue and orders over time")

    chart = models.CharField(_("chart"), max_length=12, choices=Chart.choices)
    # 0 for charts that describe the present state rather than a period.
    period_days = models.PositiveSmallIntegerField(_("period (days)"), default=0)
    channel = models.ForeignKey(
        Channel,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("store or channel"),
    )
    x = models.CharField(_("x"), max_length=64)
    y = models.CharField(_("y"), max_length=64, blank=True)
    position = models.PositiveIntegerField(_("position"), default=0)
    customers = models.PositiveIntegerField(_("customers"), default=0)
    amount = models.FloatField(_("amount"), default=0)

    class Meta:
        verbose_name = _("chart cell")
        verbose_name_plural = _("chart cells")
        indexes = [models.Index(fields=["channel", "period_days"], name="chartcell_lookup_idx")]

    def __str__(self) -> str:
        return f"{self.chart} {self.x}/{self.y}"


class HistoryPoint(models.Model):
    """A value kept per day across refreshes, for changes and charts over time."""

    day = models.DateField(_("day"))
    channel = models.ForeignKey(
        Channel,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("store or channel"),
    )
    metric = models.CharField(_("metric"), max_length=32)
    key = models.CharField(_("key"), max_length=64, blank=True)
    value = models.FloatField(_("value"))

    class Meta:
        verbose_name = _("history point")
        verbose_name_plural = _("history points")
        indexes = [models.Index(fields=["metric", "channel", "day"], name="history_lookup_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.metric} {self.key}={self.value}"
