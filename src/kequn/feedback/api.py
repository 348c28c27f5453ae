"""Feedback API: surveys (create, invite, report) and the answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, Router, Schema
from ninja.errors import HttpError

from kequn.apiutils import ObjectId, Page, check_perm, paginate
from kequn.customers.models import Customer
from kequn.feedback import selectors, services
from kequn.feedback.models import Response, Survey
from kequn.security.permissions import scope_customers
from kequn.segments.models import Segment, SegmentMember

surveys = Router(tags=["surveys"])
responses = Router(tags=["surveys"])
MAX_INVITE = 10_000


class SurveyIn(Schema):
    name: str = Field(..., min_length=1, max_length=200)
    kind: str = Field("nps", max_length=10)
    questions: list[dict[str, Any]] = Field(default_factory=list, max_length=50)
    trigger: str = Field("manual", max_length=20)
    delay_days: int = Field(7, ge=0, le=365)
    valid_days: int = Field(30, ge=1, le=365)


class SurveyOut(Schema):
    id: int
    name: str
    kind: str
    questions: list[dict[str, Any]]
    trigger: str
    delay_days: int
    valid_days: int
    is_active: bool
    created_at: datetime


class InviteIn(Schema):
    customer_ids: list[ObjectId] = Field(default_factory=list, max_length=MAX_INVITE)
    segment_id: ObjectId | None = None
    about: str = Field("", max_length=64)
    send: bool = True


class InviteOut(Schema):
    invited: int
    counts: dict[str, int]


class ResponseOut(Schema):
    id: int
    survey_id: int
    customer_id: int
    score: int | None
    category: str
    answers: dict[str, Any]
    comment: str
    language: str
    sentiment: float | None
    keywords: list[str]
    topic: str
    answered_at: datetime


def _user(request: HttpRequest):
    return getattr(request, "auth", None) or request.user


@surveys.get("", response=Page[SurveyOut], summary="Surveys")
def list_surveys(request: HttpRequest, cursor: str | None = None, limit: int = 50):
    check_perm(request, "feedback.view_survey")
    return paginate(Survey.objects.all(), cursor, limit)


@surveys.get("/{int:survey_id}", response=SurveyOut, summary="One survey")
def get_survey(request: HttpRequest, survey_id: ObjectId):
    check_perm(request, "feedback.view_survey")
    return get_object_or_404(Survey, pk=survey_id)


@surveys.post("", response={201: SurveyOut}, summary="Create a survey")
def create_survey(request: HttpRequest, payload: SurveyIn):
    check_perm(request, "feedback.add_survey")
    try:
        survey = services.create_survey(**payload.dict(), by=_user(request))
    except services.SurveyError as exc:
        raise HttpError(422, str(exc)) from None
    return 201, survey


@surveys.post(
    "/{int:survey_id}/invitations",
    response=InviteOut,
    summary="Invite customers (by id or a segment's members) and e-mail the links",
)
def invite(request: HttpRequest, survey_id: ObjectId, payload: InviteIn):
    check_perm(request, "feedback.add_invitation")
    survey = get_object_or_404(Survey, pk=survey_id)
    visible = scope_customers(_user(request), Customer.objects.all())
    ids = list(visible.filter(pk__in=payload.customer_ids).values_list("pk", flat=True))
    if len(ids) < len(set(payload.customer_ids)):
        raise Http404("no such customer (or not visible to you) among customer_ids")
    if payload.segment_id is not None:
        segment = Segment.objects.filter(pk=payload.segment_id).first()
        if segment is None:
            raise Http404(f"no segment #{payload.segment_id}")
        members = SegmentMember.objects.filter(segment=segment, customer__in=visible)
        ids += list(members.values_list("customer_id", flat=True)[: MAX_INVITE + 1])
    if len(ids) > MAX_INVITE:
        raise HttpError(422, f"at most {MAX_INVITE} customers per call: invite in parts")
    try:
        if payload.send:
            counts = services.invite_and_send(
                survey=survey, customer_ids=ids, about=payload.about, by=_user(request)
            )
            invited = counts.pop("invited", 0)
        else:
            result = services.invite_customers(
                survey=survey, customer_ids=ids, about=payload.about, by=_user(request)
            )
            counts, invited = result.skipped, len(result.created)
    except services.SurveyError as exc:
        raise HttpError(422, str(exc)) from None
    return {"invited": invited, "counts": dict(counts)}


@surveys.get(
    "/{int:survey_id}/report", summary="Scores, response rate, months, topics, closed loop"
)
def survey_report(request: HttpRequest, survey_id: ObjectId) -> dict[str, Any]:
    check_perm(request, "feedback.view_response")
    survey = get_object_or_404(Survey, pk=survey_id)
    answers = Response.objects.filter(survey=survey)
    return {
        "survey_id": survey.pk,
        "summary": selectors.summarize_scores(answers),
        "response_rate": selectors.get_response_rate(survey),
        "months": selectors.get_scores_by_month(answers),
        "topics": selectors.get_top_topics(answers),
        "loop": selectors.get_loop_outcome(survey),
    }


@responses.get("", response=Page[ResponseOut], summary="Survey answers")
def list_responses(
    request: HttpRequest,
    survey_id: ObjectId | None = None,
    customer_id: ObjectId | None = None,
    cursor: str | None = None,
    limit: int = 50,
):
    check_perm(request, "feedback.view_response")
    qs = scope_customers(_user(request), Response.objects.all(), "customer")
    if survey_id is not None:
        qs = qs.filter(survey_id=survey_id)
    if customer_id is not None:
        qs = qs.filter(customer_id=customer_id)
    return paginate(qs, cursor, limit)


@responses.get("/{int:response_id}", response=ResponseOut, summary="One answer")
def get_response(request: HttpRequest, response_id: ObjectId):
    check_perm(request, "feedback.view_response")
    rows = scope_customers(_user(request), Response.objects.all(), "customer")
    return get_object_or_404(rows, pk=response_id)


routers: list[tuple[str, Router]] = [
    ("/v1/surveys", surveys),
    ("/v1/survey-responses", responses),
]
