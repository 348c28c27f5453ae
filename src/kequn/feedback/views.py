"""The public answer page of a survey: no login, a signed single-use link, works on a phone."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from kequn.feedback.models import Invitation, Survey
from kequn.feedback.services import (
    SCALES,
    InvitationError,
    SurveyError,
    find_invitation,
    opt_out,
    record_response,
)
from kequn.security.actors import system_actor

# The main question of each kind, in the customer's language.
MAIN_QUESTIONS: dict[str, Any] = {
    Survey.Kind.NPS: _lazy("How likely are you to recommend us to a friend or colleague?"),
    Survey.Kind.CSAT: _lazy("How satisfied are you with our service?"),
    Survey.Kind.CES: _lazy("How easy was it to get what you needed?"),
}
SCALE_ENDS: dict[str, tuple[Any, Any]] = {
    Survey.Kind.NPS: (_lazy("Not at all likely"), _lazy("Extremely likely")),
    Survey.Kind.CSAT: (_lazy("Very dissatisfied"), _lazy("Very satisfied")),
    Survey.Kind.CES: (_lazy("Very easy"), _lazy("Very difficult")),
}
ACTOR = system_actor("survey-page")


def _language_of(invitation: Invitation) -> str:
    language = (invitation.customer.preferred_language or "").lower()
    return "en" if language.startswith("en") else "zh-hans"


def _questions(survey: Survey, language: str) -> list[dict]:
    questions = []
    for question in survey.questions:
        text = question["text"].get(language) or next(v for v in question["text"].values() if v)
        item = {**question, "label": text}
        if question["type"] == "scale":
            item["choices"] = list(range(question.get("min", 1), question.get("max", 5) + 1))
        questions.append(item)
    return questions


def _page(request: HttpRequest, template: str, status: int = 200, **context) -> HttpResponse:
    response = render(request, f"feedback/{template}", context, status=status)
    response["X-Robots-Tag"] = "noindex"
    response["Referrer-Policy"] = "no-referrer"  # the link is the key: never leak it
    return response


@never_cache
@csrf_exempt  # the signed single-use token stands in for the CSRF token; no session is used
def answer_view(request: HttpRequest, token: str) -> HttpResponse:
    """Show the survey; on POST store the answer once and thank the customer."""
    try:
        invitation = find_invitation(token)
    except InvitationError as exc:
        return _page(request, "message.html", status=404, message=str(exc))
    with translation.override(_language_of(invitation)):
        survey = invitation.survey
        if invitation.answered_at is not None:
            return _page(
                request,
                "message.html",
                status=410,
                message=_("This survey has already been answered. Thank you!"),
            )
        error = ""
        if request.method == "POST":
            try:
                record_response(token=token, answers=request.POST.dict(), by=ACTOR)
            except InvitationError as exc:
                return _page(request, "message.html", status=410, message=str(exc))
            except SurveyError as exc:
                error = str(exc)
            else:
                return _page(request, "message.html", message=_("Thank you for your answer!"))
        scale = SCALES.get(survey.kind)
        low_label, high_label = SCALE_ENDS.get(survey.kind, ("", ""))
        return _page(
            request,
            "answer.html",
            status=400 if error else 200,
            survey=survey,
            token=token,
            error=error,
            main_question=str(MAIN_QUESTIONS[survey.kind]) if scale else "",
            scale=list(range(scale[0], scale[1] + 1)) if scale else [],
            low_label=str(low_label),
            high_label=str(high_label),
            questions=_questions(survey, translation.get_language() or "zh-hans"),
            posted=request.POST if request.method == "POST" else {},
        )


@never_cache
@csrf_exempt  # as above: the signed token authorises the request
def opt_out_view(request: HttpRequest, token: str) -> HttpResponse:
    """Ask (GET) and record (POST) that the customer wants no more surveys."""
    try:
        invitation = find_invitation(token)
    except InvitationError as exc:
        return _page(request, "message.html", status=404, message=str(exc))
    with translation.override(_language_of(invitation)):
        if request.method == "POST":
            opt_out(customer=invitation.customer, source=f"survey link #{invitation.pk}", by=ACTOR)
            return _page(
                request, "message.html", message=_("You will not receive surveys from us again.")
            )
        return _page(request, "opt_out.html", token=token)
