"""The REST API (/api/v1/...), OpenAPI schema at /api/openapi.json, docs at /api/docs."""

from __future__ import annotations

import json

from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.parser import Parser

from kequn.apiutils import describe_object_keys, describe_paging
from kequn.commerce.api import orders_router, products_router
from kequn.customers.api import router as customers_router
from kequn.engage import api as engage_api
from kequn.events.api import router as events_router
from kequn.feedback import api as feedback_api
from kequn.journeys import api as journeys_api
from kequn.loyalty import api as loyalty_api
from kequn.monitoring import api as monitoring_api
from kequn.privacy.api import router as privacy_router
from kequn.recommend.api import router as recommend_router
from kequn.sales import api as sales_api
from kequn.security.auth import api_auth
from kequn.security.inputs import MAX_JSON_DEPTH, BadInputError, clean_json
from kequn.segments.api import router as segments_router
from kequn.service import api as service_api

# Every operation may answer with these; the body is always {"detail": ...}.
ERROR_RESPONSES = {
    "400": "Bad request: a malformed parameter, cursor or limit",
    "401": "Authentication required: no, an unknown, expired or revoked token",
    "403": "Permission denied for this user",
    "404": "Not found (or not visible to this user)",
    "409": "Conflict with the current state (no points left, out of stock, a used coupon, "
    "an idempotency key reused for another request)",
    "422": "Validation error: the detail names the field and the problem",
    "429": "Too many requests: slow down and retry later",
}
ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "detail": {
            "anyOf": [{"type": "string"}, {"type": "array", "items": {}}],
            "description": "One line, or a list of field errors",
        }
    },
    "required": ["detail"],
}


class NulCharacterError(ValueError):
    """A text value holds a NUL character or a lone surrogate, or JSON nests too deep.

    The message names the place and the fix; PostgreSQL cannot store a NUL (SQLite would).
    """


def _refuse_constant(name: str):
    raise NulCharacterError(f"body holds {name}, which JSON does not allow: send a number")


def _parse_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise NulCharacterError(f"body holds the number {text[:40]}, too large: send a smaller one")
    return value


class KequnParser(Parser):
    """JSON bodies and query strings, cleaned and checked the same way on every database.

    NUL characters, lone surrogates, NaN/Infinity and JSON nested deeper than
    MAX_JSON_DEPTH are refused (422); control characters are removed when models are saved.
    """

    def parse_body(self, request: HttpRequest):
        try:
            data = json.loads(
                request.body, parse_constant=_refuse_constant, parse_float=_parse_float
            )
        except RecursionError:
            raise NulCharacterError(
                f"body nests deeper than {MAX_JSON_DEPTH} levels: flatten the JSON"
            ) from None
        try:
            return clean_json(data, strip=False)
        except BadInputError as exc:
            raise NulCharacterError(str(exc)) from None

    def parse_querydict(self, data, list_fields, request: HttpRequest):
        result = super().parse_querydict(data, list_fields, request)
        try:
            return clean_json(result, "query", strip=False)
        except BadInputError as exc:
            raise NulCharacterError(str(exc)) from None


def merge_status_keys(responses: dict) -> dict:
    """Return responses keyed by status text, merging ninja's int keys with openapi_extra's.

    An operation's declared response is keyed 200 (an int) while openapi_extra writes "200":
    both would be serialised as "200", a duplicated key that Swagger UI refuses to parse.
    """
    merged: dict[str, dict] = {}
    # Int keys first, so the fuller hand-written description and content win.
    for code, response in sorted(responses.items(), key=lambda item: isinstance(item[0], str)):
        merged.setdefault(str(code), {}).update(response)
    return merged


class KequnAPI(NinjaAPI):
    """The ninja API, with the error responses every operation can give in its schema."""

    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation["responses"] = merge_status_keys(
                    operation.get("responses", {})
                )
                for code, description in ERROR_RESPONSES.items():
                    responses.setdefault(code, {"description": description, "content": content})
        describe_paging(schema)
        describe_object_keys(schema.get("components", {}))
        return schema


api = KequnAPI(
    title="Kequn API",
    version="1",
    description="Customers, orders, products and events of a Kequn installation.",
    auth=api_auth,
    docs_decorator=staff_member_required,
    parser=KequnParser(),
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


def _nul_response(request: HttpRequest, exc: NulCharacterError):
    detail = str(exc)
    return api.create_response(request, {"detail": detail}, status=422)


@api.exception_handler(NulCharacterError)
def on_nul_character(request: HttpRequest, exc: NulCharacterError):
    return _nul_response(request, exc)


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError):
    # ninja wraps whatever the body parser raises in "Cannot parse request body".
    if isinstance(exc.__cause__, NulCharacterError):
        return _nul_response(request, exc.__cause__)
    return api.create_response(request, {"detail": str(exc)}, status=exc.status_code)


@api.exception_handler(AuthenticationError)
def on_auth_error(request: HttpRequest, exc: AuthenticationError):
    if request.headers.get("Authorization"):
        detail = (
            "authentication required: the Authorization header holds no valid token (unknown, "
            "expired or revoked); send 'Authorization: Bearer <token>' with a token from "
            "`kequn token create`"
        )
    else:
        detail = "authentication required: send 'Authorization: Bearer <token>'"
    return api.create_response(request, {"detail": detail}, status=401)


api.add_router("/v1/customers", customers_router)
api.add_router("/v1/orders", orders_router)
api.add_router("/v1/products", products_router)
api.add_router("/v1/events", events_router)
api.add_router("/v1/segments", segments_router)
api.add_router("/v1/recommendations", recommend_router)
api.add_router("/v1/privacy-requests", privacy_router)
# The apps of the second half mount their own routers (each api.py lists (prefix, router)).
for app_api in (
    engage_api,
    journeys_api,
    service_api,
    loyalty_api,
    feedback_api,
    sales_api,
    monitoring_api,
):
    for prefix, app_router in app_api.routers:
        api.add_router(prefix, app_router)
