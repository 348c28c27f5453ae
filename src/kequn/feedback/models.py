"""Feedback: surveys (NPS, CSAT, CES, custom questions), invitations, answers, follow-ups."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from kequn.customers.models import Customer


class Survey(models.Model):
    """A questionnaire: its kind fixes the main scored question; more questions may follow."""

    class Kind(models.TextChoices):
        NPS = "nps", _("Net Promoter Score (0–10)")
        CSAT = "csat", _("Customer satisfaction (1–5)")
        CES = "ces", _("Customer effort (1–7)")
        CUSTOM = "custom", _("Custom questions only")

    class Trigger(models.TextChoices):
        MANUAL = "manual", _("Sent by hand or to a segment")
        TICKET_CLOSED = "ticket_closed", _("After a ticket is closed")
        ORDER_DELIVERED = "order_delivered", _("Some days after an order")

    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.NPS)
    # [{"key", "type": scale|choice|text, "text": {"zh-hans", "en"}, "min", "max", "options"}]
    questions = models.JSONField(_("further questions"), default=list, blank=True)
    trigger = models.CharField(
        _("sent when"), max_length=16, choices=Trigger.choices, default=Trigger.MANUAL
    )
    delay_days = models.PositiveSmallIntegerField(
        _("days after the order"), default=7, help_text=_("For surveys sent after an order.")
    )
    is_active = models.BooleanField(_("active"), default=True)
    valid_days = models.PositiveSmallIntegerField(
        _("link valid for (days)"), default=30, help_text=_("An invitation expires after this.")
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("survey")
        verbose_name_plural = _("surveys")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class Invitation(models.Model):
    """One customer asked to answer one survey, through a single-use link."""

    survey = models.ForeignKey(
        Survey, on_delete=models.CASCADE, related_name="invitations", verbose_name=_("survey")
    )
    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="survey_invitations",
        verbose_name=_("customer"),
    )
    # What the invitation is about ("ticket:12", "order:D-1001", "segment:3"); with the
    # survey and customer it makes sending the same invitation twice impossible.
    about = models.CharField(_("about"), max_length=64, blank=True)
    # The link is the id signed with the site's secret key over this random nonce: the
    # database alone cannot make a valid link, and a new nonce revokes the old one.
    nonce = models.CharField(max_length=32, editable=False)
    channel = models.CharField(_("channel"), max_length=10, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires at"))
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)

    class Meta:
        verbose_name = _("survey invitation")
        verbose_name_plural = _("survey invitations")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["survey", "customer", "about"], name="invitation_unique_about"
            )
        ]

    def __str__(self) -> str:
        return f"{self.survey} #{self.pk}"


class Response(models.Model):
    """The answer to one invitation (one per invitation), with what the text analysis found."""

    class Category(models.TextChoices):
        DETRACTOR = "detractor", _("Detractor")
        PASSIVE = "passive", _("Passive")
        PROMOTER = "promoter", _("Promoter")
        UNHAPPY = "unhappy", _("Unhappy")
        NEUTRAL = "neutral", _("Neutral")
        HAPPY = "happy", _("Happy")

    invitation = models.OneToOneField(
        Invitation, on_delete=models.CASCADE, related_name="response", verbose_name=_("invitation")
    )
    survey = models.ForeignKey(
        Survey, on_delete=models.CASCADE, related_name="responses", verbose_name=_("survey")
    )
    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="survey_responses",
        verbose_name=_("customer"),
    )
    score = models.SmallIntegerField(_("score"), null=True, blank=True)
    category = models.CharField(_("category"), max_length=10, choices=Category.choices, blank=True)
    answers = models.JSONField(_("answers"), default=dict, blank=True)
    comment = models.TextField(_("comment"), blank=True)
    language = models.CharField(_("language"), max_length=8, blank=True)
    sentiment = models.FloatField(_("sentiment"), null=True, blank=True)
    keywords = models.JSONField(_("keywords"), default=list, blank=True)
    topic = models.CharField(_("topic"), max_length=50, blank=True)
    answered_at = models.DateTimeField(_("answered at"), default=timezone.now)

    class Meta:
        verbose_name = _("survey response")
        verbose_name_plural = _("survey responses")
        ordering = ["-answered_at", "-id"]
        indexes = [models.Index(fields=["survey", "answered_at"], name="response_survey_time_idx")]

    def __str__(self) -> str:
        return f"{self.survey}: {self.score}"


class FollowUp(models.Model):
    """The closed loop: a poor answer opens a follow-up with a deadline until it is resolved."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        RESOLVED = "resolved", _("Resolved")

    response = models.OneToOneField(
        Response, on_delete=models.CASCADE, related_name="follow_up", verbose_name=_("response")
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.OPEN
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        verbose_name=_("owner"),
    )
    # The service ticket opened for it, when the service app took it (kept as an id so a
    # ticket's deletion never deletes the loop's history).
    ticket_id = models.BigIntegerField(_("ticket"), null=True, blank=True)
    due_at = models.DateTimeField(_("due at"))
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    note = models.TextField(_("note"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("follow-up")
        verbose_name_plural = _("follow-ups")
        ordering = ["due_at", "id"]

    def __str__(self) -> str:
        return f"{self.response} → {self.get_status_display()}"


class OptOut(models.Model):
    """A customer who asked not to be surveyed again."""

    customer = models.OneToOneField(
        Customer,
        on_delete=models.CASCADE,
        related_name="survey_opt_out",
        verbose_name=_("customer"),
    )
    source = models.CharField(_("source"), max_length=100, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("survey opt-out")
        verbose_name_plural = _("survey opt-outs")

    def __str__(self) -> str:
        return str(self.customer_id)
