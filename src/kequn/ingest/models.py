"""Import runs, quarantined rows, merges (undoable) and the match review queue.

Row values, merge snapshots and comparisons hold personal data: they are stored encrypted.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from kequn.customers.models import Customer
from kequn.security.keyring.fields import EncryptedCharField, EncryptedJSONField


class ImportRun(models.Model):
    class Kind(models.TextChoices):
        CUSTOMERS = "customers", _("Customers")
        ORDERS = "orders", _("Orders")
        PRODUCTS = "products", _("Products")
        EVENTS = "events", _("Events")

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        FINISHED = "finished", _("Finished")
        FAILED = "failed", _("Failed")
        DRY_RUN = "dry_run", _("Dry run")

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    file_name = models.CharField(_("file name"), max_length=255)
    checksum = models.CharField(_("checksum (SHA-256)"), max_length=64, db_index=True)
    source = models.CharField(_("source"), max_length=50, blank=True)
    mapping = models.JSONField(_("column mapping"), default=dict, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.RUNNING
    )
    rows_read = models.PositiveIntegerField(_("rows read"), default=0)
    inserted = models.PositiveIntegerField(_("inserted"), default=0)
    updated = models.PositiveIntegerField(_("updated"), default=0)
    unchanged = models.PositiveIntegerField(_("unchanged"), default=0)
    merged = models.PositiveIntegerField(_("merged"), default=0)
    review = models.PositiveIntegerField(_("sent to review"), default=0)
    quarantined = models.PositiveIntegerField(_("quarantined"), default=0)
    reasons = models.JSONField(_("quarantine reasons"), default=dict, blank=True)
    # Ids of the customers the run created, changed, merged or sent to review (for the result
    # page's links); no personal data.
    records = models.JSONField(_("changed records"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        verbose_name=_("started by"),
    )

    class Meta:
        verbose_name = _("import run")
        verbose_name_plural = _("import runs")
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        started = timezone.localtime(self.started_at)
        return f"{self.file_name} ({self.get_kind_display()}, {started:%Y-%m-%d %H:%M})"


class QuarantinedRow(models.Model):
    """A rejected input row, kept with its original values until fixed and re-imported."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        RESOLVED = "resolved", _("Re-imported")
        DISCARDED = "discarded", _("Discarded")

    run = models.ForeignKey(
        ImportRun,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="quarantined_rows",
        verbose_name=_("import run"),
    )
    kind = models.CharField(_("kind"), max_length=10, choices=ImportRun.Kind.choices)
    file_name = models.CharField(_("file name"), max_length=255)
    checksum = models.CharField(_("checksum (SHA-256)"), max_length=64)
    row_number = models.PositiveIntegerField(_("row number"))
    field = models.CharField(_("field"), max_length=50, blank=True)
    reason = models.CharField(_("reason"), max_length=40)
    # Messages quote the rejected value (e.g. the malformed email): encrypted as well.
    message = EncryptedCharField(_("message"), blank=True)
    values = EncryptedJSONField(_("original values"), default=dict)
    mapping = models.JSONField(_("column mapping"), default=dict)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.OPEN
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)

    class Meta:
        verbose_name = _("quarantined row")
        verbose_name_plural = _("quarantined rows")
        ordering = ["file_name", "row_number"]
        constraints = [
            # The same row of the same file is quarantined once, however often it is imported.
            models.UniqueConstraint(
                fields=["checksum", "kind", "row_number"], name="quarantine_unique_row"
            )
        ]
        indexes = [models.Index(fields=["status", "reason"], name="quarantine_status_idx")]

    def __str__(self) -> str:
        return f"{self.file_name}:{self.row_number} {self.reason}"


class Merge(models.Model):
    """One record absorbed into another; the snapshot holds what undo needs to restore."""

    target = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="+", verbose_name=_("kept record")
    )
    absorbed = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="+", verbose_name=_("absorbed record")
    )
    rule = models.CharField(_("rule"), max_length=100)
    score = models.FloatField(_("match probability"), null=True, blank=True)
    snapshot = EncryptedJSONField(_("snapshot"), default=dict)
    created_at = models.DateTimeField(_("merged at"), default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("merged by"),
    )
    actor = models.CharField(_("merged by (process)"), max_length=100, blank=True)
    undone_at = models.DateTimeField(_("undone at"), null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("undone by"),
    )

    class Meta:
        verbose_name = _("merge")
        verbose_name_plural = _("merges")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["target"], name="merge_target_idx"),
            models.Index(fields=["absorbed"], name="merge_absorbed_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.absorbed_id} → #{self.target_id} ({self.rule})"


class MatchCandidate(models.Model):
    """A probable duplicate pair waiting for a person to accept or reject it."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        ACCEPTED = "accepted", _("Accepted")
        REJECTED = "rejected", _("Rejected")

    left = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="+", verbose_name=_("record A")
    )
    right = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="+", verbose_name=_("record B")
    )
    score = models.FloatField(_("match probability"))
    details = EncryptedJSONField(_("comparison"), default=dict, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    created_at = models.DateTimeField(_("found at"), default=timezone.now)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("decided by"),
    )
    merge = models.ForeignKey(
        Merge, on_delete=models.SET_NULL, null=True, blank=True, verbose_name=_("merge")
    )

    class Meta:
        verbose_name = _("possible duplicate")
        verbose_name_plural = _("review queue")
        ordering = ["status", "-score"]
        constraints = [
            models.UniqueConstraint(fields=["left", "right"], name="matchcandidate_unique_pair")
        ]

    def __str__(self) -> str:
        return f"#{self.left_id} ~ #{self.right_id} ({self.score:.2f})"
