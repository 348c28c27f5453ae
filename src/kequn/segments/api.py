"""REST endpoints for segments: CRUD, live count of a rule, members, history, export."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, Router, Schema, Status
from pydantic import ConfigDict

from kequn.apiutils import ObjectId, Page, check_perm, paginate
from kequn.customers.models import Customer
from kequn.security.permissions import can_view_all_customers, scope_customers
from kequn.segments import services
from kequn.segments.access import check_rule_access, count_visible_matches, count_visible_members
from kequn.segments.export import make_export_response
from kequn.segments.models import MembershipChange, Segment, SegmentSize
from kequn.segments.rule_schema import RuleBody
from kequn.segments.rules import describe_fields

router = Router(tags=["segments"])


class SegmentIn(Schema):
    name: str = Field(..., min_length=1, max_length=200)
    description: str = ""
    kind: Literal["dynamic", "static"] = "dynamic"
    rules: RuleBody = Field(default_factory=lambda: {"match": "all", "conditions": []})

    # Every segment needs rules (an empty group is refused), static ones too.
    model_config = ConfigDict(json_schema_extra={"required": ["name", "rules"]})


class SegmentPatch(Schema):
    # Omit a field to keep it; null is refused (422) because no segment field may be empty.
    # The None defaults mark "omitted" and are never validated, hence the type ignores.
    name: str = Field(None, min_length=1, max_length=200)  # type: ignore[assignment]
    description: str = Field(None)  # type: ignore[assignment]
    kind: Literal["dynamic", "static"] = Field(None)  # type: ignore[arg-type]
    rules: RuleBody = Field(None)  # type: ignore[arg-type]


class SegmentOut(Schema):
    id: int
    name: str
    description: str
    kind: str
    rules: dict[str, Any]
    member_count: int
    refreshed_at: datetime | None
    created_at: datetime

    @staticmethod
    def resolve_member_count(obj: Segment, context) -> int:
        # A rep limited to own accounts learns how many of *their* customers are members.
        request = (context or {}).get("request")
        return count_visible_members(_user(request) if request else None, obj)


class RuleIn(Schema):
    rules: RuleBody


class CountOut(Schema):
    count: int


class MemberOut(Schema):
    id: int
    name: str
    kind: str
    city: str
    province: str


class RefreshOut(Schema):
    size: int
    entered: int
    left: int


class SizeOut(Schema):
    measured_at: datetime
    size: int
    entered: int
    left: int


class ChangeOut(Schema):
    customer_id: int
    change: str
    changed_at: datetime


class HistoryOut(Schema):
    sizes: list[SizeOut]
    changes: list[ChangeOut]


def _user(request: HttpRequest):
    return getattr(request, "auth", None) or request.user


def _get(segment_id: int) -> Segment:
    return get_object_or_404(Segment, pk=segment_id)


@router.get("", response=Page[SegmentOut], summary="List segments (newest first)")
def list_segments(request: HttpRequest, cursor: str | None = None, limit: int = 50):
    check_perm(request, "segments.view_segment")
    return paginate(Segment.objects.all(), cursor, limit)


@router.post("", response={201: SegmentOut}, summary="Create a segment (evaluated at once)")
def create_segment(request: HttpRequest, payload: SegmentIn):
    check_perm(request, "segments.add_segment")
    check_rule_access(_user(request), payload.rules)
    segment = services.create_segment(
        payload.name,
        payload.rules,
        kind=payload.kind,
        description=payload.description,
        by=_user(request),
    )
    return Status(201, _get(segment.pk))


@router.get("/fields", summary="Fields, types and operators a rule can use")
def list_fields(request: HttpRequest):
    check_perm(request, "segments.view_segment")
    return describe_fields()


@router.post("/count", response=CountOut, summary="Count the customers matching a rule")
def count_rule(request: HttpRequest, payload: RuleIn):
    check_perm(request, "segments.view_segment")
    return {"count": count_visible_matches(_user(request), payload.rules)}


@router.get("/{int:segment_id}", response=SegmentOut, summary="Read a segment")
def get_segment(request: HttpRequest, segment_id: ObjectId):
    check_perm(request, "segments.view_segment")
    return _get(segment_id)


@router.patch("/{int:segment_id}", response=SegmentOut, summary="Change a segment")
def update_segment(request: HttpRequest, segment_id: ObjectId, payload: SegmentPatch):
    check_perm(request, "segments.change_segment")
    if payload.rules is not None:
        check_rule_access(_user(request), payload.rules)
    segment = services.update_segment(
        _get(segment_id), payload.dict(exclude_unset=True), by=_user(request)
    )
    return segment


@router.delete("/{int:segment_id}", response={204: None}, summary="Delete a segment")
def delete_segment(request: HttpRequest, segment_id: ObjectId):
    check_perm(request, "segments.delete_segment")
    services.delete_segment(_get(segment_id), by=_user(request))
    return Status(204, None)


@router.post("/{int:segment_id}/refresh", response=RefreshOut, summary="Re-evaluate now")
def refresh_segment(request: HttpRequest, segment_id: ObjectId, snapshot: bool = False):
    check_perm(request, "segments.change_segment")
    segment = _get(segment_id)
    user = _user(request)
    if snapshot:
        result = services.snapshot_segment(segment, by=user)
    else:
        result = services.refresh_segment(segment, by=user)
    return result.__dict__


@router.get(
    "/{int:segment_id}/members", response=Page[MemberOut], summary="Members (newest id first)"
)
def list_members(
    request: HttpRequest, segment_id: ObjectId, cursor: str | None = None, limit: int = 50
):
    check_perm(request, "segments.view_segment")
    segment = _get(segment_id)
    members = Customer.objects.filter(segment_memberships__segment=segment)
    return paginate(scope_customers(_user(request), members), cursor, limit)


@router.get(
    "/{int:segment_id}/members/{int:customer_id}",
    response=MemberOut,
    summary="One member (404 if not a member)",
)
def get_member(request: HttpRequest, segment_id: ObjectId, customer_id: ObjectId):
    check_perm(request, "segments.view_segment")
    member = scope_customers(
        _user(request),
        Customer.objects.filter(pk=customer_id, segment_memberships__segment_id=segment_id),
    ).first()
    if member is None:
        raise Http404(f"customer {customer_id} is not a member of segment {segment_id}")
    return member


@router.get(
    "/{int:segment_id}/history", response=HistoryOut, summary="Sizes and latest entries/exits"
)
def get_history(request: HttpRequest, segment_id: ObjectId, limit: int = 100):
    check_perm(request, "segments.view_segment")
    segment = _get(segment_id)
    # Sizes count every member; a rep limited to own accounts gets only their members' changes.
    sizes = SegmentSize.objects.filter(segment=segment).order_by("measured_at")
    return {
        "sizes": list(sizes) if can_view_all_customers(_user(request)) else [],
        "changes": list(
            scope_customers(
                _user(request), MembershipChange.objects.filter(segment=segment), "customer"
            ).order_by("-changed_at", "-id")[: max(1, min(limit, 1000))]
        ),
    }


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get(
    "/{int:segment_id}/export",
    summary="Download the members as CSV or Excel",
    openapi_extra={
        "responses": {
            "200": {
                "description": "The members, one row each (personal fields masked by role)",
                "content": {
                    "text/csv": {"schema": {"type": "string"}},
                    XLSX: {"schema": {"type": "string", "format": "binary"}},
                },
            }
        }
    },
)
def export_segment(
    request: HttpRequest,
    segment_id: ObjectId,
    format: Literal["csv", "xlsx"] = "csv",
    purpose: Literal["", "marketing"] = "",
    channel: Literal["", "email", "sms", "phone", "wechat"] = "",
):
    """purpose=marketing keeps only members whose marketing consent (on channel) is in force now."""
    check_perm(request, "segments.view_segment")
    user = getattr(request, "auth", None) or request.user
    return make_export_response(user, _get(segment_id), format, purpose, channel)
