"""Tables of the keyring area: the data keys, each wrapped with the master key."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class DataKey(models.Model):
    """One version of the data key of one encrypted field, wrapped (AES-GCM) by the master key."""

    purpose = models.CharField(
        _("field"), max_length=100, help_text=_("The encrypted column, as app.model.field.")
    )
    version = models.PositiveIntegerField(_("version"))
    wrapped_key = models.CharField(_("wrapped key"), max_length=200, editable=False)
    is_active = models.BooleanField(
        _("active"), default=False, help_text=_("New values of the field are encrypted with it.")
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    rotated_at = models.DateTimeField(
        _("replaced at"),
        null=True,
        blank=True,
        help_text=_("When a newer version took over; kept to decrypt rows until re-encrypted."),
    )

    class Meta:
        verbose_name = _("data key")
        verbose_name_plural = _("data keys")
        ordering = ["purpose", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["purpose", "version"], name="datakey_unique_version"),
            models.UniqueConstraint(
                fields=["purpose"], condition=models.Q(is_active=True), name="datakey_one_active"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.purpose} v{self.version}"
