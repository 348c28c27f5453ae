"""Back office: the deal board (kanban), deals, activities, tasks, pipelines, teams and the pool."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin, TabularInline

from kequn.customers.models import Customer
from kequn.sales import selectors, services
from kequn.sales.access import get_visible_owner_ids, scope_activities, scope_owned
from kequn.sales.models import (
    AccountProfile,
    Activity,
    Deal,
    DealProduct,
    DealStageChange,
    Pipeline,
    PoolEvent,
    PoolSettings,
    Quota,
    Stage,
    Task,
    Team,
    WinModel,
)
from kequn.security import reportfiles
from kequn.security.actors import Actor
from kequn.security.permissions import has_permission, require_permission


def _by(request: HttpRequest) -> Actor:
    """Return the signed-in user as the actor of a change (the admin lets only them in)."""
    return cast(Actor, request.user)


class AuditedAdmin(ModelAdmin):
    """Saves and deletes go through the sales services, so each lands on the audit trail."""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Save through the services."""
        services.save_record(obj, by=_by(request))

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        """Delete through the services."""
        services.delete_record(obj, by=_by(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Delete each row through the services."""
        for obj in queryset:
            services.delete_record(obj, by=_by(request))


class StageInline(TabularInline):
    model = Stage
    fields = ("position", "name", "probability", "forecast_category", "is_won", "is_lost")
    extra = 0


@admin.register(Pipeline)
class PipelineAdmin(AuditedAdmin):
    list_display = ("name", "position", "is_active")
    inlines = [StageInline]


@admin.register(Team)
class TeamAdmin(AuditedAdmin):
    list_display = ("name", "parent", "manager")
    filter_horizontal = ("members",)


@admin.register(PoolSettings)
class PoolSettingsAdmin(AuditedAdmin):
    list_display = ("__str__", "idle_days", "warn_days", "claim_limit")

    def has_add_permission(self, request: HttpRequest) -> bool:
        """One row of settings."""
        return not PoolSettings.objects.exists() and super().has_add_permission(request)


@admin.register(Quota)
class QuotaAdmin(AuditedAdmin):
    list_display = ("month", "owner", "team", "amount")
    list_filter = ("team",)


class DealProductInline(TabularInline):
    model = DealProduct
    fields = ("product", "quantity", "unit_price")
    autocomplete_fields = ("product",)
    extra = 0


class DealStageChangeInline(TabularInline):
    model = DealStageChange
    fields = ("changed_at", "from_stage", "to_stage", "days_in_previous", "amount", "close_date",
              "previous_close_date", "changed_by")  # fmt: skip
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """The history is written by the services only."""
        return False


def _parse_month(value: str) -> date | None:
    try:
        year, month = value.split("-")[:2]
        return date(int(year), int(month), 1)
    except ValueError:
        return None


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 19 else None


@admin.register(Deal)
class DealAdmin(ModelAdmin):
    list_display = (
        "name",
        "account",
        "stage",
        "status",
        "amount",
        "currency",
        "close_date",
        "owner",
    )
    list_select_related = ("account", "stage", "stage__pipeline", "owner")
    list_filter = ("status", "pipeline", "owner")
    search_fields = ("name",)
    raw_id_fields = ("account", "contacts")
    readonly_fields = ("status", "stage_entered_at", "closed_at", "created_at")
    exclude = ("pipeline",)
    inlines = [DealProductInline, DealStageChangeInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        """List only the deals in the user's scope."""
        return scope_owned(request.user, super().get_queryset(request))

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        """Offer only accounts in the user's scope."""
        if db_field.related_model is Customer:
            kwargs["queryset"] = scope_owned(request.user, Customer.objects.all())
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Deal, form: Any, change: bool) -> None:
        """Save through the services (rules, stage history, audit)."""
        if obj.owner_id is None:
            obj.owner_id = request.user.pk
        try:
            services.save_deal(obj, by=_by(request))
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
            raise

    def delete_model(self, request: HttpRequest, obj: Deal) -> None:
        """Delete through the services."""
        services.delete_deal(obj, by=_by(request))

    def get_urls(self) -> list:
        return [
            path("board/", self.admin_site.admin_view(self.board_view), name="sales_deal_board"),
            path(
                "board/move/",
                self.admin_site.admin_view(self.move_view),
                name="sales_deal_board_move",
            ),
            path("reports/", self.admin_site.admin_view(self.reports_view), name="sales_reports"),
            *super().get_urls(),
        ]

    def board_view(self, request: HttpRequest) -> HttpResponse:
        """Show the deals by stage, with totals per column; cards move by drag or keyboard."""
        require_permission(request.user, "sales.view_deal")
        filters = selectors.BoardFilters(
            pipeline_id=_int_or_none(request.GET.get("pipeline")),
            owner_id=_int_or_none(request.GET.get("owner")),
            team_id=_int_or_none(request.GET.get("team")),
            close_month=_parse_month(request.GET.get("month", "")),
            q=request.GET.get("q", "")[:100],
        )
        columns = selectors.get_board(request.user, filters)
        owners = get_visible_owner_ids(request.user)
        from django.contrib.auth import get_user_model  # noqa: PLC0415 -- the user model

        users = get_user_model().objects.filter(is_active=True).order_by("username")
        if owners is not None:
            users = users.filter(pk__in=owners)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Deal board"),
            "columns": columns,
            "pipelines": Pipeline.objects.filter(is_active=True),
            "pipeline_id": columns[0].stage.pipeline_id if columns else None,
            "owners": users[:200],
            "teams": Team.objects.all()[:200],
            "filters": filters,
            "month": request.GET.get("month", "")[:7],
            "can_move": has_permission(request.user, "sales.change_deal"),
            "move_url": reverse("admin:sales_deal_board_move"),
        }
        return TemplateResponse(request, "admin/sales/board.html", context)

    def move_view(self, request: HttpRequest) -> HttpResponse:
        """Move one deal to a stage (POST deal, stage[, lost_reason, amount]); answer JSON."""
        if request.method != "POST":
            return JsonResponse({"error": gettext("Use POST.")}, status=405)
        require_permission(request.user, "sales.change_deal")
        deal_id = _int_or_none(request.POST.get("deal"))
        stage_id = _int_or_none(request.POST.get("stage"))
        deal = (
            selectors.scope_deals(request.user)
            .select_related("stage", "pipeline")
            .filter(pk=deal_id or 0)
            .first()
        )
        stage = Stage.objects.filter(pk=stage_id or 0).first()
        if deal is None or stage is None:
            return JsonResponse({"error": gettext("No such deal or stage.")}, status=404)
        amount = None
        if request.POST.get("amount"):
            try:
                amount = Decimal(request.POST["amount"])
            except InvalidOperation:
                return JsonResponse({"error": gettext("The amount is not a number.")}, status=422)
        try:
            services.move_deal(
                deal,
                stage,
                by=_by(request),
                lost_reason=request.POST.get("lost_reason") or None,
                amount=amount,
            )
        except ValidationError as exc:
            return JsonResponse({"error": "; ".join(exc.messages)}, status=422)
        filters = selectors.BoardFilters(pipeline_id=deal.pipeline_id)
        totals = {
            str(c.stage.pk): {"count": c.count, "total": str(c.total), "weighted": str(c.weighted)}
            for c in selectors.get_board(request.user, filters, cards_per_column=0)
        }
        return JsonResponse({"deal": deal.pk, "stage": stage.pk, "columns": totals})

    def reports_view(self, request: HttpRequest) -> HttpResponse:
        """Show forecast, accuracy, funnel, velocity and win rates."""
        require_permission(request.user, "sales.view_deal")
        from kequn.sales import reports  # noqa: PLC0415 -- the report page only

        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Sales reports"),
            **reports.build_report(request.user, request.GET),
        }
        kind = request.GET.get("format", "")
        if kind in reportfiles.FORMATS:
            try:
                return reportfiles.render_file(
                    request,
                    tables=context["tables"],
                    title=str(context["title"]),
                    name="sales-report",
                    kind=kind,
                    label="sales.deal",
                )
            except reportfiles.ReportFontError as exc:
                messages.error(request, str(exc))
        return TemplateResponse(request, "admin/sales/reports.html", context)


