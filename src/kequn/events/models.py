"""Behavioural events (page views, product views, carts, app screens), Segment-compatible."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from kequn.customers.models import Customer


class Event(models.Model):
    class Type(models.TextChoices):
        TRACK = "track", _("Track")
        PAGE = "page", _("Page")
        SCREEN = "screen", _("Screen")
        IDENTIFY = "identify", _("Identify")
        GROUP = "group", _("Group")
        ALIAS = "alias", _("Alias")

    type = models.CharField(_("type"), max_length=10, choices=Type.choices, default=Type.TRACK)
    name = models.CharField(
        _("event"), max_length=100, blank=True, help_text=_("e.g. Product Viewed, Product Added")
    )
    occurred_at = models.DateTimeField(_("occurred at"), default=timezone.now)
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="events",
        verbose_name=_("customer"),
    )
    anonymous_id = models.CharField(_("anonymous id"), max_length=100, blank=True)
    channel = models.CharField(_("channel"), max_length=50, blank=True)
    # NULL, not "", so that the unique constraint only applies to events that carry an id.
    message_id = models.CharField(_("message id"), max_length=100, null=True, blank=True)  # noqa: DJ001
    properties = models.JSONField(_("properties"), default=dict, blank=True)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["message_id"], name="event_unique_message_id")
        ]
        indexes = [
            models.Index(fields=["customer", "occurred_at"], name="event_customer_time_idx"),
            models.Index(fields=["occurred_at"], name="event_time_idx"),
            models.Index(fields=["name", "occurred_at"], name="event_name_time_idx"),
            models.Index(
                fields=["anonymous_id"], name="event_anonymous_idx", condition=~Q(anonymous_id="")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name or self.get_type_display()} @ {self.occurred_at:%Y-%m-%d %H:%M}"
