"""Back office for the loyalty programme: rules, tiers, members, the ledger, rewards, coupons.

The ledger is read-only here: points change only through the services (adjustments through
the API or `kequn loyalty adjust`, which ask for a reason and write the audit trail).
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.paginator import InfinitePaginator

from kequn.customers.access import CustomerScopedAdminMixin
from kequn.loyalty import services
from kequn.loyalty.models import (
    Coupon,
    LedgerEntry,
    Member,
    Programme,
    Redemption,
    Referral,
    Reward,
    Tier,
    TierChange,
    open_points,
)
from kequn.security.actors import Actor


class ReadOnlyAdmin(ModelAdmin):
    """Rows written only by the services: viewable, never added, changed or deleted here."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Programme)
class ProgrammeAdmin(ModelAdmin):
    list_display = ("name", "is_active", "points_per_unit", "point_value", "pending_days", "expiry")
    fieldsets = (
        (None, {"fields": ("name", "is_active", "auto_enroll")}),
        (
            _("Earning"),
            {
                "fields": (
                    "points_per_unit",
                    "category_multipliers",
                    "campaign_multipliers",
                    "event_points",
                    "pending_days",
                )
            },
        ),
        (
            _("Expiry and value"),
            {
                "fields": (
                    "expiry",
                    "expiry_days",
                    "expiry_months",
                    "point_value",
                    "allow_negative_balance",
                )
            },
        ),
        (
            _("Tiers and referrals"),
            {
                "fields": (
                    "tier_basis",
                    "referrer_points",
                    "referee_points",
                    "referral_min_amount",
                    "referral_monthly_cap",
                )
            },
        ),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        """One programme: add it only when none exists."""
        return super().has_add_permission(request) and not Programme.objects.exists()


@admin.register(Tier)
class TierAdmin(ModelAdmin):
    list_display = (
        "rank",
        "code",
        "name",
        "threshold",
        "earn_multiplier",
        "discount_percent",
        "birthday_points",
    )


@admin.register(Member)
class MemberAdmin(CustomerScopedAdminMixin, ReadOnlyAdmin):
    list_display = ("customer", "tier", "balance", "pending", "joined_at")
    list_filter = ("tier",)
    search_fields = ("=customer__id", "referral_code")
    list_select_related = ("customer", "tier")
    paginator = InfinitePaginator
    show_full_result_count = False


@admin.register(LedgerEntry)
class LedgerEntryAdmin(CustomerScopedAdminMixin, ReadOnlyAdmin):
    customer_path = "member__customer"
    list_display = (
        "id",
        "member",
        "kind",
        "points",
        "pending",
        "order_ref",
        "reason",
        "created_at",
        "expires_at",
        "unspent",
    )
    list_filter = ("kind", "source")
    search_fields = ("=member__customer__id", "=order_ref", "=key")
    paginator = InfinitePaginator
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[LedgerEntry]:
        return super().get_queryset(request).annotate(open_points=open_points())

    @admin.display(description=_("unspent points"), ordering="open_points")
    def unspent(self, obj: LedgerEntry) -> int:
        return int(getattr(obj, "open_points", obj.remaining))


@admin.register(TierChange)
class TierChangeAdmin(CustomerScopedAdminMixin, ReadOnlyAdmin):
    customer_path = "member__customer"
    list_display = ("member", "from_tier", "to_tier", "reason", "changed_at")
    search_fields = ("=member__customer__id",)


@admin.register(Reward)
class RewardAdmin(ModelAdmin):
    list_display = ("code", "name", "kind", "points_cost", "stock", "per_member_limit", "is_active")
    list_filter = ("kind", "is_active")
    search_fields = ("code", "name")


@admin.register(Redemption)
class RedemptionAdmin(CustomerScopedAdminMixin, ModelAdmin):
    customer_path = "member__customer"
    list_display = ("id", "member", "reward", "points", "status", "created_at")
    list_filter = ("status",)
    readonly_fields = ("member", "reward", "points", "spend", "status", "created_at")
    actions = ("cancel_redemptions",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Redemptions are made by redeeming points (API, journeys), never added here."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """A redemption is cancelled (points back), never deleted."""
        return False

    @admin.action(description=_("Cancel (points back with their expiry)"), permissions=["change"])
    def cancel_redemptions(self, request: HttpRequest, queryset: Any) -> None:
        """Cancel the chosen unused redemptions."""
        done = 0
        for redemption in queryset:
            try:
                services.cancel_redemption(
                    redemption_id=redemption.pk, by=cast("Actor", request.user)
                )
                done += 1
            except services.LoyaltyError as exc:
                self.message_user(request, exc.message, messages.ERROR)
        if done:
            self.message_user(request, _("%(n)s redemptions cancelled.") % {"n": done})


@admin.register(Coupon)
class CouponAdmin(CustomerScopedAdminMixin, ReadOnlyAdmin):
    customer_path = "member__customer"
    list_display = (
        "code",
        "member",
        "kind",
        "amount",
        "percent",
        "status",
        "expires_at",
        "order_ref",
    )
    list_filter = ("status", "kind", "source")
    search_fields = ("=code", "=member__customer__id", "=order_ref")
    paginator = InfinitePaginator
    show_full_result_count = False


@admin.register(Referral)
class ReferralAdmin(CustomerScopedAdminMixin, ReadOnlyAdmin):
    customer_path = "referrer__customer"
    list_display = ("referrer", "referee", "status", "reason", "created_at", "rewarded_at")
    list_filter = ("status",)
