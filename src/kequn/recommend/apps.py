from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RecommendConfig(AppConfig):
    name = "kequn.recommend"
    verbose_name = _("Recommendations")

    def ready(self) -> None:
        """Add this app's panels to the customer 360 page."""
        from kequn.recommend.profile import register_profile_panels

        register_profile_panels()
