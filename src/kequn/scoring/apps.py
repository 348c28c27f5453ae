from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ScoringConfig(AppConfig):
    name = "kequn.scoring"
    verbose_name = _("Customer value scores")

    def ready(self) -> None:
        """Add this app's panels to the customer 360 page."""
        from kequn.scoring.profile import register_profile_panels

        register_profile_panels()
