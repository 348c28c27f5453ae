from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LoyaltyConfig(AppConfig):
    name = "kequn.loyalty"
    verbose_name = _("Loyalty")

    def ready(self) -> None:
        """Earn on orders, grant the roles, add the 360 panel and the journey hooks."""
        from kequn.commerce.hooks import register_order_listener, register_run_finisher
        from kequn.loyalty.integrations import register_integrations
        from kequn.loyalty.profile import register_profile_panels
        from kequn.loyalty.segment_fields import register_segment_fields
        from kequn.loyalty.services import earn_for_orders_listener, run_tier_checks
        from kequn.security.permissions import register_role_permissions

        register_order_listener("loyalty", earn_for_orders_listener)
        register_run_finisher("loyalty", lambda by: run_tier_checks(by=by))
        register_role_permissions(
            {
                "marketing": ["loyalty.*"],
                "service": [
                    "loyalty.view_*",
                    "loyalty.add_redemption",
                    "loyalty.change_redemption",
                    "loyalty.change_coupon",
                    "loyalty.add_ledgerentry",
                ],
                "sales": [
                    "loyalty.view_member",
                    "loyalty.view_ledgerentry",
                    "loyalty.view_coupon",
                    "loyalty.view_redemption",
                    "loyalty.view_reward",
                    "loyalty.view_tier",
                    "loyalty.add_redemption",
                    "loyalty.change_coupon",
                ],
                "analyst": ["loyalty.view_*"],
            }
        )
        register_profile_panels()
        register_integrations()
        register_segment_fields()
