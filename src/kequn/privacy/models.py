"""Data-subject requests (PIPL articles 44–47, GDPR articles 15–21) and the suppression list."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from kequn.security.keyring.fields import EncryptedJSONField


class PrivacyRequest(models.Model):
    """One request of a person about their data: who asked, how they were checked, what was done."""

    class Type(models.TextChoices):
        EXPORT = "export", _("Access / export")
        CORRECTION = "correction", _("Correction")
        ERASURE = "erasure", _("Erasure")
        WITHDRAW_CONSENT = "withdraw_consent", _("Consent withdrawal")
        RESTRICT = "restrict", _("Restriction of processing")
        LIFT_RESTRICTION = "lift_restriction", _("Lifting a restriction")

    class Status(models.TextChoices):
        RECEIVED = "received", _("Received")
        VERIFIED = "verified", _("Identity verified")
        IN_PROGRESS = "in_progress", _("In progress")
        DONE = "done", _("Done")
        REJECTED = "rejected", _("Rejected")

    class Channel(models.TextChoices):
        EMAIL = "email", _("Email")
        PHONE = "phone", _("Phone")
        LETTER = "letter", _("Letter")
        IN_PERSON = "in_person", _("In person")
        WEB = "web", _("Web form")
        API = "api", _("API")
        OTHER = "other", _("Other")

    class IdentityMethod(models.TextChoices):
        ID_DOCUMENT = "id_document", _("Identity document seen")
        EMAIL_CODE = "email_code", _("Code sent to the email on record")
        SMS_CODE = "sms_code", _("Code sent to the phone on record")
        ACCOUNT_LOGIN = "account_login", _("Signed in to their account")
        IN_PERSON = "in_person", _("Known in person")
        OTHER = "other", _("Other (see notes)")

    OPEN_STATUSES = (Status.RECEIVED, Status.VERIFIED, Status.IN_PROGRESS)

    type = models.CharField(_("type"), max_length=20, choices=Type.choices)
    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="privacy_requests",
        verbose_name=_("customer"),
    )
    # Survives erasure: a bare number that no longer leads to a person.
    subject_ref = models.PositiveBigIntegerField(
        _("customer number"),
        null=True,
        blank=True,
        help_text=_("The customer's id at the time of the request; kept after erasure."),
    )
    channel = models.CharField(
        _("received through"), max_length=10, choices=Channel.choices, default=Channel.EMAIL
    )
    identity_method = models.CharField(
        _("identity check"), max_length=20, choices=IdentityMethod.choices, blank=True
    )
    identity_verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("identity verified by"),
    )
    identity_verified_at = models.DateTimeField(_("identity verified at"), null=True, blank=True)
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    deadline = models.DateTimeField(_("deadline"))
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.RECEIVED
    )
    rejection_reason = models.TextField(_("reason for rejection"), blank=True)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("handled by"),
    )
    notes = models.TextField(_("notes"), blank=True)
    # Encrypted: a correction holds the new personal values (e.g. a birthday) until it is done.
    parameters = EncryptedJSONField(
        _("what was asked"),
        default=dict,
        blank=True,
        help_text=_(
            'Correction: {"fields": {...}}; consent withdrawal: {"channels": [...], '
            '"purposes": [...]}. New values of a correction are dropped once applied.'
        ),
    )
    result = models.JSONField(_("result"), default=dict, blank=True)
    result_file = models.CharField(_("result file"), max_length=500, blank=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by"),
    )

    class Meta:
        verbose_name = _("data-subject request")
        verbose_name_plural = _("data-subject requests")
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["status", "deadline"], name="privacyrequest_open_idx"),
            models.Index(fields=["customer"], name="privacyrequest_customer_idx"),
        ]

    def __str__(self) -> str:
        return _("Request #%(id)s (%(type)s)") % {"id": self.pk, "type": self.get_type_display()}

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    @property
    def is_overdue(self) -> bool:
        return self.is_open and self.deadline is not None and self.deadline < timezone.now()

    @property
    def is_identity_verified(self) -> bool:
        return self.identity_verified_at is not None


class Suppression(models.Model):
    """An identity of an erased person, as a keyed hash only, so imports and events skip them."""

    kind = models.CharField(_("type"), max_length=10)
    key_hash = models.CharField(_("keyed hash"), max_length=64, unique=True)
    request = models.ForeignKey(
        PrivacyRequest,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="suppressions",
        verbose_name=_("request"),
    )
    request_ref = models.PositiveBigIntegerField(_("request number"), null=True, blank=True)
    created_at = models.DateTimeField(_("suppressed at"), default=timezone.now)

    class Meta:
        verbose_name = _("suppressed identity")
        verbose_name_plural = _("suppression list")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.key_hash[:12]}…"
