from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save
from django.utils.translation import gettext_lazy as _


class ServiceConfig(AppConfig):
    name = "kequn.service"
    verbose_name = _("Service")

    def ready(self) -> None:
        """Grant ticket rights; add the tickets panel and complaint triggers; drop stale calendars."""
        # Models can be imported only once the app registry is ready.
        from kequn.security.permissions import register_role_permissions
        from kequn.service.models import BusinessCalendar, CalendarDay, SlaPolicy
        from kequn.service.profile import register_profile_panels
        from kequn.service.sla import forget_calendars

        register_role_permissions(
            {
                # Agents work tickets: read and answer, assign, merge, close; see the setup.
                "service": [
                    "service.view_*",
                    "service.add_ticket",
                    "service.change_ticket",
                    "service.add_ticketmessage",
                    "service.change_inboundemail",
                ],
                # Reps see and open tickets of their own accounts and answer them.
                "sales": [
                    "service.view_ticket",
                    "service.add_ticket",
                    "service.view_ticketmessage",
                    "service.add_ticketmessage",
                    "service.view_attachment",
                ],
                # Analysts read tickets and the SLA reports (personal fields masked).
                "analyst": ["service.view_*"],
            }
        )
        register_profile_panels()
        from kequn.service.segment_fields import register_segment_fields

        register_segment_fields()  # open tickets and complaints in segment rules
        from kequn.journeys.registry import register_trigger
        from kequn.service.services import COMPLAINT_OPENED, COMPLAINT_RESOLVED

        # A complaint can start a win-back journey; its resolution can start a check-in.
        for kind, label in (
            (COMPLAINT_OPENED, _("A complaint was opened")),
            (COMPLAINT_RESOLVED, _("A complaint was resolved")),
        ):
            register_trigger(kind, label, config_fields={"priority": _("priority")})
        for model in (BusinessCalendar, CalendarDay, SlaPolicy):
            post_save.connect(
                forget_calendars, sender=model, dispatch_uid=f"service_cal_{model.__name__}"
            )
            post_delete.connect(
                forget_calendars, sender=model, dispatch_uid=f"service_cald_{model.__name__}"
            )
