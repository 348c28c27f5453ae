"""Back office for data-subject requests: list with overdue badge, verify, execute, reject, download."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.decorators import action, display

from kequn.privacy import services
from kequn.privacy.masking import mask_request_parameters
from kequn.privacy.models import PrivacyRequest, Suppression
from kequn.security.audit.services import get_current_request
from kequn.security.masking import BIRTHDAY, get_unmasked_groups

BADGE_CACHE_KEY = "privacy:overdue-badge"
BADGE_SECONDS = 60
BADGE_CAP = 99  # the sidebar shows "99+" beyond this; no COUNT(*) on every page


def overdue_badge(request: HttpRequest) -> str:
    """Return the number of overdue requests for the sidebar ("" when none)."""
    if not request.user.has_perm("privacy.view_privacyrequest"):
        return ""
    # Every back-office page draws the sidebar: one cached, bounded query a minute at most.
    count = cache.get(BADGE_CACHE_KEY)
    if count is None:
        count = len(services.get_overdue_requests().values_list("pk", flat=True)[: BADGE_CAP + 1])
        cache.set(BADGE_CACHE_KEY, count, BADGE_SECONDS)
    if not count:
        return ""
    return f"{BADGE_CAP}+" if count > BADGE_CAP else str(count)


class OverdueFilter(admin.SimpleListFilter):
    title = _("deadline")
    parameter_name = "overdue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", _("Overdue")), ("open", _("Open, not overdue"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        overdue = services.get_overdue_requests().values("pk")
        if self.value() == "yes":
            return queryset.filter(pk__in=overdue)
        if self.value() == "open":
            return queryset.filter(status__in=PrivacyRequest.OPEN_STATUSES).exclude(pk__in=overdue)
        return queryset


STATUS_COLOURS = {
    PrivacyRequest.Status.RECEIVED: "info",
    PrivacyRequest.Status.VERIFIED: "info",
    PrivacyRequest.Status.IN_PROGRESS: "warning",
    PrivacyRequest.Status.DONE: "success",
    PrivacyRequest.Status.REJECTED: "danger",
}


@admin.register(PrivacyRequest)
class PrivacyRequestAdmin(ModelAdmin):
    list_display = (
        "id",
        "type",
        "customer_link",
        "status_label",
        "received_at",
        "deadline_label",
        "identity_method",
        "handled_by",
    )
    list_display_links = ("id", "type")
    list_filter = ("type", "status", OverdueFilter, "channel")
    list_filter_submit = True
    search_fields = ("=id", "=subject_ref")
    search_help_text = _("Request number or customer number")
    raw_id_fields = ("customer",)
    actions = ["execute_selected"]
    actions_detail = ("execute_detail", "reject_detail", "download_detail")
    readonly_fields = (
        "subject_ref",
        "status",
        "deadline",
        "identity_verified_by",
        "identity_verified_at",
        "handled_by",
        "completed_at",
        "result",
        "result_file",
        "created_by",
    )

    def get_fieldsets(self, request: HttpRequest, obj: PrivacyRequest | None = None):
        fieldsets = self._get_fieldsets(obj)
        if obj is None or BIRTHDAY in get_unmasked_groups(request.user):
            return fieldsets
        # A correction's new birthday is shown masked, like the birthday itself.
        return [
            (name, {**opts, "fields": [
                "shown_parameters" if f == "parameters" else f for f in opts["fields"]
            ]})
            for name, opts in fieldsets
        ]  # fmt: skip

    def _get_fieldsets(self, obj: PrivacyRequest | None):
        if obj is None:
            return [
                (None, {"fields": ["type", "customer", "channel", "received_at", "parameters", "notes"]})
            ]  # fmt: skip
        return [
            (None, {"fields": ["type", "customer", "subject_ref", "channel", "received_at",
                               "deadline", "status", "parameters", "notes"]}),
            (_("Identity check"), {"fields": ["identity_method", "identity_verified_by",
                                              "identity_verified_at"],
                                   "description": _("Choose how the identity was checked and "
                                                    "save: the request can then be carried out.")}),
            (_("Outcome"), {"fields": ["rejection_reason", "handled_by", "completed_at",
                                       "result", "result_file", "created_by"]}),
        ]  # fmt: skip

    def get_readonly_fields(self, request: HttpRequest, obj: PrivacyRequest | None = None):
        fields = list(self.readonly_fields)
        if obj is not None:
            fields += ["type", "customer", "channel", "received_at", "parameters"]
            fields += ["shown_parameters"]
            if obj.is_identity_verified or not obj.is_open:
                fields.append("identity_method")
            if not obj.is_open:
                fields.append("rejection_reason")
        return fields

    def save_model(
        self, request: HttpRequest, obj: PrivacyRequest, form: Any, change: bool
    ) -> None:
        """New requests and identity checks go through the services (deadline, audit)."""
        if not change:
            if obj.customer_id is None:
                raise ValidationError(gettext("choose the customer the request is about"))
            created = services.open_request(
                obj.type,
                obj.customer,
                channel=obj.channel,
                parameters=obj.parameters,
                notes=obj.notes,
                received_at=obj.received_at,
                by=request.user,
            )
            obj.pk = created.pk
            obj.deadline = created.deadline
            return
        stored = PrivacyRequest.objects.get(pk=obj.pk)
        stored.notes, stored.rejection_reason = obj.notes, obj.rejection_reason
        if obj.identity_method and not stored.is_identity_verified:
            services.verify_identity(stored, obj.identity_method, by=request.user)
        else:
            stored.save(update_fields=["notes", "rejection_reason"])

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
            return HttpResponseRedirect(request.get_full_path())

    @display(description=_("what was asked"))
    def shown_parameters(self, obj: PrivacyRequest) -> str:
        """Show the parameters with a correction's new birthday masked (see get_fieldsets)."""
        request = get_current_request()
        masked = mask_request_parameters(getattr(request, "user", None), obj.parameters)
        return json.dumps(masked, ensure_ascii=False)

    @display(description=_("customer"))
    def customer_link(self, obj: PrivacyRequest) -> str:
        if obj.customer_id:
            url = reverse("admin:customers_customer_change", args=[obj.customer_id])
            return format_html('<a class="kequn-link" href="{}">#{}</a>', url, obj.customer_id)
        return gettext("#%(id)s (erased)") % {"id": obj.subject_ref} if obj.subject_ref else "—"

    @display(description=_("status"), label=STATUS_COLOURS, ordering="status")
    def status_label(self, obj: PrivacyRequest) -> tuple[str, str]:
        return obj.status, obj.get_status_display()

    @display(
        description=_("deadline"),
        ordering="deadline",
        label={"overdue": "danger", "due": "warning", "closed": "info"},
    )
    def deadline_label(self, obj: PrivacyRequest) -> tuple[str, str]:
        text = f"{obj.deadline:%Y-%m-%d}"
        if obj.is_overdue:
            return "overdue", gettext("%(date)s · overdue") % {"date": text}
        return ("due" if obj.is_open else "closed"), text

    def _carry_out(self, request: HttpRequest, obj: PrivacyRequest) -> bool:
        try:
            services.execute_request(obj, by=request.user)
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
            return False
        messages.success(request, gettext("Request #%(id)s carried out.") % {"id": obj.pk})
        return True

    @admin.action(description=_("Carry out selected verified requests"), permissions=["change"])
    def execute_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        for obj in queryset.order_by("received_at", "id"):
            self._carry_out(request, obj)

    def _detail_url(self, object_id: Any) -> str:
        return reverse("admin:privacy_privacyrequest_change", args=[object_id])

    @action(
        description=_("Carry out"), url_path="execute", permissions=["change"], icon="play_arrow"
    )
    def execute_detail(self, request: HttpRequest, object_id: int) -> HttpResponse:
        if request.method != "POST":
            # Unfold's detail actions are links (GET); ask for a confirmation POST instead.
            return self._confirm(request, object_id, gettext("Carry out request #%(id)s?"))
        self._carry_out(request, PrivacyRequest.objects.get(pk=object_id))
        return HttpResponseRedirect(self._detail_url(object_id))

    @action(description=_("Reject"), url_path="reject", permissions=["change"], icon="block")
    def reject_detail(self, request: HttpRequest, object_id: int) -> HttpResponse:
        obj = PrivacyRequest.objects.get(pk=object_id)
        if request.method != "POST":
            return self._confirm(
                request, object_id, gettext("Reject request #%(id)s?"), reason=True
            )
        try:
            services.reject_request(obj, request.POST.get("reason", ""), by=request.user)
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
        else:
            messages.success(request, gettext("Request #%(id)s rejected.") % {"id": obj.pk})
        return HttpResponseRedirect(self._detail_url(object_id))

    @action(
        description=_("Download export"),
        url_path="download",
        permissions=["change"],
        icon="download",
    )
    def download_detail(self, request: HttpRequest, object_id: int) -> HttpResponse:
        obj = PrivacyRequest.objects.get(pk=object_id)
        try:
            path = services.get_export_path(obj)
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
            return HttpResponseRedirect(self._detail_url(object_id))
        services.record_download(obj, by=request.user)
        return FileResponse(
            path.open("rb"), as_attachment=True, filename=f"privacy-request-{obj.pk}.zip",
            content_type="application/zip",
        )  # fmt: skip

    def _confirm(
        self, request: HttpRequest, object_id: int, question: str, reason: bool = False
    ) -> HttpResponse:
        obj = PrivacyRequest.objects.get(pk=object_id)
        context = {
            **self.admin_site.each_context(request),
            "title": question % {"id": obj.pk},
            "obj": obj,
            "ask_reason": reason,
            "back_url": self._detail_url(object_id),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "privacy/confirm.html", context)

    def has_delete_permission(
        self, request: HttpRequest, obj: PrivacyRequest | None = None
    ) -> bool:
        # Requests are the record of how the business answered; they are not deleted.
        return False


@admin.register(Suppression)
class SuppressionAdmin(ModelAdmin):
    """The suppression list: keyed hashes only, nothing to read back."""

    list_display = ("kind", "hash_prefix", "request_ref", "created_at")
    list_filter = ("kind",)
    search_fields = ("=request_ref",)
    readonly_fields = ("kind", "key_hash", "request", "request_ref", "created_at")
    actions = None

    @display(description=_("keyed hash"))
    def hash_prefix(self, obj: Suppression) -> str:
        return f"{obj.key_hash[:16]}…"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Suppression | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Suppression | None = None) -> bool:
        # Lifting a suppression would let the erased person be imported again: only superusers.
        return bool(request.user.is_superuser)
