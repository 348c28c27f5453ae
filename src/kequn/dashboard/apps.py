from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DashboardConfig(AppConfig):
    name = "kequn.dashboard"
    label = "dashboard"
    verbose_name = _("Dashboard")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Name the admin home page after the dashboard it shows, not "Site administration"."""
        from django.contrib import admin

        from kequn.dashboard import changelists
        from kequn.labels import name_upstream_apps

        changelists.install()

        # Here, in the last app of INSTALLED_APPS, every upstream app is loaded.
        name_upstream_apps()
        admin.site.index_title = _("Dashboard")
        admin.site.site_title = _("Kequn")
        admin.site.site_header = _("Kequn 客群")
