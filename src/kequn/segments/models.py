"""Segments (dynamic rules or static snapshots), their members and history; tag rules; personas."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from kequn.customers.models import Customer, Tag


def default_rule() -> dict:
    return {"match": "all", "conditions": []}


class Segment(models.Model):
    class Kind(models.TextChoices):
        DYNAMIC = "dynamic", _("Dynamic (re-evaluated)")
        STATIC = "static", _("Static (snapshot)")

    name = models.CharField(_("name"), max_length=200, unique=True)
    description = models.TextField(_("description"), blank=True)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.DYNAMIC)
    rules = models.JSONField(
        _("rules"),
        default=default_rule,
        blank=True,
        help_text=_("Nested AND/OR groups of conditions; see the field list below the editor."),
    )
    member_count = models.PositiveIntegerField(_("members"), default=0)
    refreshed_at = models.DateTimeField(_("refreshed at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    # Set by a refresh that found the rule naming something deleted (a tag, category, product
    # or segment): the segment keeps its last members and is skipped until its rule is fixed.
    disabled_at = models.DateTimeField(_("disabled at"), null=True, blank=True)
    disabled_reason = models.JSONField(_("why disabled"), default=list, blank=True)

    class Meta:
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_dynamic(self) -> bool:
        return self.kind == self.Kind.DYNAMIC


class SegmentMember(models.Model):
    segment = models.ForeignKey(
        Segment, on_delete=models.CASCADE, related_name="members", verbose_name=_("segment")
    )
    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="segment_memberships",
        verbose_name=_("customer"),
    )
    added_at = models.DateTimeField(_("member since"), default=timezone.now)

    class Meta:
        verbose_name = _("segment member")
        verbose_name_plural = _("segment members")
        constraints = [
            models.UniqueConstraint(fields=["segment", "customer"], name="segmentmember_unique")
        ]
        indexes = [models.Index(fields=["customer"], name="segmentmember_customer_idx")]

    def __str__(self) -> str:
        return f"{self.segment_id}: {self.customer_id}"


class MembershipChange(models.Model):
    class Change(models.TextChoices):
        ENTERED = "entered", _("Entered")
        LEFT = "left", _("Left")

    segment = models.ForeignKey(
        Segment, on_delete=models.CASCADE, related_name="changes", verbose_name=_("segment")
    )
    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="segment_changes",
        verbose_name=_("customer"),
    )
    change = models.CharField(_("change"), max_length=8, choices=Change.choices)
    changed_at = models.DateTimeField(_("changed at"), default=timezone.now)

    class Meta:
        verbose_name = _("membership change")
        verbose_name_plural = _("membership changes")
        ordering = ["-changed_at", "-id"]
        indexes = [
            models.Index(fields=["segment", "changed_at"], name="segchange_segment_idx"),
            models.Index(fields=["customer", "changed_at"], name="segchange_customer_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.change} {self.segment_id}"


class SegmentSize(models.Model):
    """The size of a segment after one refresh, for the size chart."""

    segment = models.ForeignKey(
        Segment, on_delete=models.CASCADE, related_name="sizes", verbose_name=_("segment")
    )
    measured_at = models.DateTimeField(_("measured at"), default=timezone.now)
    size = models.PositiveIntegerField(_("size"))
    entered = models.PositiveIntegerField(_("entered"), default=0)
    left = models.PositiveIntegerField(_("left"), default=0)

    class Meta:
        verbose_name = _("segment size")
        verbose_name_plural = _("segment sizes")
        ordering = ["segment", "measured_at"]
        indexes = [models.Index(fields=["segment", "measured_at"], name="segsize_idx")]

    def __str__(self) -> str:
        return f"{self.segment_id} @ {timezone.localtime(self.measured_at):%Y-%m-%d}: {self.size}"


class TagRule(models.Model):
    """An automatic tag: its members are exactly the customers matching a rule."""

    tag = models.OneToOneField(
        Tag, on_delete=models.CASCADE, related_name="rule", verbose_name=_("tag")
    )
    rules = models.JSONField(_("rules"), default=default_rule)
    enabled = models.BooleanField(_("enabled"), default=True)
    refreshed_at = models.DateTimeField(_("refreshed at"), null=True, blank=True)
    member_count = models.PositiveIntegerField(_("members"), default=0)
    disabled_at = models.DateTimeField(_("disabled at"), null=True, blank=True)
    disabled_reason = models.JSONField(_("why disabled"), default=list, blank=True)

    class Meta:
        verbose_name = _("tag rule")
        verbose_name_plural = _("tag rules")

    def __str__(self) -> str:
        return str(self.tag)


class Persona(models.Model):
    """One cluster of customers found by `kequn segments personas`, described in words."""

    run_at = models.DateTimeField(_("found at"), default=timezone.now)
    label = models.PositiveSmallIntegerField(_("cluster"))
    k = models.PositiveSmallIntegerField(_("clusters in run"))
    silhouette = models.FloatField(_("silhouette"), null=True)
    size = models.PositiveIntegerField(_("customers"))
    description_en = models.CharField(_("description (English)"), max_length=300)
    description_zh = models.CharField(_("description (Chinese)"), max_length=300)
    centre = models.JSONField(_("centre"), default=dict)
    customer_ids = models.JSONField(_("customer ids"), default=list)
    segment = models.ForeignKey(
        Segment,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("saved as segment"),
    )

    class Meta:
        verbose_name = _("persona")
        verbose_name_plural = _("personas")
        ordering = ["-run_at", "label"]

    def __str__(self) -> str:
        return self.description_en
