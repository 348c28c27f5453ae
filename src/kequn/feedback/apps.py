from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FeedbackConfig(AppConfig):
    name = "kequn.feedback"
    verbose_name = _("Feedback")

    def ready(self) -> None:
        """Register roles, merges, the 360 panel, the journey trigger and the ticket hook."""
        # Models and services can be imported only once the app registry is ready.
        from kequn.feedback.models import Invitation, Response
        from kequn.feedback.profile import register_profile_panels
        from kequn.feedback.segment_fields import register_segment_fields
        from kequn.feedback.services import ANSWERED
        from kequn.ingest.merging import register_movable
        from kequn.journeys.registry import register_trigger
        from kequn.security.permissions import register_role_permissions
        from kequn.service.services import ticket_closed

        register_role_permissions(
            {
                "marketing": ["feedback.*"],
                "service": [
                    "feedback.view_*",
                    "feedback.add_invitation",
                    "feedback.change_followup",
                    "feedback.add_optout",
                ],
                "sales": ["feedback.view_response", "feedback.view_followup"],
                "analyst": ["feedback.view_*"],
            }
        )
        register_movable("survey_invitations", Invitation, "customer")
        register_movable("survey_responses", Response, "customer")
        register_profile_panels()
        register_segment_fields()
        register_trigger(
            ANSWERED,
            _("Answered a survey"),
            config_fields={"survey_id": _("survey"), "category": _("answer category")},
        )
        ticket_closed.connect(_ticket_closed, dispatch_uid="feedback_ticket_closed")


def _ticket_closed(sender, ticket, by, **kwargs) -> None:
    from kequn.feedback.services import handle_ticket_closed

    handle_ticket_closed(ticket=ticket, by=by)
