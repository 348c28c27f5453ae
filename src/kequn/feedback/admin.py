"""The back office of surveys: surveys with their report, answers and the follow-up queue."""

from __future__ import annotations

from typing import Any, cast

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin

from kequn.customers.access import CustomerScopedAdminMixin
from kequn.feedback import selectors
from kequn.feedback.models import FollowUp, Response, Survey
from kequn.feedback.reports import build_report_tables
from kequn.feedback.services import resolve_follow_up
from kequn.security import reportfiles
from kequn.security.actors import Actor

# In the order selectors.get_scores_by returns its dimensions.
BREAKDOWN_TITLES = (_("By store"), _("By product"), _("By agent"), _("By segment"))


@admin.register(Survey)
class SurveyAdmin(ModelAdmin):
    list_display = ("name", "kind", "trigger", "is_active", "created_at", "report_link")
    list_filter = ("kind", "trigger", "is_active")
    search_fields = ("name",)

    @admin.display(description=_("report"))
    def report_link(self, obj: Survey) -> str:
        url = reverse("admin:feedback_survey_report", args=[obj.pk])
        return format_html('<a class="kequn-link" href="{}">{}</a>', url, _("Report"))

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view(self.report_view)
        return [
            path("<int:survey_id>/report/", view, name="feedback_survey_report"),
            *super().get_urls(),
        ]

    def report_view(self, request: HttpRequest, survey_id: int) -> HttpResponse:
        """Show the survey's scores, response rate, months, topics and the closed loop."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        survey = get_object_or_404(Survey, pk=survey_id)
        responses = Response.objects.filter(survey=survey)
        months = selectors.get_scores_by_month(responses)
        widest = max((abs(m["nps"] or 0) for m in months), default=0) or 1
        for month in months:
            month["width"] = round(50 * abs(month["nps"] or 0) / widest)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Survey report: %(name)s") % {"name": survey.name},
            "survey": survey,
            "summary": selectors.summarize_scores(responses),
            "rate": selectors.get_response_rate(survey),
            "months": months,
            "topics": selectors.get_top_topics(responses),
            "loop": selectors.get_loop_outcome(survey),
            "breakdowns": list(
                zip(BREAKDOWN_TITLES, selectors.get_scores_by(responses).values(), strict=True)
            ),
            "opts": self.model._meta,
        }
        kind = request.GET.get("format", "")
        if kind in reportfiles.FORMATS:
            try:
                return reportfiles.render_file(
                    request,
                    tables=build_report_tables(context),
                    title=str(context["title"]),
                    name=f"survey-{survey.pk}-report",
                    kind=kind,
                    label="feedback.survey",
                )
            except reportfiles.ReportFontError as exc:
                messages.error(request, str(exc))
        return TemplateResponse(request, "admin/feedback/report.html", context)


@admin.register(Response)
class ResponseAdmin(CustomerScopedAdminMixin, ModelAdmin):
    list_display = ("answered_at", "survey", "customer", "score", "category", "sentiment", "topic")
    list_filter = ("survey", "category", "language")
    search_fields = ("topic",)
    readonly_fields = [f.name for f in Response._meta.fields]
    list_select_related = ("survey", "customer")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(FollowUp)
class FollowUpAdmin(CustomerScopedAdminMixin, ModelAdmin):
    customer_path = "response__customer"
    list_display = ("due_at", "response", "status", "ticket_id", "owner", "resolved_at")
    list_filter = ("status",)
    readonly_fields = ("response", "ticket_id", "due_at", "resolved_at", "created_at")
    fields = ("response", "status", "owner", "ticket_id", "due_at", "resolved_at", "note")
    actions = ["resolve"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description=_("Mark as resolved"), permissions=["change"])
    def resolve(self, request: HttpRequest, queryset: QuerySet[FollowUp]) -> None:
        done = 0
        for follow_up in queryset.filter(status=FollowUp.Status.OPEN):
            resolve_follow_up(follow_up=follow_up, by=cast("Actor", request.user))
            done += 1
        self.message_user(request, _("%(n)d follow-ups resolved.") % {"n": done}, messages.SUCCESS)
