from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EventsConfig(AppConfig):
    name = "kequn.events"
    verbose_name = _("Behaviour")

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from kequn.events.models import Source

        # Any change to a source (revoked in the CLI, the back office or a shell) reaches
        # every worker's key cache at once.
        post_save.connect(_source_changed, sender=Source, dispatch_uid="events_source_saved")
        post_delete.connect(_source_changed, sender=Source, dispatch_uid="events_source_deleted")
        from kequn.events.profile import register_profile_panels

        register_profile_panels()  # the events timeline of the customer 360 page


def _source_changed(sender, **kwargs) -> None:
    from kequn.events.services import bump_sources_generation

    bump_sources_generation()
