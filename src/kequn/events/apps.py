from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save
from django.utils.translation import gettext_lazy as _


class EventsConfig(AppConfig):
    name = "kequn.events"
    verbose_name = _("Behaviour")

    def ready(self) -> None:
        """Connect the key-cache signals; register the events importer and merge rows."""
        # Models can be imported only once the app registry is ready.
        from kequn.events.importer import EventImporter
        from kequn.events.models import AnonymousLink, Event, Source
        from kequn.ingest.importers.base import register_importer
        from kequn.ingest.merging import register_movable

        register_importer(EventImporter)
        # A customer's events and anonymous ids follow them into a merge (and back on undo).
        register_movable("events", Event, "customer")
        register_movable("anonymous_links", AnonymousLink, "customer")
        # Any change to a source (revoked in the CLI, the back office or a shell) reaches
        # every worker's key cache at once.
        post_save.connect(_source_changed, sender=Source, dispatch_uid="events_source_saved")
        post_delete.connect(_source_changed, sender=Source, dispatch_uid="events_source_deleted")
        from kequn.events.profile import register_profile_panels

        register_profile_panels()  # the events timeline of the customer 360 page


def _source_changed(sender, **kwargs) -> None:
    # The services module imports models, which apps.py may not at import time.
    from kequn.events.services import bump_sources_generation

    bump_sources_generation()
