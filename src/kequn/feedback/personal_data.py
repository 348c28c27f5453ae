"""The feedback app's personal data: invitations, answers (free text), follow-ups, opt-outs."""

from __future__ import annotations

from kequn.feedback.models import FollowUp, Invitation, OptOut, Response
from kequn.security.personal_data import register

register(
    Invitation,
    path="customer",
    export_as="survey_invitations",
    position=120,
    fields=["id", "survey_id", "about", "channel", "created_at", "sent_at", "answered_at"],
)
register(
    Response,
    path="customer",
    export_as="survey_responses",
    position=121,
    fields=["id", "survey_id", "score", "category", "answers", "comment", "answered_at"],
    audited=True,
)
register(FollowUp, path="response__customer", export_as="survey_follow_ups", position=122)
register(OptOut, path="customer", export_as="survey_opt_outs", position=123)
