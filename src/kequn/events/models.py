"""Behavioural events (page views, product views, carts, app screens), Segment-compatible."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from kequn.customers.models import Customer
from kequn.events.fields import PropertiesField
from kequn.events.personal import reveal_personal
from kequn.security.keyring.fields import EncryptedJSONField
from kequn.security.masking import ADDRESS, EMAIL, FIELD_GROUPS, PHONE


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
    # Indexed by event_customer_time_idx, which leads with the customer.
    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        db_index=False,
        related_name="events",
        verbose_name=_("customer"),
    )
    anonymous_id = models.CharField(_("anonymous id"), max_length=100, blank=True)
    channel = models.CharField(_("channel"), max_length=50, blank=True)
    # NULL, not "", so that the unique constraint only applies to events that carry an id.
    message_id = models.CharField(_("message id"), max_length=100, null=True, blank=True)  # noqa: DJ001
    properties = PropertiesField(_("properties"), default=dict, blank=True)
    # Emails, phones and addresses found in the properties (see events.personal), encrypted;
    # declared after `properties`, whose pre_save fills it.
    personal_properties = EncryptedJSONField(
        _("personal data in the properties"), null=True, blank=True, editable=False
    )

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
        return f"{self.name or self.get_type_display()} @ {timezone.localtime(self.occurred_at):%Y-%m-%d %H:%M}"

    def get_shown_properties(self, groups: frozenset[str]) -> dict:
        """Return the properties as a viewer with these unmasked field groups may see them."""
        return reveal_personal(self.properties, self.personal_properties, get_visible_kinds(groups))


def get_visible_kinds(groups: frozenset[str]) -> set[str]:
    """Return the kinds of personal property values shown in clear to these field groups."""
    visible = {g for g in (EMAIL, PHONE, ADDRESS) if g in groups}
    if set(FIELD_GROUPS) <= set(groups):
        visible.add("mixed")  # text holding several kinds, or a subtree too deep to inspect
    return visible


class Source(models.Model):
    """A sender of events (web site, app, server); only the SHA-256 of its write key is kept."""

    class KeyType(models.TextChoices):
        # Client keys ship inside web pages and apps, so anyone can read them: their traits
        # only fill gaps. Server keys stay on the sender's servers and may correct profiles.
        CLIENT = "client", _("client (browser or app)")
        SERVER = "server", _("server")

    name = models.CharField(_("name"), max_length=100, unique=True)
    key_type = models.CharField(
        _("key type"),
        max_length=6,
        choices=KeyType.choices,
        default=KeyType.CLIENT,
        editable=False,
        help_text=_(
            "Client keys may only add facts to profiles; server keys may update them. "
            "Never put a server key in a web page or an app."
        ),
    )
    key_prefix = models.CharField(_("key prefix"), max_length=12, editable=False)
    key_digest = models.CharField(_("key digest"), max_length=64, unique=True, editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("event source")
        verbose_name_plural = _("event sources")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AnonymousLink(models.Model):
    """An anonymous id (device, browser) known to belong to a customer since identify/alias."""

    anonymous_id = models.CharField(_("anonymous id"), max_length=100, unique=True)
    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="anonymous_links",
        verbose_name=_("customer"),
    )
    source = models.ForeignKey(
        Source, on_delete=models.SET_NULL, null=True, blank=True, verbose_name=_("source")
    )
    created_at = models.DateTimeField(_("linked at"), default=timezone.now)

    class Meta:
        verbose_name = _("anonymous id link")
        verbose_name_plural = _("anonymous id links")

    def __str__(self) -> str:
        return f"{self.anonymous_id} → #{self.customer_id}"
