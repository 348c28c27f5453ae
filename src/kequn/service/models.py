"""Service: the tables."""

from __future__ import annotations

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from kequn.commerce.models import Order, Product
from kequn.conf import get_data_dir
from kequn.customers.models import Customer


class Priority(models.TextChoices):
    LOW = "low", pgettext_lazy("ticket priority", "Low")
    NORMAL = "normal", pgettext_lazy("ticket priority", "Normal")
    HIGH = "high", pgettext_lazy("ticket priority", "High")
    URGENT = "urgent", pgettext_lazy("ticket priority", "Urgent")


class TicketType(models.TextChoices):
    COMPLAINT = "complaint", pgettext_lazy("ticket type", "Complaint")
    INQUIRY = "inquiry", pgettext_lazy("ticket type", "Inquiry")
    RETURN = "return", pgettext_lazy("ticket type", "Return or repair")
    SUGGESTION = "suggestion", pgettext_lazy("ticket type", "Suggestion")


class Status(models.TextChoices):
    NEW = "new", pgettext_lazy("ticket status", "New")
    OPEN = "open", pgettext_lazy("ticket status", "Open")
    WAITING = "waiting", pgettext_lazy("ticket status", "Waiting on customer")
    RESOLVED = "resolved", pgettext_lazy("ticket status", "Resolved")
    CLOSED = "closed", pgettext_lazy("ticket status", "Closed")
    REOPENED = "reopened", pgettext_lazy("ticket status", "Reopened")


# Statuses in which the ticket still needs work (the SLA clock runs unless waiting).
OPEN_STATUSES = (Status.NEW, Status.OPEN, Status.WAITING, Status.REOPENED)
OPEN_CONDITION = models.Q(status__in=["new", "open", "waiting", "reopened"])


class Source(models.TextChoices):
    PHONE = "phone", _("Phone call")
    STORE = "store", _("Store visit")
    EMAIL = "email", _("Email")
    WEB = "web", _("Web form")
    API = "api", _("API")
    SURVEY = "survey", _("Survey answer")


class SlaState(models.TextChoices):
    NONE = "", pgettext_lazy("SLA state", "No SLA")
    OK = "ok", pgettext_lazy("SLA state", "On time")
    WARNING = "warning", pgettext_lazy("SLA state", "Due soon")
    BREACHED = "breached", pgettext_lazy("SLA state", "Breached")
    PAUSED = "paused", pgettext_lazy("SLA state", "Paused")


