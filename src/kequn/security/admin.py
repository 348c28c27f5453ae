"""Back office for users, roles and API tokens (tokens are read-only: `kequn token create`)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group, User
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from unfold.admin import ModelAdmin
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from kequn.labels import get_permission_label
from kequn.security.models import ApiToken
from kequn.security.services import revoke_api_token

admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class UserAdmin(BaseUserAdmin, ModelAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm
    list_display = ("username", "email", "first_name", "last_name", "is_staff", "is_active")
    list_filter = ("is_staff", "is_superuser", "is_active", "groups")

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        """Name each permission in the user's language."""
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if db_field.name == "user_permissions" and field is not None:
            field.label_from_instance = get_permission_label
        return field


@admin.register(Group)
class GroupAdmin(BaseGroupAdmin, ModelAdmin):
    def formfield_for_manytomany(self, db_field, request, **kwargs):
        """Name each permission in the user's language."""
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if db_field.name == "permissions" and field is not None:
            field.label_from_instance = get_permission_label
        return field


@admin.register(ApiToken)
class ApiTokenAdmin(ModelAdmin):
    list_display = ("prefix", "name", "user", "created_at", "last_used_at", "expires_at", "revoked")
    list_filter = ("revoked",)
    list_select_related = ("user",)
    search_fields = ("prefix", "name", "user__username")
    fields = ("user", "name", "prefix", "created_at", "last_used_at", "expires_at", "revoked")
    readonly_fields = fields
    actions = ("revoke_tokens",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Refuse: `kequn token create` makes tokens and shows the secret once."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        """Refuse edits: a token is only ever revoked."""
        return False

    @admin.action(description=_("Revoke selected tokens"), permissions=["delete"])
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Revoke the chosen tokens through the security service."""
        ids = list(queryset.values_list("pk", flat=True))
        for token_id in ids:
            revoke_api_token(token_id, by=request.user)
        self.message_user(
            request,
            ngettext("%(count)d token revoked.", "%(count)d tokens revoked.", len(ids))
            % {"count": len(ids)},
            messages.SUCCESS,
        )
