"""Journeys API: the routers kequn.api mounts, as (prefix, router) pairs.

/api/v1/journeys: list, read (with the counts at each step), pause, resume. Marketing manages
journeys; analysts read them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router, Schema
from ninja.errors import HttpError

from kequn.apiutils import ObjectId, Page, check_perm, paginate
from kequn.journeys import services
from kequn.journeys.models import Journey
from kequn.journeys.selectors import get_flow, list_journeys

router = Router(tags=["journeys"])


class JourneyOut(Schema):
    id: int
    name: str
    description: str
    status: str
    trigger_kind: str
    trigger_config: dict[str, Any]
    reentry: str
    reentry_days: int
    goal: dict[str, Any] | None
    steps: list[dict[str, Any]]
    activated_at: datetime | None
    created_at: datetime
    enrolled: int


class StepCountOut(Schema):
    id: str
    kind: str
    passed: int
    here: int
    errors: int
    branches: dict[str, int]


class JourneyDetailOut(JourneyOut):
    open: int
    completed: int
    exited: int
    step_counts: list[StepCountOut]


def _user(request: HttpRequest) -> Any:
    return getattr(request, "auth", None) or request.user


def _detail(journey: Journey) -> dict[str, Any]:
    flow = get_flow(journey)
    boxes = [box for row in flow["rows"] for box in row]
    return {
        **{f: getattr(journey, f) for f in JourneyOut.model_fields if f != "enrolled"},
        "enrolled": flow["entered"],
        "open": flow["open"],
        "completed": flow["completed"],
        "exited": flow["exited"],
        "step_counts": [
            {
                "id": b.id,
                "kind": b.kind,
                "passed": b.passed,
                "here": b.here,
                "errors": b.errors,
                "branches": b.branches,
            }
            for b in sorted(boxes, key=lambda b: [s["id"] for s in journey.steps].index(b.id))
        ],
    }


@router.get("", response=Page[JourneyOut], summary="List journeys (newest first)")
def list_journeys_view(request: HttpRequest, cursor: str | None = None, limit: int = 50):
    check_perm(request, "journeys.view_journey")
    page = paginate(list_journeys(), cursor, limit)
    for journey in page["items"]:
        journey.enrolled = journey.enrolled_total
    return page


@router.get("/{journey_id}", response=JourneyDetailOut, summary="Read a journey with its counts")
def get_journey(request: HttpRequest, journey_id: ObjectId):
    check_perm(request, "journeys.view_journey")
    return _detail(get_object_or_404(Journey, pk=journey_id))


def _change_status(request: HttpRequest, journey_id: int, change: Any) -> dict[str, Any]:
    check_perm(request, "journeys.change_journey")
    journey = get_object_or_404(Journey, pk=journey_id)
    try:
        journey = change(journey, by=_user(request))
    except ValidationError as exc:
        raise HttpError(400, " ".join(exc.messages)) from None
    return _detail(journey)


@router.post("/{journey_id}/pause", response=JourneyDetailOut, summary="Pause a journey")
def pause_journey(request: HttpRequest, journey_id: ObjectId):
    return _change_status(request, journey_id, services.pause_journey)


@router.post("/{journey_id}/resume", response=JourneyDetailOut, summary="Resume a journey")
def resume_journey(request: HttpRequest, journey_id: ObjectId):
    return _change_status(request, journey_id, services.resume_journey)


routers: list[tuple[str, Router]] = [("/v1/journeys", router)]
