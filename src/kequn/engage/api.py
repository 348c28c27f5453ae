"""Engagement API: the routers kequn.api mounts, as (prefix, router) pairs.

/api/v1/campaigns: list, create, read, send (the worker sends), report. Marketing creates and
sends; analysts and auditors read campaigns and their reports.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, Router, Schema, Status

from kequn.apiutils import BoundedDateTime, ObjectId, Page, check_perm, paginate
from kequn.engage import selectors, services
from kequn.engage.models import Campaign, Template
from kequn.segments.models import Segment

router = Router(tags=["campaigns"])

Channel = Literal["email", "sms", "wechat", "webhook"]


class CampaignIn(Schema):
    name: str = Field(..., min_length=1, max_length=200)
    segment_id: ObjectId
    channel: Channel = "email"
    template_id: ObjectId | None = Field(None, description="an existing template; else the body")
    subject: str = Field("", max_length=300)
    body: str = Field("", max_length=200_000, description="Chinese body (HTML for email)")
    subject_en: str = Field("", max_length=300)
    body_en: str = Field("", max_length=200_000)
    holdout_percent: int = Field(10, ge=0, le=50)
    conversion_days: int = Field(7, ge=1, le=90)
    schedule: Literal["now", "at", "daily", "weekly"] = "now"
    next_run_at: BoundedDateTime | None = None
    variant_template_ids: list[ObjectId] = Field(default_factory=list, max_length=8)
    ab_test_percent: int = Field(0, ge=0, le=100)
    ab_window_hours: int = Field(24, ge=1, le=24 * 30)


class CampaignOut(Schema):
    id: int
    name: str
    segment_id: int | None
    segment_name: str
    channel: str
    template_id: int
    schedule: str
    next_run_at: datetime | None
    holdout_percent: int
    conversion_days: int
    ab_test_percent: int
    status: str
    last_error: str
    created_at: datetime


class SendOut(Schema):
    run: int
    audience: int
    skipped: dict[str, int]


def _user(request: HttpRequest) -> Any:
    return getattr(request, "auth", None) or request.user


def _get(campaign_id: int) -> Campaign:
    return get_object_or_404(Campaign.objects.select_related("segment", "template"), pk=campaign_id)


@router.get("", response=Page[CampaignOut], summary="List campaigns (newest first)")
def list_campaigns(request: HttpRequest, cursor: str | None = None, limit: int = 50):
    check_perm(request, "engage.view_campaign")
    return paginate(selectors.list_campaigns(), cursor, limit)


@router.post("", response={201: CampaignOut}, summary="Create a campaign to a segment")
def create_campaign(request: HttpRequest, payload: CampaignIn):
    check_perm(request, "engage.add_campaign")
    by = _user(request)
    segment = get_object_or_404(Segment, pk=payload.segment_id)
    if payload.template_id is not None:
        template = get_object_or_404(Template, pk=payload.template_id)
    else:
        check_perm(request, "engage.add_template")
        template = services.create_template(
            name=f"{payload.name} · {payload.channel}",
            channel=payload.channel,
            subject_zh=payload.subject,
            body_zh=payload.body,
            subject_en=payload.subject_en,
            body_en=payload.body_en,
            by=by,
        )
    variants = [get_object_or_404(Template, pk=pk) for pk in payload.variant_template_ids]
    campaign = services.create_campaign(
        name=payload.name,
        segment=segment,
        template=template,
        channel=payload.channel,
        holdout_percent=payload.holdout_percent,
        conversion_days=payload.conversion_days,
        schedule=payload.schedule,
        next_run_at=payload.next_run_at,
        variants=variants,
        ab_test_percent=payload.ab_test_percent,
        ab_window_hours=payload.ab_window_hours,
        by=by,
    )
    return Status(201, _get(campaign.pk))


@router.get("/{campaign_id}", response=CampaignOut, summary="Read a campaign")
def get_campaign(request: HttpRequest, campaign_id: ObjectId):
    check_perm(request, "engage.view_campaign")
    return _get(campaign_id)


@router.post(
    "/{campaign_id}/send",
    response={202: SendOut},
    summary="Evaluate the audience now and queue the messages (the worker sends them)",
)
def send_campaign(request: HttpRequest, campaign_id: ObjectId):
    check_perm(request, "engage.send_campaign")
    result = services.send_campaign(_get(campaign_id), by=_user(request))
    return Status(202, result)


@router.get("/{campaign_id}/report", summary="Audience, groups, skips by reason, sends, uplift")
def get_report(request: HttpRequest, campaign_id: ObjectId) -> dict[str, Any]:
    check_perm(request, "engage.view_campaign")
    return selectors.build_report(_get(campaign_id))


routers: list[tuple[str, Router]] = [("/v1/campaigns", router)]
