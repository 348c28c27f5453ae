"""Stored recommendations per customer, "customers also bought" per product, training runs."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from kequn.commerce.models import Product
from kequn.customers.models import Customer


class Recommendation(models.Model):
    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="recommendations",
        verbose_name=_("customer"),
    )
    product = models.ForeignKey(
        Product, on_delete=models.CASCADE, related_name="+", verbose_name=_("product")
    )
    rank = models.PositiveSmallIntegerField(_("rank"))
    score = models.FloatField(_("score"))
    source = models.CharField(
        _("source"), max_length=32, help_text=_("Model or fallback that produced it.")
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("recommendation")
        verbose_name_plural = _("recommendations")
        ordering = ["customer", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "rank"], name="recommendation_unique_rank")
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} #{self.rank}: {self.product_id}"


class AlsoBought(models.Model):
    """Products bought by the customers who bought a product, strongest first."""

    product = models.ForeignKey(
        Product, on_delete=models.CASCADE, related_name="also_bought", verbose_name=_("product")
    )
    other = models.ForeignKey(
        Product, on_delete=models.CASCADE, related_name="+", verbose_name=_("also bought")
    )
    rank = models.PositiveSmallIntegerField(_("rank"))
    score = models.FloatField(_("similarity"))

    class Meta:
        verbose_name = _("customers also bought")
        verbose_name_plural = _("customers also bought")
        ordering = ["product", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["product", "rank"], name="alsobought_unique_rank")
        ]

    def __str__(self) -> str:
        return f"{self.product_id} → {self.other_id}"


class TrainingRun(models.Model):
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    model = models.CharField(_("chosen model"), max_length=32, blank=True)
    customers = models.PositiveIntegerField(_("customers"), default=0)
    interactions = models.PositiveIntegerField(_("interactions"), default=0)
    metrics = models.JSONField(_("offline evaluation"), default=dict, blank=True)
    message = models.TextField(_("message"), blank=True)

    class Meta:
        verbose_name = _("recommendation training run")
        verbose_name_plural = _("recommendation training runs")
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{timezone.localtime(self.started_at):%Y-%m-%d %H:%M} {self.model}"
