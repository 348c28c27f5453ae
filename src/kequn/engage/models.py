"""Engagement: templates, campaigns and their runs, the audience snapshot, the outbox, suppressions."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from kequn.customers.models import Customer
from kequn.security.keyring.fields import EncryptedCharField
from kequn.segments.models import Segment

CHANNEL_CHOICES = [
    ("email", _("Email")),
    ("sms", _("SMS")),
    ("wechat", _("WeChat")),
    ("webhook", _("Webhook")),
]


class Purpose(models.TextChoices):
    MARKETING = "marketing", _("Marketing")
    TRANSACTIONAL = "transactional", _("Transactional")


class Template(models.Model):
    """A message's content in Chinese and English; the customer's language picks one."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    channel = models.CharField(_("channel"), max_length=10, choices=CHANNEL_CHOICES)
    purpose = models.CharField(
        _("purpose"), max_length=16, choices=Purpose.choices, default=Purpose.MARKETING
    )
    subject_zh = models.CharField(_("subject (Chinese)"), max_length=300, blank=True)
    body_zh = models.TextField(_("body (Chinese)"), blank=True)
    subject_en = models.CharField(_("subject (English)"), max_length=300, blank=True)
    body_en = models.TextField(_("body (English)"), blank=True)
    template_code = models.CharField(
        _("provider template code"),
        max_length=100,
        blank=True,
        help_text=_("SMS provider template code or WeChat template id."),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("message template")
        verbose_name_plural = _("message templates")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_content(self, language: str) -> tuple[str, str]:
        """Return (subject, body) in the language (English for "en*", else Chinese)."""
        if language.startswith("en") and self.body_en:
            return self.subject_en, self.body_en
        if self.body_zh:
            return self.subject_zh, self.body_zh
        return self.subject_en, self.body_en


class Campaign(models.Model):
    """A send to a segment: once now, at a time, or recurring; measured against a holdout."""

    class Schedule(models.TextChoices):
        NOW = "now", _("Once, now")
        AT = "at", _("Once, at a time")
        DAILY = "daily", _("Every day")
        WEEKLY = "weekly", _("Every week")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SCHEDULED = "scheduled", _("Scheduled")
        SENDING = "sending", _("Sending")
        TESTING = "testing", _("A/B test running")
        SENT = "sent", _("Sent")
        PAUSED = "paused", _("Paused")
        FAILED = "failed", _("Failed")

    name = models.CharField(_("name"), max_length=200, unique=True)
    segment = models.ForeignKey(
        Segment,
        on_delete=models.SET_NULL,  # a deleted segment stops the campaign with a clear error
        null=True,
        blank=True,
        related_name="campaigns",
        verbose_name=_("segment"),
    )
    segment_name = models.CharField(_("segment name"), max_length=200, blank=True, editable=False)
    channel = models.CharField(_("channel"), max_length=10, choices=CHANNEL_CHOICES)
    template = models.ForeignKey(
        Template, on_delete=models.PROTECT, related_name="campaigns", verbose_name=_("template")
    )
    schedule = models.CharField(
        _("schedule"), max_length=8, choices=Schedule.choices, default=Schedule.NOW
    )
    next_run_at = models.DateTimeField(_("next run at"), null=True, blank=True)
    holdout_percent = models.PositiveSmallIntegerField(_("holdout %"), default=10)
    conversion_days = models.PositiveSmallIntegerField(_("conversion window (days)"), default=7)
    # A/B: this share of the audience is split among the variants; the rest gets the winner.
    ab_test_percent = models.PositiveSmallIntegerField(_("A/B test share %"), default=0)
    ab_window_hours = models.PositiveIntegerField(_("A/B test window (hours)"), default=24)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.DRAFT
    )
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["-id"]
        permissions = [("send_campaign", _("Can send campaigns"))]

    def __str__(self) -> str:
        return self.name

    @property
    def is_recurring(self) -> bool:
        return self.schedule in (self.Schedule.DAILY, self.Schedule.WEEKLY)


class Variant(models.Model):
    """One A/B variant of a campaign (its own template)."""

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="variants", verbose_name=_("campaign")
    )
    label = models.CharField(_("label"), max_length=10)
    template = models.ForeignKey(
        Template, on_delete=models.PROTECT, related_name="variants", verbose_name=_("template")
    )

    class Meta:
        verbose_name = _("variant")
        verbose_name_plural = _("variants")
        ordering = ["campaign", "label"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "label"], name="variant_unique_label")
        ]

    def __str__(self) -> str:
        return f"{self.campaign} / {self.label}"


