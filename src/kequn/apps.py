from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class KequnConfig(AppConfig):
    """Project-wide commands: serve, worker."""

    name = "kequn"
    label = "kequn"
    verbose_name = _("Kequn")
