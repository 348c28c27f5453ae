from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CommerceConfig(AppConfig):
    name = "kequn.commerce"
    verbose_name = _("Commerce")

    def ready(self) -> None:
        """Add this app's panels to the customer 360 page."""
        from kequn.commerce.profile import register_profile_panels

        register_profile_panels()
