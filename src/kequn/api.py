"""The REST API (/api/v1/...), OpenAPI schema at /api/openapi.json, docs at /api/docs."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest
from ninja import NinjaAPI
from ninja.errors import AuthenticationError

from kequn.commerce.api import orders_router, products_router
from kequn.customers.api import router as customers_router
from kequn.events.api import router as events_router
from kequn.recommend.api import router as recommend_router
from kequn.security.auth import api_auth
from kequn.segments.api import router as segments_router

api = NinjaAPI(
    title="Kequn API",
    version="1",
    description="Customers, orders, products and events of a Kequn installation.",
    auth=api_auth,
    docs_decorator=staff_member_required,
    urls_namespace="api",
)


@api.exception_handler(PermissionDenied)
def on_permission_denied(request: HttpRequest, exc: PermissionDenied):
    return api.create_response(
        request, {"detail": f"permission denied: {exc}".rstrip(": ")}, status=403
    )


@api.exception_handler(ValidationError)
def on_validation_error(request: HttpRequest, exc: ValidationError):
    return api.create_response(request, {"detail": exc.messages}, status=422)


@api.exception_handler(Http404)
def on_not_found(request: HttpRequest, exc: Http404):
    return api.create_response(request, {"detail": str(exc) or "not found"}, status=404)


@api.exception_handler(AuthenticationError)
def on_auth_error(request: HttpRequest, exc: AuthenticationError):
    return api.create_response(
        request,
        {"detail": "authentication required: send 'Authorization: Bearer <token>'"},
        status=401,
    )


api.add_router("/v1/customers", customers_router)
api.add_router("/v1/orders", orders_router)
api.add_router("/v1/products", products_router)
api.add_router("/v1/events", events_router)
api.add_router("/v1/segments", segments_router)
api.add_router("/v1/recommendations", recommend_router)
