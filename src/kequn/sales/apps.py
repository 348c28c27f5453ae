from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SalesConfig(AppConfig):
    name = "kequn.sales"
    verbose_name = _("Sales")

    def ready(self) -> None:
        """Give the roles their sales permissions and hook the app into the lower layers."""
        from kequn.sales import registrations

        registrations.register_all()
