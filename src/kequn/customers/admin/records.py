"""Back office for identities, tags and tag groups."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin, TabularInline
from unfold.contrib.filters.admin import ChoicesDropdownFilter
from unfold.decorators import display

from kequn.customers.access import CustomerScopedAdminMixin
from kequn.customers.admin.base import SavedThroughServicesMixin
from kequn.customers.admin.filters import EstimatedCountPaginator, get_identity_match
from kequn.customers.admin.inlines import IdentityForm
from kequn.customers.models import Identity, Tag, TagGroup
from kequn.security.masking import EMAIL, PHONE, get_unmasked_groups, mask_identity_for
from kequn.security.permissions import record_personal_view


@admin.register(Identity)
class IdentityAdmin(SavedThroughServicesMixin, CustomerScopedAdminMixin, ModelAdmin):
    form = IdentityForm
    list_display = ("value", "kind", "system", "verified", "customer", "created_at")
    sortable_by = ("kind", "system", "verified", "customer", "created_at")  # value is encrypted
    list_filter = (("kind", ChoicesDropdownFilter), "verified")
    list_select_related = ("customer",)
    search_fields = ("value",)
    search_help_text = _("Exact email, phone, WeChat openid or system:id")
    autocomplete_fields = ("customer",)
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    readonly_fields = ("created_at",)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        """Match the normalised value exactly, through the unique index."""
        match = get_identity_match(search_term)
        return (queryset.filter(match) if match is not None else queryset), False

    def _masked_value(self, request: HttpRequest) -> Any:
        """Return a display of the value masked for this viewer, or None when nothing is masked."""
        unmasked = get_unmasked_groups(request.user)
        if {PHONE, EMAIL} <= unmasked:
            return None

        @display(description=_("value"))
        def shown_value(obj: Identity) -> str:
            return mask_identity_for(unmasked, obj.kind, obj.value)

        return shown_value

    def _may_see(self, request: HttpRequest, obj: Identity | None) -> bool:
        """Return whether the user may see this identity's value (titles and logs show it)."""
        return (
            obj is None
            or mask_identity_for(get_unmasked_groups(request.user), obj.kind, obj.value)
            == obj.value
        )

    def has_view_permission(self, request: HttpRequest, obj: Identity | None = None) -> bool:
        """Refuse to open an identity whose value the user may not see."""
        return super().has_view_permission(request, obj) and self._may_see(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Identity | None = None) -> bool:
        """Refuse to change an identity whose value the user may not see."""
        return super().has_change_permission(request, obj) and self._may_see(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Identity | None = None) -> bool:
        """Refuse to delete an identity whose value the user may not see."""
        return super().has_delete_permission(request, obj) and self._may_see(request, obj)

    def get_list_display(self, request: HttpRequest) -> Any:
        """Show values masked to users who may not see phones or emails."""
        shown = self._masked_value(request)
        fields = super().get_list_display(request)
        return fields if shown is None else [shown if f == "value" else f for f in fields]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        """Record who opened an identity with its value unmasked."""
        response = super().change_view(request, object_id, form_url, extra_context)
        if request.method == "GET" and response.status_code == 200:
            customer_id = self.get_queryset(request).filter(pk=object_id).values("customer_id")
            record_personal_view(
                request.user, list(customer_id.values_list("customer_id", flat=True)), via="admin"
            )
        return response


class TagInline(TabularInline):
    model = Tag
    fields = ("name", "kind", "created_at")
    readonly_fields = ("created_at",)
    extra = 0


@admin.register(Tag)
class TagAdmin(SavedThroughServicesMixin, ModelAdmin):
    list_display = ("name", "group", "kind", "created_at", "customers_link")
    list_filter = (("kind", ChoicesDropdownFilter), ("group", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("group",)
    search_fields = ("name", "group__name")
    fields = ("group", "name", "kind", "created_at")
    readonly_fields = ("created_at",)
    # Deleting asks first and lists the segment and tag rules that name it.
    delete_confirmation_template = "segments/admin/delete_confirmation_rules.html"
    delete_selected_confirmation_template = "segments/admin/delete_selected_confirmation_rules.html"

    @display(description=_("customers"))
    def customers_link(self, obj: Tag) -> str:
        """Link to the customer list filtered by this tag."""
        url = reverse("admin:customers_customer_changelist") + f"?tag={obj.pk}"
        return format_html('<a class="kequn-link" href="{}">{}</a>', url, _("Show customers"))


@admin.register(TagGroup)
class TagGroupAdmin(SavedThroughServicesMixin, ModelAdmin):
    list_display = ("name", "description", "tag_count")
    search_fields = ("name",)
    inlines = (TagInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        """Count the tags of each group in the same query."""
        return super().get_queryset(request).annotate(tag_total=Count("tags"))

    @display(description=_("tags"), ordering="tag_total")
    def tag_count(self, obj: TagGroup) -> int:
        """Return the number of tags in the group."""
        return obj.tag_total
