"""Back office for journeys: the list, the editor with the drawn flow, enrollments and history."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import action, display

from kequn.customers.access import CustomerScopedAdminMixin
from kequn.journeys import registry, services
from kequn.journeys.models import Enrollment, EnrollmentEvent, Journey
from kequn.journeys.selectors import get_flow
from kequn.security.permissions import has_permission


class JourneyForm(forms.ModelForm):
    class Meta:
        model = Journey
        fields = [
            "name",
            "description",
            "status",
            "trigger_kind",
            "trigger_config",
            "reentry",
            "reentry_days",
            "goal",
            "steps",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The trigger kinds other apps registered, by their labels.
        self.fields["trigger_kind"] = forms.ChoiceField(
            label=_("trigger"),
            choices=[(t.kind, t.label) for t in registry.list_triggers()],
        )

    def clean(self) -> dict[str, Any]:
        """Refuse a definition with problems, each named with its place."""
        data = super().clean() or {}
        problems = services.check_definition(
            trigger_kind=data.get("trigger_kind", ""),
            trigger_config=data.get("trigger_config") or {},
            steps=data.get("steps") or [],
            goal=data.get("goal"),
        )
        if problems:
            raise ValidationError(problems)
        if data.get("status") == Journey.Status.ACTIVE and not data.get("steps"):
            raise ValidationError(gettext("a journey needs at least one step before it can start"))
        return data


@admin.register(Journey)
class JourneyAdmin(ModelAdmin):
    form = JourneyForm
    list_display = ["name", "status_badge", "trigger_label", "enrolled", "activated_at"]
    list_filter = ["status", "trigger_kind"]
    search_fields = ["name"]
    readonly_fields = ["activated_at", "created_at"]
    actions = ["pause_selected", "resume_selected"]
    change_form_before_template = "journeys/_flow.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        """Count each journey's enrolments with it."""
        return super().get_queryset(request).annotate(enrolled_count=Count("enrollments"))

    @display(description=_("status"), label=True)
    def status_badge(self, obj: Journey) -> str:
        return obj.get_status_display()

    @display(description=_("trigger"))
    def trigger_label(self, obj: Journey) -> str:
        trigger = registry.get_trigger(obj.trigger_kind)
        return str(trigger.label) if trigger else obj.trigger_kind

    @display(description=_("enrolled"))
    def enrolled(self, obj: Journey) -> str:
        url = reverse("admin:journeys_enrollment_changelist") + f"?journey__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, f"{getattr(obj, 'enrolled_count', 0):,}")

    def render_change_form(self, request: HttpRequest, context: dict, *args: Any, **kwargs: Any):
        """Draw the flow with its counts above the form."""
        obj = kwargs.get("obj") or context.get("original")
        if obj is not None and obj.pk:
            context["flow"] = get_flow(obj)
            context["journey"] = obj
        return super().render_change_form(request, context, *args, **kwargs)

    def save_model(self, request: HttpRequest, obj: Journey, form: Any, change: bool) -> None:
        """Save through the services (checked again, audited)."""
        services.save_journey(obj, changed=form.changed_data, by=request.user)  # type: ignore[arg-type]

    def has_pause_permission(self, request: HttpRequest) -> bool:
        """Return whether the user may pause and resume journeys (change them)."""
        return has_permission(request.user, "journeys.change_journey")

    @action(description=_("Pause the selected journeys"), permissions=["pause"])
    def pause_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_status(request, queryset, services.pause_journey)

    @action(description=_("Resume the selected journeys"), permissions=["pause"])
    def resume_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_status(request, queryset, services.resume_journey)

    def _set_status(self, request: HttpRequest, queryset: QuerySet, change: Any) -> None:
        done = 0
        for journey in queryset:
            try:
                change(journey, by=request.user)
                done += 1
            except ValidationError as exc:
                self.message_user(request, " ".join(exc.messages), messages.ERROR)
        if done:
            self.message_user(
                request,
                ngettext("%(n)s journey changed.", "%(n)s journeys changed.", done) % {"n": done},
            )


class EnrollmentEventInline(TabularInline):
    model = EnrollmentEvent
    fields = ["at", "kind", "step_id", "branch", "detail"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["at", "id"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Enrollment)
class EnrollmentAdmin(CustomerScopedAdminMixin, ModelAdmin):
    """Who is where in which journey; read-only (the runner moves them)."""

    list_display = [
        "id",
        "journey",
        "customer_link",
        "state",
        "current_step",
        "wake_at",
        "entered_at",
        "exit_reason",
    ]
    list_filter = ["state", "journey"]
    list_select_related = ["journey", "customer"]
    search_fields = ["=customer__id"]
    search_help_text = _("Customer id")
    inlines = [EnrollmentEventInline]
    fields = [
        "journey",
        "customer",
        "state",
        "current_step",
        "wake_at",
        "entered_at",
        "left_at",
        "exit_reason",
        "entry_key",
    ]
    readonly_fields = fields
    show_full_result_count = False

    @display(description=_("customer"))
    def customer_link(self, obj: Enrollment) -> str:
        url = reverse("admin:customers_customer_360", args=[obj.customer_id])
        return format_html('<a href="{}">#{}</a>', url, obj.customer_id)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
