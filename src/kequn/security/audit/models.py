"""The audit trail: append-only entries, each chained to the previous one by an HMAC."""

from __future__ import annotations

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AuditEntryError(Exception):
    """Raised when code tries to change or delete an audit entry."""


class AuditEntry(models.Model):
    """One recorded event; never updated or deleted once written."""

    sequence = models.BigIntegerField(_("sequence"), unique=True, editable=False)
    created_at = models.DateTimeField(_("time"), default=timezone.now, editable=False)
    # A snapshot, not a foreign key: users get deleted, their trail must stay.
    actor_id = models.BigIntegerField(_("actor id"), null=True, blank=True, editable=False)
    actor_username = models.CharField(_("actor"), max_length=150, blank=True, editable=False)
    action = models.CharField(_("action"), max_length=40, editable=False)
    target_type = models.CharField(_("target type"), max_length=100, blank=True, editable=False)
    target_id = models.CharField(_("target id"), max_length=100, blank=True, editable=False)
    detail = models.JSONField(_("detail"), default=dict, encoder=DjangoJSONEncoder, editable=False)
    ip_address = models.GenericIPAddressField(
        _("IP address"), null=True, blank=True, editable=False
    )
    user_agent = models.CharField(_("user agent"), max_length=300, blank=True, editable=False)
    request_path = models.CharField(_("request path"), max_length=500, blank=True, editable=False)
    prev_mac = models.CharField(_("previous MAC"), max_length=64, editable=False)
    mac = models.CharField(_("MAC"), max_length=64, editable=False)

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")
        ordering = ["-sequence"]
        indexes = [
            models.Index(fields=["action", "created_at"], name="audit_action_time"),
            models.Index(fields=["actor_username", "created_at"], name="audit_actor_time"),
            models.Index(fields=["target_type", "target_id"], name="audit_target"),
            models.Index(fields=["created_at"], name="audit_time"),
        ]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.action} {self.target_type} {self.target_id}".strip()

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise AuditEntryError(_("Audit entries are append-only and cannot be changed."))
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditEntryError(_("Audit entries are append-only and cannot be deleted."))
