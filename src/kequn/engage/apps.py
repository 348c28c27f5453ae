from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EngageConfig(AppConfig):
    name = "kequn.engage"
    verbose_name = _("Engagement")