@admin.register(Activity)
class ActivityAdmin(ModelAdmin):
    list_display = ("occurred_at", "kind", "subject", "account", "deal", "owner", "location")
    list_filter = ("kind",)
    search_fields = ("subject",)
    raw_id_fields = ("account", "contact", "deal")
    list_select_related = ("account", "deal", "owner")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        """List only the activities in the user's scope."""
        return scope_activities(request.user, super().get_queryset(request))

    def save_model(self, request: HttpRequest, obj: Activity, form: Any, change: bool) -> None:
        """New activities through log_activity (pool clock, audit); edits audited."""
        if change:
            services.save_record(obj, by=_by(request))
            return
        activity = services.log_activity(
            services.ActivityInput(
                kind=obj.kind,
                subject=obj.subject,
                occurred_at=obj.occurred_at,
                notes=obj.notes,
                location=obj.location,
                duration_minutes=obj.duration_minutes,
                account_id=obj.account_id,
                contact_id=obj.contact_id,
                deal_id=obj.deal_id,
            ),
            by=_by(request),
        )
        obj.pk = activity.pk

    def delete_model(self, request: HttpRequest, obj: Activity) -> None:
        """Delete through the services."""
        services.delete_record(obj, by=_by(request))


@admin.register(Task)
class TaskAdmin(ModelAdmin):
    list_display = ("due_at", "title", "owner", "account", "deal", "recurrence", "done_at")
    list_filter = ("recurrence",)
    search_fields = ("title",)
    raw_id_fields = ("account", "deal")
    actions = ["mark_done"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        """List only the tasks in the user's scope."""
        return scope_owned(request.user, super().get_queryset(request))

    def save_model(self, request: HttpRequest, obj: Task, form: Any, change: bool) -> None:
        """Save through the services (audit)."""
        if not services.is_owner_visible(request.user, obj.owner_id):
            raise PermissionDenied("owner outside your team")
        services.save_task(obj, by=_by(request))

    def delete_model(self, request: HttpRequest, obj: Task) -> None:
        """Delete through the services."""
        services.delete_record(obj, by=_by(request))

    @admin.action(description=_("Mark done"), permissions=["change"])
    def mark_done(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Complete the chosen tasks (recurring ones get their next occurrence)."""
        for task in queryset:
            services.complete_task(task, by=_by(request))


@admin.register(AccountProfile)
class AccountProfileAdmin(ModelAdmin):
    list_display = ("customer", "parent", "team", "in_pool", "last_activity_at", "claimed_at")
    list_filter = ("in_pool", "team")
    raw_id_fields = ("customer", "parent")
    actions = ["claim"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        """The user's accounts and the pool."""
        rows = super().get_queryset(request).select_related("customer", "parent", "team")
        owners = get_visible_owner_ids(request.user)
        if owners is None:
            return rows
        return rows.filter(customer__owner__in=owners) | rows.filter(in_pool=True)

    def save_model(
        self, request: HttpRequest, obj: AccountProfile, form: Any, change: bool
    ) -> None:
        """Save through the services (audit)."""
        services.save_record(obj, by=_by(request))

    @admin.action(description=_("Claim from the pool"), permissions=["change"])
    def claim(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Claim the chosen pool accounts for yourself."""
        for profile in queryset.filter(in_pool=True).select_related("customer"):
            try:
                services.claim_account(profile.customer, by=_by(request))
            except ValidationError as exc:
                messages.error(request, "; ".join(exc.messages))
                return


@admin.register(PoolEvent)
class PoolEventAdmin(ModelAdmin):
    list_display = ("at", "account", "kind", "user", "reason")
    list_filter = ("kind",)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        """The history of the user's accounts (and of the pool)."""
        rows = super().get_queryset(request).select_related("account", "user")
        owners = get_visible_owner_ids(request.user)
        return rows if owners is None else rows.filter(user_id__in=owners)

    def has_add_permission(self, request: HttpRequest) -> bool:
        """History is written by the services."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """History is not edited."""
        return False


@admin.register(WinModel)
class WinModelAdmin(ModelAdmin):
    list_display = ("trained_at", "is_used", "metrics_text")

    @admin.display(description=_("held-out metrics"))
    def metrics_text(self, obj: WinModel) -> str:
        """Show the evaluation as compact JSON."""
        return json.dumps(obj.metrics, sort_keys=True)[:300]

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Models come from `kequn sales train`."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """A trained model is a record."""
        return False
