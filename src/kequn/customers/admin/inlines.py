"""The tabs of the customer form: identities, addresses, consents, tags, contacts, employers."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from unfold.admin import StackedInline, TabularInline
from unfold.decorators import display

from kequn.customers.access import CustomerChoicesMixin
from kequn.customers.identities import IdentityError, normalize_identity
from kequn.customers.models import Address, CompanyContact, Consent, CustomerTag, Identity
from kequn.security.masking import mask_address_line, mask_identity_for


class IdentityForm(forms.ModelForm):
    def clean(self) -> dict[str, Any]:
        """Store the value normalised, as the services do."""
        data = super().clean()
        kind, value = data.get("kind"), data.get("value")
        if kind and value:
            try:
                data["value"] = normalize_identity(kind, value)
            except IdentityError as exc:
                self.add_error("value", str(exc))
            if kind != Identity.Kind.EXTERNAL:
                data["system"] = ""
            # The unique constraint is on the blind index, which the form does not show.
            if "value" not in self.errors and (
                Identity.objects.with_value(data["value"])
                .filter(kind=kind, system=data.get("system") or "")
                .exclude(pk=self.instance.pk)
                .exists()
            ):
                self.add_error("value", _("This identity already belongs to a customer."))
        return data


class IdentityInline(TabularInline):
    model = Identity
    form = IdentityForm
    fields = ("kind", "system", "value", "verified", "created_at")
    readonly_fields = ("created_at",)
    extra = 0
    tab = True


class AddressInline(StackedInline):
    model = Address
    fields = (
        ("label", "is_default"),
        ("country", "province", "city", "district"),
        ("line", "postcode"),
    )
    extra = 0
    tab = True


def make_masked_identity_inline(unmasked: frozenset[str]) -> type[IdentityInline]:
    """Return an identities tab showing values masked for this viewer, read-only."""

    class MaskedIdentityInline(IdentityInline):
        fields = ("kind", "system", "shown_value", "verified", "created_at")
        readonly_fields = fields
        hide_title = True  # the row title is the identity's text, value unmasked
        can_delete = False

        def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
            """Refuse: a value this user may not see cannot be entered or checked either."""
            return False

        def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
            """Refuse edits of masked values."""
            return False

        @display(description=_("value"))
        def shown_value(self, obj: Identity) -> str:
            """Show the value masked for this viewer."""
            return mask_identity_for(unmasked, obj.kind, obj.value)

    return MaskedIdentityInline


class MaskedAddressInline(AddressInline):
    """Addresses readable down to the district, the street line masked, read-only."""

    fields = (("label", "is_default"), ("country", "province", "city", "district"), "masked_line")
    readonly_fields = ("label", "is_default", "country", "province", "city", "district")
    readonly_fields += ("masked_line",)
    hide_title = True  # the title is the address's text, street line unmasked
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Refuse: without seeing addresses this user does not enter them."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Refuse edits of masked addresses."""
        return False

    @display(description=_("street address"))
    def masked_line(self, obj: Address) -> str:
        """Show the street line masked."""
        return mask_address_line(obj.line)


class ConsentInline(TabularInline):
    """Consents are append-only: past decisions are shown, a new decision is added."""

    model = Consent
    fields = ("channel", "purpose", "granted", "source", "recorded_at")
    readonly_fields = ("recorded_at",)
    extra = 0
    can_delete = False
    tab = True

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Refuse edits: a consent record is evidence and is never changed."""
        return False


class CustomerTagInline(TabularInline):
    model = CustomerTag
    fields = ("tag", "added_by", "added_at")
    readonly_fields = ("added_by", "added_at")
    autocomplete_fields = ("tag",)
    extra = 0
    tab = True
    verbose_name_plural = _("tags")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        """Load tags and their authors with the links."""
        return super().get_queryset(request).select_related("tag__group", "added_by")


class ContactInline(CustomerChoicesMixin, TabularInline):
    model = CompanyContact
    fk_name = "company"
    fields = ("contact", "title", "is_primary")
    autocomplete_fields = ("contact",)
    extra = 0
    tab = True
    verbose_name = _("contact")
    verbose_name_plural = _("contacts")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        """Load the contact people with the links."""
        return super().get_queryset(request).select_related("contact")


class EmployerInline(CustomerChoicesMixin, TabularInline):
    model = CompanyContact
    fk_name = "contact"
    fields = ("company", "title", "is_primary")
    autocomplete_fields = ("company",)
    extra = 0
    tab = True
    verbose_name = _("company")
    verbose_name_plural = _("companies")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        """Load the companies with the links."""
        return super().get_queryset(request).select_related("company")
