from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class JourneysConfig(AppConfig):
    name = "kequn.journeys"
    verbose_name = _("Journeys")

    def ready(self) -> None:
        """Register the built-in triggers and steps, the 360 panel and the role permissions."""
        # Models can be imported only once the app registry is ready.
        from kequn.journeys.profile import register_profile_panels
        from kequn.journeys.roles import register_journey_permissions
        from kequn.journeys.steps import register_builtin_steps
        from kequn.journeys.triggers import register_builtin_triggers

        register_builtin_triggers()
        register_builtin_steps()
        register_journey_permissions()
        register_profile_panels()
