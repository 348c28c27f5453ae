"""Monitoring: security alerts and the state the alert rules keep between runs."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Alert(models.Model):
    """Something unusual a rule noticed, with the audit entries behind it."""

    class Severity(models.TextChoices):
        INFO = "info", _("Information")
        WARNING = "warning", _("Warning")
        CRITICAL = "critical", _("Critical")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        ACKNOWLEDGED = "acknowledged", _("Acknowledged")
        RESOLVED = "resolved", _("Resolved")

    rule = models.CharField(_("rule"), max_length=40, db_index=True)
    severity = models.CharField(
        _("severity"), max_length=10, choices=Severity.choices, default=Severity.WARNING
    )
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.OPEN, db_index=True
    )
    title = models.CharField(_("title"), max_length=300)
    # Staff user names and client addresses, never a customer's personal data.
    subject_user = models.CharField(_("user"), max_length=150, blank=True)
    subject_ip = models.GenericIPAddressField(_("address"), null=True, blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True)
    audit_entries = models.JSONField(
        _("audit entries"),
        default=list,
        blank=True,
        help_text=_("Sequence numbers of the audit entries behind the alert."),
    )
    # The same finding (rule, subject, period) raises one alert, however often rules run.
    fingerprint = models.CharField(_("fingerprint"), max_length=200, unique=True)
    created_at = models.DateTimeField(_("raised at"), auto_now_add=True, db_index=True)
    notified_at = models.DateTimeField(_("notified at"), null=True, blank=True)
    notify_error = models.CharField(_("notification error"), max_length=500, blank=True)
    acknowledged_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)
    acknowledged_by = models.CharField(_("acknowledged by"), max_length=150, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    resolved_by = models.CharField(_("resolved by"), max_length=150, blank=True)
    note = models.TextField(_("note"), blank=True)

    class Meta:
        verbose_name = _("security alert")
        verbose_name_plural = _("security alerts")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"


class RuleState(models.Model):
    """When a rule last ran, and what it must remember (such as the last verified chain head)."""

    rule = models.CharField(_("rule"), max_length=40, unique=True)
    last_run_at = models.DateTimeField(_("last run at"), null=True, blank=True)
    data = models.JSONField(_("data"), default=dict, blank=True)

    class Meta:
        verbose_name = _("alert rule state")
        verbose_name_plural = _("alert rule states")

    def __str__(self) -> str:
        return self.rule
