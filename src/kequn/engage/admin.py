"""Back office for engagement: templates, campaigns (send, report with charts), outbox, suppressions."""

from __future__ import annotations

from typing import Any, cast

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import action, display

from kequn.analytics.uplift import wilson_interval
from kequn.engage import selectors, services
from kequn.engage.charts import render_bars, render_rates
from kequn.engage.models import Campaign, Message, Recipient, Run, Suppression, Template, Variant
from kequn.engage.policy import SKIP_REASONS
from kequn.security.permissions import has_permission

SEND_PERMISSION = "engage.send_campaign"


@admin.register(Template)
class TemplateAdmin(ModelAdmin):
    list_display = ["name", "channel", "purpose", "updated_at"]
    list_filter = ["channel", "purpose"]
    search_fields = ["name"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        """Refuse a template whose merge fields are unknown (named with their line)."""
        form = super().get_form(request, obj, change, **kwargs)

        class CheckedForm(form):  # type: ignore[misc,valid-type]
            def clean(self):
                cleaned = super().clean()
                probe = Template(
                    name=cleaned.get("name", ""),
                    **{
                        f: cleaned.get(f, "")
                        for f in ("subject_zh", "body_zh", "subject_en", "body_en")
                    },
                )
                problems = services.check_template_sources(probe)
                if problems:
                    raise ValidationError(problems)
                return cleaned

        return CheckedForm


class VariantInline(TabularInline):
    model = Variant
    extra = 0


@admin.register(Campaign)
class CampaignAdmin(ModelAdmin):
    list_display = ["name", "segment_name", "channel", "status", "holdout_percent", "report_link"]
    list_filter = ["status", "channel"]
    search_fields = ["name", "segment_name"]
    readonly_fields = ["status", "last_error", "segment_name", "created_by", "created_at"]
    inlines = [VariantInline]
    actions = ["send_selected"]

    def save_model(self, request, obj, form, change):
        if obj.segment_id:
            obj.segment_name = obj.segment.name
        if not change:
            obj.created_by = request.user
            if obj.schedule != Campaign.Schedule.NOW:
                obj.status = Campaign.Status.SCHEDULED
        super().save_model(request, obj, form, change)
        if obj.status == Campaign.Status.SCHEDULED and obj.next_run_at:
            services.ensure_wakeup(obj.next_run_at)

    @display(description=_("report"))
    def report_link(self, obj: Campaign) -> str:
        url = reverse("admin:engage_campaign_report", args=[obj.pk])
        return format_html('<a class="kequn-link" href="{}">{}</a>', url, gettext("Report"))

    def has_send_selected_permission(self, request: HttpRequest) -> bool:
        return has_permission(request.user, SEND_PERMISSION)

    @action(description=_("Send now (the worker sends them)"), permissions=["send_selected"])
    def send_selected(self, request: HttpRequest, queryset) -> None:
        for campaign in queryset:
            try:
                result = services.send_campaign(campaign, by=cast(Any, request.user))  # signed in
            except ValidationError as exc:
                self.message_user(request, " ".join(exc.messages), messages.ERROR)
                continue
            self.message_user(
                request,
                gettext("%(name)s: %(n)s customers evaluated, messages queued for the worker")
                % {"name": campaign.name, "n": result["audience"]},
            )

    def get_urls(self):
        own = [
            path(
                "<int:campaign_id>/report/",
                self.admin_site.admin_view(self.report_view),
                name="engage_campaign_report",
            )
        ]
        return own + super().get_urls()

    def report_view(self, request: HttpRequest, campaign_id: int):
        """Show the campaign's report: groups, skips by reason, outcomes, uplift with charts."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        campaign = get_object_or_404(Campaign, pk=campaign_id)
        report = selectors.build_report(campaign)
        group_labels = dict(Recipient.Group.choices)
        groups_chart = render_bars(
            [(str(group_labels[g]), n) for g, n in report["groups"].items() if n]
        )
        skips_chart = render_bars(
            [(str(SKIP_REASONS.get(r, r)), n) for r, n in report["skipped"].items()]
        )
        status_labels = dict(Message.Status.choices)
        outcome_chart = render_bars(
            [(str(status_labels[s]), n) for s, n in report["messages"].items() if n]
        )
        rates: list[tuple[str, float, float | None, float | None]] = []
        for key, label in (("sent", gettext("Sent")), ("holdout", gettext("Holdout"))):
            n, x = report["measured"][key], report["conversions"][key]
            if n:
                low, high = wilson_interval(x, n)
                rates.append((label, x / n, low, high))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "campaign": campaign,
            "report": report,
            "title": gettext("Report of %(name)s") % {"name": campaign.name},
            "groups_chart": mark_safe(groups_chart),  # noqa: S308 -- built from escaped labels and numbers
            "skips_chart": mark_safe(skips_chart),  # noqa: S308 -- idem
            "outcome_chart": mark_safe(outcome_chart),  # noqa: S308 -- idem
            "rates_chart": mark_safe(render_rates(rates)),  # noqa: S308 -- idem
            "runs": Run.objects.filter(campaign=campaign).order_by("number"),
        }
        return TemplateResponse(request, "engage/admin/campaign_report.html", context)


@admin.register(Message)
class MessageAdmin(ModelAdmin):
    list_display = ["id", "source", "channel", "purpose", "status", "skip_reason", "sent_at"]
    list_filter = ["status", "channel", "purpose", "skip_reason"]
    search_fields = ["source", "provider_id"]
    exclude = ["address"]  # personal data: the customer's page shows it to who may see it
    readonly_fields = [f.name for f in Message._meta.fields if f.name not in ("address",)]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Suppression)
class SuppressionAdmin(ModelAdmin):
    list_display = ["channel", "address_hash", "reason", "created_at"]
    list_filter = ["channel"]
    readonly_fields = ["channel", "address_hash", "reason", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