class BusinessCalendar(models.Model):
    """Working hours per weekday, a country's holidays and the operator's own days."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    country = models.CharField(
        _("country"),
        max_length=2,
        default="CN",
        blank=True,
        help_text=_("ISO code whose public holidays close the day (CN includes 调休 workdays)"),
    )
    time_zone = models.CharField(_("time zone"), max_length=64, default="Asia/Shanghai")
    hours = models.JSONField(
        _("working hours"),
        help_text=_('Per weekday, e.g. {"mon": [["09:00", "12:00"], ["13:00", "18:00"]], ...}'),
    )

    class Meta:
        verbose_name = _("business calendar")
        verbose_name_plural = _("business calendars")

    def __str__(self) -> str:
        return self.name


class CalendarDay(models.Model):
    """The operator's entry for one date: closed, or open with its own hours."""

    calendar = models.ForeignKey(
        BusinessCalendar, on_delete=models.CASCADE, related_name="days", verbose_name=_("calendar")
    )
    date = models.DateField(_("date"))
    is_workday = models.BooleanField(_("working day"), default=False)
    hours = models.JSONField(
        _("hours"), default=list, blank=True, help_text=_('e.g. [["09:00", "18:00"]]')
    )
    name = models.CharField(_("name"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("calendar day")
        verbose_name_plural = _("calendar days")
        constraints = [
            models.UniqueConstraint(fields=["calendar", "date"], name="service_day_unique")
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.name}"


class Queue(models.Model):
    """A team's line of tickets; new tickets go round robin to its members."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    email_address = models.EmailField(_("inbound address"), blank=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="service_queues",
        verbose_name=_("members"),
    )
    last_assigned = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("last assigned"),
    )

    class Meta:
        verbose_name = _("queue")
        verbose_name_plural = _("queues")

    def __str__(self) -> str:
        return self.name


class SlaPolicy(models.Model):
    """Response and resolution targets for the tickets its conditions match (first match wins)."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    position = models.PositiveIntegerField(_("position"), default=100)
    is_active = models.BooleanField(_("active"), default=True)
    calendar = models.ForeignKey(
        BusinessCalendar, on_delete=models.PROTECT, related_name="+", verbose_name=_("calendar")
    )
    priorities = models.JSONField(
        _("priorities"), default=list, blank=True, help_text=_("empty = any priority")
    )
    types = models.JSONField(_("types"), default=list, blank=True, help_text=_("empty = any type"))
    queues = models.ManyToManyField(
        Queue, blank=True, related_name="+", verbose_name=_("queues"), help_text=_("none = any")
    )
    first_response_minutes = models.PositiveIntegerField(
        _("first response (working minutes)"), null=True, blank=True
    )
    next_response_minutes = models.PositiveIntegerField(
        _("next response (working minutes)"), null=True, blank=True
    )
    resolution_minutes = models.PositiveIntegerField(
        _("resolution (working minutes)"), null=True, blank=True
    )
    warn_minutes = models.PositiveIntegerField(
        _("warn before the deadline (working minutes)"), default=60
    )
    escalate_to = models.ForeignKey(
        Queue,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("escalate to queue"),
    )

    class Meta:
        ordering = ["position", "id"]
        verbose_name = _("SLA policy")
        verbose_name_plural = _("SLA policies")

    def __str__(self) -> str:
        return self.name


class Ticket(models.Model):
    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="tickets",
        verbose_name=_("customer"),
    )
    subject = models.CharField(_("subject"), max_length=300)
    type = models.CharField(
        _("type"), max_length=20, choices=TicketType.choices, default=TicketType.INQUIRY
    )
    priority = models.CharField(
        _("priority"), max_length=10, choices=Priority.choices, default=Priority.NORMAL
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.NEW
    )
    source = models.CharField(
        _("source"), max_length=10, choices=Source.choices, default=Source.API
    )
    queue = models.ForeignKey(
        Queue,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tickets",
        verbose_name=_("queue"),
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="service_tickets",
        verbose_name=_("assignee"),
    )
    product = models.ForeignKey(
        Product, on_delete=models.SET_NULL, null=True, blank=True, verbose_name=_("product")
    )
    order = models.ForeignKey(
        Order, on_delete=models.SET_NULL, null=True, blank=True, verbose_name=_("order")
    )
    # The address an emailed ticket came from (personal data: masked as an email).
    from_address = models.CharField(_("from address"), max_length=254, blank=True)
    merged_into = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="merged",
        verbose_name=_("merged into"),
    )
    opened_at = models.DateTimeField(_("opened at"))
    first_responded_at = models.DateTimeField(_("first response at"), null=True, blank=True)
    last_customer_message_at = models.DateTimeField(
        _("last customer message at"), null=True, blank=True
    )
    last_agent_message_at = models.DateTimeField(_("last agent reply at"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    # SLA: the policy applied, its deadlines, the clock's pause.
    sla_policy = models.ForeignKey(
        SlaPolicy,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("SLA policy"),
    )
    first_response_due = models.DateTimeField(_("first response due"), null=True, blank=True)
    next_response_due = models.DateTimeField(_("next response due"), null=True, blank=True)
    resolution_due = models.DateTimeField(_("resolution due"), null=True, blank=True)
    paused_at = models.DateTimeField(_("SLA paused at"), null=True, blank=True)
    paused_minutes = models.FloatField(_("working minutes paused"), default=0)
    sla_state = models.CharField(
        _("SLA state"), max_length=10, choices=SlaState.choices, default="", blank=True
    )
    # The earliest deadline still running (None when none runs): the SLA check's index.
    next_due = models.DateTimeField(_("next deadline"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
        # The lists' filters with their sort: the API pages by id, the back office by opening
        # time, an agent's work by the soonest deadline (benchmarks/service_ticket_list.py).
        indexes = [
            models.Index(fields=["status", "priority", "-id"], name="service_tk_status"),
            models.Index(
                fields=["queue", "-id"], name="service_tk_queue_open", condition=OPEN_CONDITION
            ),
            models.Index(
                fields=["assignee", "next_due"],
                name="service_tk_agent_open",
                condition=OPEN_CONDITION,
            ),
            models.Index(fields=["type", "status", "-opened_at"], name="service_tk_type"),
            models.Index(fields=["customer", "-opened_at"], name="service_tk_customer"),
            models.Index(fields=["next_due"], name="service_tk_next_due"),
            models.Index(fields=["-opened_at"], name="service_tk_opened"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.subject}"

    @property
    def reference(self) -> str:
        """Return the tag that threads email replies: "[#123]"."""
        return f"[#{self.pk}]"

    @property
    def is_open(self) -> bool:
        """Return whether the ticket still needs work."""
        return self.status in OPEN_STATUSES


class TicketMessage(models.Model):
    class Kind(models.TextChoices):
        CUSTOMER = "customer", _("From the customer")
        REPLY = "reply", _("Reply to the customer")
        NOTE = "note", _("Internal note")

    class Delivery(models.TextChoices):
        NONE = "", _("Not sent")
        PENDING = "pending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    ticket = models.ForeignKey(
        Ticket, on_delete=models.CASCADE, related_name="messages", verbose_name=_("ticket")
    )
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("author"),
    )
    sender = models.CharField(_("sender address"), max_length=254, blank=True)
    body = models.TextField(_("text"))
    message_id = models.CharField(_("Message-ID"), max_length=300, blank=True, db_index=True)
    delivery = models.CharField(
        _("delivery"), max_length=10, choices=Delivery.choices, default="", blank=True
    )
    delivery_error = models.CharField(_("delivery error"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("ticket message")
        verbose_name_plural = _("ticket messages")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.ticket_id}"


def attachment_storage() -> FileSystemStorage:
    """Return where attachments are stored: <data dir>/attachments (readable by the owner)."""
    return FileSystemStorage(
        location=get_data_dir() / "attachments",
        file_permissions_mode=0o600,
        directory_permissions_mode=0o700,
    )


def attachment_path(instance: Attachment, filename: str) -> str:
    """Store attachments under the ticket's folder with a random prefix (names can repeat)."""
    import secrets  # noqa: PLC0415 -- only when a file is stored

    return f"service/{instance.message.ticket_id}/{secrets.token_hex(8)}-{filename}"


class Attachment(models.Model):
    message = models.ForeignKey(
        TicketMessage,
        on_delete=models.CASCADE,
        related_name="attachments",
        verbose_name=_("message"),
    )
    file = models.FileField(
        _("file"), upload_to=attachment_path, storage=attachment_storage, max_length=300
    )
    file_name = models.CharField(_("file name"), max_length=255)
    content_type = models.CharField(_("type"), max_length=100)
    size = models.PositiveIntegerField(_("size (bytes)"))

    class Meta:
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")

    def __str__(self) -> str:
        return self.file_name


class InboundEmail(models.Model):
    """Every email received, kept whole: what it became, or why it was quarantined."""

    class Outcome(models.TextChoices):
        TICKET = "ticket", _("New ticket")
        REPLY = "reply", _("Reply on a ticket")
        QUARANTINED = "quarantined", _("Quarantined")
        DISCARDED = "discarded", _("Discarded")

    digest = models.CharField(_("digest"), max_length=64, unique=True)
    message_id = models.CharField(_("Message-ID"), max_length=300, blank=True)
    sender = models.CharField(_("sender address"), max_length=254, blank=True)
    subject = models.CharField(_("subject"), max_length=300, blank=True)
    raw = models.BinaryField(_("raw message"))
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)
    via = models.CharField(_("received via"), max_length=10, default="imap")
    outcome = models.CharField(_("outcome"), max_length=12, choices=Outcome.choices)
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    ticket = models.ForeignKey(
        Ticket,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("ticket"),
    )

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = _("inbound email")
        verbose_name_plural = _("inbound emails")

    def __str__(self) -> str:
        return self.subject or self.message_id


class SlaEvent(models.Model):
    class Kind(models.TextChoices):
        APPLIED = "applied", _("Policy applied")
        WARNING = "warning", _("Deadline near")
        BREACH = "breach", _("Deadline missed")
        MET = "met", _("Target met")
        PAUSED = "paused", _("Clock paused")
        RESUMED = "resumed", _("Clock resumed")
        ESCALATED = "escalated", _("Escalated")

    class Target(models.TextChoices):
        NONE = "", _("Whole ticket")
        FIRST_RESPONSE = "first_response", _("First response")
        NEXT_RESPONSE = "next_response", _("Next response")
        RESOLUTION = "resolution", _("Resolution")

    ticket = models.ForeignKey(
        Ticket, on_delete=models.CASCADE, related_name="sla_events", verbose_name=_("ticket")
    )
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    target = models.CharField(
        _("target"), max_length=20, choices=Target.choices, default="", blank=True
    )
    due = models.DateTimeField(_("deadline"), null=True, blank=True)
    at = models.DateTimeField(_("at"))
    detail = models.JSONField(_("detail"), default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("SLA event")
        verbose_name_plural = _("SLA events")
        indexes = [models.Index(fields=["ticket", "kind", "target"], name="service_sla_ev")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.ticket_id}"
