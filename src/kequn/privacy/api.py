"""REST endpoints for data-subject requests: record, list, read, verify, execute, reject, download."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from django.http import FileResponse, Http404, HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, Query, Router, Schema, Status
from ninja.errors import HttpError

from kequn.apiutils import BoundedDateTime, ObjectId, Page, check_perm, paginate
from kequn.customers.models import Customer
from kequn.privacy import services
from kequn.privacy.masking import mask_request_parameters
from kequn.privacy.models import PrivacyRequest
from kequn.security.permissions import scope_customers

router = Router(tags=["privacy"])

RequestType = Literal[
    "export", "correction", "erasure", "withdraw_consent", "restrict", "lift_restriction"
]
RequestStatus = Literal["received", "verified", "in_progress", "done", "rejected"]
RequestChannel = Literal["email", "phone", "letter", "in_person", "web", "api", "other"]
IdentityMethod = Literal[
    "id_document", "email_code", "sms_code", "account_login", "in_person", "other"
]
MAX_PARAMETERS = 10_000  # characters of JSON: a correction of a few fields, not a document


class RequestIn(Schema):
    type: RequestType
    customer_id: ObjectId
    channel: RequestChannel = "api"
    parameters: dict[str, Any] = Field(default_factory=dict)
    notes: str = Field("", max_length=2000)
    received_at: BoundedDateTime | None = None


class RequestOut(Schema):
    id: int
    type: str
    status: str
    customer_id: int | None
    subject_ref: int | None
    channel: str
    identity_method: str
    identity_verified_at: datetime | None
    received_at: datetime
    deadline: datetime
    is_overdue: bool
    rejection_reason: str
    notes: str
    parameters: dict[str, Any]
    result: dict[str, Any]
    has_result_file: bool
    completed_at: datetime | None

    @staticmethod
    def resolve_has_result_file(obj: PrivacyRequest) -> bool:
        return bool(obj.result_file)

    @staticmethod
    def resolve_parameters(obj: PrivacyRequest, context) -> dict[str, Any]:
        request = (context or {}).get("request")
        user = _user(request) if request is not None else None
        return mask_request_parameters(user, obj.parameters)


class RequestFilters(Schema):
    type: RequestType | None = None
    status: RequestStatus | None = None
    overdue: bool | None = Field(None, description="Only open requests past their deadline")
    customer_id: ObjectId | None = None


class VerifyIn(Schema):
    method: IdentityMethod


class RejectIn(Schema):
    reason: str = Field(..., min_length=1, max_length=2000)


def _user(request: HttpRequest):
    return getattr(request, "auth", None) or request.user


def _visible(request: HttpRequest):
    # A user limited to their own accounts sees only requests about those customers.
    return scope_customers(_user(request), PrivacyRequest.objects.all(), "customer")


def _get(request: HttpRequest, request_id: int) -> PrivacyRequest:
    return get_object_or_404(_visible(request), pk=request_id)


@router.get("", response=Page[RequestOut], summary="List data-subject requests (newest first)")
def list_requests(
    request: HttpRequest, filters: Query[RequestFilters], cursor: str | None = None, limit: int = 50
):
    check_perm(request, "privacy.view_privacyrequest")
    qs = _visible(request)
    if filters.overdue:
        qs = qs.filter(pk__in=services.get_overdue_requests().values("pk"))
    if filters.type:
        qs = qs.filter(type=filters.type)
    if filters.status:
        qs = qs.filter(status=filters.status)
    if filters.customer_id:
        qs = qs.filter(subject_ref=filters.customer_id)
    return paginate(qs, cursor, limit)


@router.post("", response={201: RequestOut}, summary="Record a data-subject request")
def create_request(request: HttpRequest, payload: RequestIn):
    check_perm(request, "privacy.add_privacyrequest")
    if len(json.dumps(payload.parameters, default=str)) > MAX_PARAMETERS:
        raise HttpError(422, f"parameters longer than {MAX_PARAMETERS} characters of JSON")
    customer = (
        scope_customers(_user(request), Customer.objects.all())
        .filter(pk=payload.customer_id)
        .first()
    )
    if customer is None:
        raise Http404(f"no customer #{payload.customer_id}")
    created = services.open_request(
        payload.type,
        customer,
        channel=payload.channel,
        parameters=payload.parameters,
        notes=payload.notes,
        received_at=payload.received_at,
        by=_user(request),
    )
    return Status(201, created)


@router.get("/{int:request_id}", response=RequestOut, summary="Read a data-subject request")
def get_request(request: HttpRequest, request_id: ObjectId):
    check_perm(request, "privacy.view_privacyrequest")
    return _get(request, request_id)


@router.post(
    "/{int:request_id}/verify", response=RequestOut, summary="Record the requester's identity check"
)
def verify_request(request: HttpRequest, request_id: ObjectId, payload: VerifyIn):
    check_perm(request, "privacy.change_privacyrequest")
    return services.verify_identity(_get(request, request_id), payload.method, by=_user(request))


@router.post(
    "/{int:request_id}/execute",
    response=RequestOut,
    summary="Carry out a verified request (export, correction, erasure, ...)",
)
def execute_request(request: HttpRequest, request_id: ObjectId):
    check_perm(request, "privacy.change_privacyrequest")
    return services.execute_request(_get(request, request_id), by=_user(request))


@router.post("/{int:request_id}/reject", response=RequestOut, summary="Reject a request")
def reject_request(request: HttpRequest, request_id: ObjectId, payload: RejectIn):
    check_perm(request, "privacy.change_privacyrequest")
    return services.reject_request(_get(request, request_id), payload.reason, by=_user(request))


@router.get(
    "/{int:request_id}/download",
    summary="Download the zip of a completed export request",
    openapi_extra={
        "responses": {
            "200": {
                "description": "customer.json and one CSV per table",
                "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            }
        }
    },
)
def download_export(request: HttpRequest, request_id: ObjectId):
    check_perm(request, "privacy.change_privacyrequest")
    privacy_request = _get(request, request_id)
    path = services.get_export_path(privacy_request)
    services.record_download(privacy_request, by=_user(request))
    return FileResponse(
        Path(path).open("rb"),
        as_attachment=True,
        filename=f"privacy-request-{request_id}.zip",
        content_type="application/zip",
    )
