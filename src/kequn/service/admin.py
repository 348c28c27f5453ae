"""Back office for tickets, queues, SLA policies, business calendars and inbound email."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import action, display

from kequn.customers.access import CustomerScopedAdminMixin
from kequn.security import reportfiles
from kequn.security.actors import Actor
from kequn.security.masking import EMAIL, get_unmasked_groups, mask_email
from kequn.security.permissions import record_personal_view
from kequn.service import exports, selectors, services
from kequn.service.calendar import CalendarError, parse_week
from kequn.service.models import (
    BusinessCalendar,
    CalendarDay,
    InboundEmail,
    Queue,
    SlaEvent,
    SlaPolicy,
    Ticket,
    TicketMessage,
)


def _shown_address(request: HttpRequest, value: str) -> str:
    if not value:
        return ""
    return value if EMAIL in get_unmasked_groups(request.user) else mask_email(value)


class TicketForm(forms.ModelForm):
    body = forms.CharField(
        label=_("Customer's message"),
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        help_text=_("What the customer said (phone call or store visit)"),
    )
    reply = forms.CharField(
        label=_("Reply or note"), widget=forms.Textarea(attrs={"rows": 4}), required=False
    )
    internal = forms.BooleanField(label=_("Internal note (not sent)"), required=False)
    waiting = forms.BooleanField(label=_("Wait for the customer (pauses the SLA)"), required=False)

    class Meta:
        model = Ticket
        fields = [
            "customer", "subject", "type", "priority", "status", "source", "queue", "assignee",
            "product", "order", "opened_at",
        ]  # fmt: skip

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "opened_at" in self.fields:
            self.fields["opened_at"].required = False
            self.fields["opened_at"].help_text = _(
                "Leave empty for now; set it for an earlier call"
            )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.instance.pk is None and not (data.get("body") or "").strip():
            self.add_error("body", _("Write what the customer asked for."))
        return data


class MessageInline(TabularInline):
    model = TicketMessage
    extra = 0
    can_delete = False
    fields = ("created_at", "kind", "author", "shown_sender", "body", "delivery")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @display(description=_("sender address"))
    def shown_sender(self, obj: TicketMessage) -> str:
        return _shown_address(self.request, obj.sender)  # type: ignore[attr-defined]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        self.request = request
        return super().get_queryset(request)


@admin.register(Ticket)
class TicketAdmin(CustomerScopedAdminMixin, ModelAdmin):
    form = TicketForm
    list_display = (
        "id",
        "subject",
        "customer",
        "type",
        "priority",
        "status",
        "queue",
        "assignee",
        "sla_state",
        "next_due",
        "opened_at",
    )
    list_filter = ("status", "priority", "type", "sla_state", "queue", "source")
    search_fields = ("=id", "subject")
    raw_id_fields = ("customer", "product", "order")
    list_select_related = ("customer", "queue", "assignee")
    ordering = ("-opened_at", "-id")
    show_full_result_count = False
    inlines = [MessageInline]
    actions = ["assign_round_robin", "merge_into_oldest"]
    readonly_fields = (
        "shown_from_address",
        "sla_policy",
        "first_response_due",
        "next_response_due",
        "resolution_due",
        "sla_state",
        "first_responded_at",
        "resolved_at",
        "closed_at",
        "merged_into",
        "customer_summary",
    )
    change_form_template = "admin/service/ticket/change_form.html"

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        main = ["customer", "subject", "type", "priority", "source", "queue", "assignee",
                "product", "order"]  # fmt: skip
        if obj is None:
            return [(None, {"fields": [*main, "opened_at", "body"]})]
        return [
            (None, {"fields": [*main, "status", "shown_from_address", "customer_summary"]}),
            (_("Answer"), {"fields": ["reply", "internal", "waiting"]}),
            (
                _("SLA"),
                {
                    "fields": [
                        "sla_policy",
                        "sla_state",
                        "first_response_due",
                        "next_response_due",
                        "resolution_due",
                        "first_responded_at",
                        "resolved_at",
                        "closed_at",
                        "merged_into",
                    ]
                },
            ),
        ]

    @display(description=_("from address"))
    def shown_from_address(self, obj: Ticket) -> str:
        return _shown_address(self.request, obj.from_address)  # type: ignore[attr-defined]

    @display(description=_("customer"))
    def customer_summary(self, obj: Ticket) -> str:
        from django.template.loader import render_to_string  # noqa: PLC0415 -- this field only

        return render_to_string(
            "admin/service/ticket/customer_summary.html",
            selectors.get_customer_summary(obj.customer_id),
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        self.request = request
        return super().get_queryset(request)

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        self.request = request
        response = super().changeform_view(request, *args, **kwargs)
        obj_id = kwargs.get("object_id") or (args[0] if args else None)
        if request.method == "GET" and obj_id and str(obj_id).isdigit():
            ticket = (
                Ticket.objects.filter(pk=int(obj_id)).only("from_address", "customer_id").first()
            )
            if ticket and ticket.from_address and ticket.customer_id:
                record_personal_view(request.user, [ticket.customer_id], "service.ticket")
        return response

    def save_model(self, request: HttpRequest, obj: Ticket, form: Any, change: bool) -> None:
        by: Actor = request.user  # type: ignore[assignment]
        data = form.cleaned_data
        try:
            if not change:
                created = services.open_ticket(
                    customer_id=obj.customer_id,
                    subject=obj.subject,
                    body=data["body"],
                    type=obj.type,
                    priority=obj.priority,
                    source=obj.source,
                    opened_at=data.get("opened_at"),
                    queue=obj.queue,
                    assignee=obj.assignee,
                    product_id=obj.product_id,
                    order_id=obj.order_id,
                    by=by,
                )
                obj.pk = created.pk
                return
            current = Ticket.objects.get(pk=obj.pk)
            changes = {
                name: data[name]
                for name in ("type", "priority", "subject", "queue", "assignee", "status")
                if name in form.changed_data
            }
            if changes:
                services.update_ticket(ticket=current, changes=changes, by=by)
            if (data.get("reply") or "").strip():
                services.add_reply(
                    ticket=current,
                    body=data["reply"],
                    internal=data.get("internal", False),
                    waiting=data.get("waiting", False),
                    by=by,
                )
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # Messages are added through the services (the reply box), never as inline rows.
        for formset in formsets:
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> list:
        return self.inlines if obj is not None else []

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # tickets are closed or merged, never deleted (erasure removes them)

    @action(description=_("Assign round robin within the queue"), permissions=["change"])
    def assign_round_robin(self, request: HttpRequest, queryset: QuerySet) -> None:
        done = 0
        for ticket in queryset.filter(queue__isnull=False):
            services.assign_ticket(ticket=ticket, by=request.user)  # type: ignore[arg-type]
            done += 1
        messages.success(request, _("%(n)d tickets assigned.") % {"n": done})

    @action(description=_("Merge the selected tickets into the oldest"), permissions=["change"])
    def merge_into_oldest(self, request: HttpRequest, queryset: QuerySet) -> None:
        tickets = list(queryset.order_by("opened_at", "id"))
        if len(tickets) < 2:
            messages.error(request, _("Select at least two tickets to merge."))
            return
        try:
            for duplicate in tickets[1:]:
                services.merge_tickets(source=duplicate, target=tickets[0], by=request.user)  # type: ignore[arg-type]
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
            return
        messages.success(
            request,
            _("Merged %(n)d tickets into #%(id)d.") % {"n": len(tickets) - 1, "id": tickets[0].pk},
        )

    def get_urls(self) -> list:
        return [
            path(
                "sla-report/",
                self.admin_site.admin_view(self.sla_report_view),
                name="service_ticket_sla_report",
            ),
            *super().get_urls(),
        ]

    def sla_report_view(self, request: HttpRequest) -> HttpResponse:
        """Show SLA compliance and response and resolution times."""
        if not request.user.has_perm("service.view_ticket"):
            raise PermissionDenied
        report = selectors.compute_sla_report()
        queues = selectors.get_open_by_queue()
        kind = request.GET.get("format", "")
        if kind in reportfiles.FORMATS:
            try:
                return reportfiles.render_file(
                    request,
                    tables=exports.build_sla_tables(report, queues),
                    title=str(_("SLA compliance")),
                    name="sla-report",
                    kind=kind,
                    label="service.ticket",
                )
            except reportfiles.ReportFontError as exc:
                messages.error(request, str(exc))
        context = {
            **self.admin_site.each_context(request),
            "title": _("SLA compliance"),
            "report": report,
            "queues": queues,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/service/sla_report.html", context)


class CalendarForm(forms.ModelForm):
    class Meta:
        model = BusinessCalendar
        fields = ["name", "country", "time_zone", "hours"]

    def clean_hours(self) -> Any:
        hours = self.cleaned_data["hours"]
        if not isinstance(hours, dict):
            raise ValidationError(_('Give the hours as {"mon": [["09:00", "18:00"]], ...}'))
        try:
            parse_week(hours)
        except CalendarError as exc:
            raise ValidationError(str(exc)) from None
        return hours


class CalendarDayInline(TabularInline):
    model = CalendarDay
    extra = 0
    fields = ("date", "is_workday", "hours", "name")


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(ModelAdmin):
    form = CalendarForm
    list_display = ("name", "country", "time_zone")
    inlines = [CalendarDayInline]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        services.save_calendar(obj, by=request.user)  # type: ignore[arg-type]


@admin.register(Queue)
class QueueAdmin(ModelAdmin):
    list_display = ("name", "email_address")
    filter_horizontal = ("members",)
    exclude = ("last_assigned",)


@admin.register(SlaPolicy)
class SlaPolicyAdmin(ModelAdmin):
    list_display = (
        "position",
        "name",
        "is_active",
        "calendar",
        "first_response_minutes",
        "next_response_minutes",
        "resolution_minutes",
        "escalate_to",
    )
    list_display_links = ("name",)
    ordering = ("position", "id")
    filter_horizontal = ("queues",)


@admin.register(SlaEvent)
class SlaEventAdmin(ModelAdmin):
    list_display = ("at", "ticket", "kind", "target", "due")
    list_filter = ("kind", "target")
    raw_id_fields = ("ticket",)
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(InboundEmail)
class InboundEmailAdmin(ModelAdmin):
    list_display = ("received_at", "shown_sender", "subject", "outcome", "reason", "ticket")
    list_filter = ("outcome", "via")
    fields = (
        "received_at",
        "shown_sender",
        "subject",
        "message_id",
        "via",
        "outcome",
        "reason",
        "ticket",
    )
    readonly_fields = fields
    actions = ["retry"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        self.request = request
        return super().get_queryset(request).defer("raw")

    @display(description=_("sender address"))
    def shown_sender(self, obj: InboundEmail) -> str:
        return _shown_address(self.request, obj.sender)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # nothing received is lost; erasure removes a person's

    @action(description=_("File the selected quarantined emails again"), permissions=["change"])
    def retry(self, request: HttpRequest, queryset: QuerySet) -> None:
        outcomes: dict[str, int] = {}
        for record in queryset.filter(outcome=InboundEmail.Outcome.QUARANTINED):
            filed = services.retry_inbound(record=record, by=request.user)  # type: ignore[arg-type]
            outcomes[filed.outcome] = outcomes.get(filed.outcome, 0) + 1
        messages.info(
            request, ", ".join(f"{k}: {v}" for k, v in outcomes.items()) or _("Nothing to retry.")
        )