class Run(models.Model):
    """One evaluation of a campaign's audience and its send (a recurring campaign has many)."""

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="runs", verbose_name=_("campaign")
    )
    number = models.PositiveIntegerField(_("run"))
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    audience = models.PositiveIntegerField(_("audience"), default=0)
    # Skips decided at evaluation, by reason ({"no_consent": 3, ...}); send-time skips are on
    # the messages themselves.
    skipped = models.JSONField(_("skipped"), default=dict, blank=True)
    # A/B: when the test window closes and which variant won.
    test_ends_at = models.DateTimeField(_("A/B test ends at"), null=True, blank=True)
    winner = models.CharField(_("winning variant"), max_length=10, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("campaign run")
        verbose_name_plural = _("campaign runs")
        ordering = ["campaign", "number"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "number"], name="run_unique_number")
        ]

    def __str__(self) -> str:
        return f"{self.campaign} #{self.number}"


class Recipient(models.Model):
    """A customer of a run's audience and the group they fell in (the measurement's snapshot)."""

    class Group(models.TextChoices):
        TARGET = "target", _("Target")
        HOLDOUT = "holdout", _("Holdout")
        CONTROL = "control", _("Global control group")
        SKIPPED = "skipped", _("Skipped")
        WAITING = "waiting", _("Waiting for the A/B winner")

    run = models.ForeignKey(
        Run, on_delete=models.CASCADE, related_name="recipients", verbose_name=_("run")
    )
    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="campaign_recipients",
        verbose_name=_("customer"),
    )
    group = models.CharField(_("group"), max_length=8, choices=Group.choices)
    variant = models.CharField(_("variant"), max_length=10, blank=True)
    skip_reason = models.CharField(_("skip reason"), max_length=20, blank=True)
    # When the group was fixed: the send time for the target, the would-be time for the holdout.
    assigned_at = models.DateTimeField(_("assigned at"), default=timezone.now)

    class Meta:
        verbose_name = _("campaign recipient")
        verbose_name_plural = _("campaign recipients")
        constraints = [models.UniqueConstraint(fields=["run", "customer"], name="recipient_unique")]
        indexes = [models.Index(fields=["customer"], name="recipient_customer_idx")]

    def __str__(self) -> str:
        return f"{self.run} → #{self.customer_id} ({self.group})"


class Message(models.Model):
    """The outbox: one message to one customer; the worker claims, sends and marks it."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        HELD = "held", _("Held (quiet hours, caps or A/B)")
        SENDING = "sending", _("Sending")
        RETRYING = "retrying", _("Retrying")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Skipped")

    campaign = models.ForeignKey(
        Campaign,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="messages",
        verbose_name=_("campaign"),
    )
    run = models.ForeignKey(
        Run,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="messages",
        verbose_name=_("run"),
    )
    source = models.CharField(
        _("source"), max_length=100, help_text=_("campaign:ID, journey:ID or the caller's name.")
    )
    dedupe_key = models.CharField(_("deduplication key"), max_length=200, unique=True)
    # Null once the person is erased: the row stays for the counts, without the person.
    customer = models.ForeignKey(
        Customer,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="engage_messages",
        verbose_name=_("customer"),
    )
    template = models.ForeignKey(
        Template, on_delete=models.PROTECT, related_name="messages", verbose_name=_("template")
    )
    variant = models.CharField(_("variant"), max_length=10, blank=True)
    channel = models.CharField(_("channel"), max_length=10, choices=CHANNEL_CHOICES)
    purpose = models.CharField(_("purpose"), max_length=16, choices=Purpose.choices)
    address = EncryptedCharField(_("address"), max_length=255, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.QUEUED
    )
    skip_reason = models.CharField(_("skip reason"), max_length=20, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), default=timezone.now)
    # A claim by a worker lasts until then; a message still "sending" after it was claimed by
    # a worker that died, and is sent again (the claim lapsed without an answer recorded).
    claimed_until = models.DateTimeField(_("claimed until"), null=True, blank=True)
    claim_token = models.CharField(_("claim"), max_length=32, blank=True, editable=False)
    provider_id = models.CharField(_("provider id"), max_length=200, blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    opened_at = models.DateTimeField(_("opened at"), null=True, blank=True)
    clicked_at = models.DateTimeField(_("clicked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="message_due_idx",
                condition=Q(status__in=["queued", "held", "retrying", "sending"]),
            ),
            models.Index(fields=["campaign", "status"], name="message_campaign_idx"),
            models.Index(fields=["customer", "sent_at"], name="message_customer_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.source} → #{self.customer_id} ({self.status})"


class Suppression(models.Model):
    """An address that must not be sent to again (hard bounce, complaint), by its keyed hash."""

    channel = models.CharField(_("channel"), max_length=10, choices=CHANNEL_CHOICES)
    address_hash = models.CharField(_("address hash"), max_length=64)
    reason = models.CharField(_("reason"), max_length=200)
    created_at = models.DateTimeField(_("suppressed at"), default=timezone.now)

    class Meta:
        verbose_name = _("suppressed address")
        verbose_name_plural = _("suppressed addresses")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "address_hash"], name="engage_suppression_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.address_hash[:12]}…"
