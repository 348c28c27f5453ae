"""Time every request: metrics by view, one JSON log line, and 503 while the database is down."""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar

from django.conf import settings
from django.core.signals import got_request_exception
from django.db import DatabaseError, InterfaceError, OperationalError, connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.functional import empty
from django.utils.translation import gettext as _

from kequn.monitoring import metrics

request_logger = logging.getLogger("kequn.requests")

# A request id the client (or a proxy) sent is kept only if it looks like an id.
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
RETRY_AFTER_SECONDS = 5
STATIC_PREFIX = "/" + settings.STATIC_URL.lstrip("/")
current_view: ContextVar[str] = ContextVar("kequn_metrics_view", default="<unresolved>")


def get_view_name(request: HttpRequest) -> str:
    """Return the URL pattern's name (or view path) a request resolved to; no ids, no queries."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "<unresolved>"
    if match.view_name:
        return match.view_name[:100]
    return (match._func_path or "<unnamed>")[:100]


def is_database_down(exc: BaseException) -> bool:
    """Return whether an exception means the database does not answer (not a bad query)."""
    return isinstance(exc, OperationalError | InterfaceError) or (
        isinstance(exc, DatabaseError) and "connection" in str(exc).lower()
    )


def note_database_failure(sender, request=None, **kwargs) -> None:
    """Mark a request whose uncaught exception was the database not answering."""
    exc = sys.exc_info()[1]
    if request is not None and exc is not None:
        request._kequn_exception = type(exc).__name__
        if is_database_down(exc):
            request._kequn_database_down = True


got_request_exception.connect(note_database_failure, dispatch_uid="monitoring-db-down")


def get_user_id(request: HttpRequest) -> int | None:
    """Return the signed-in user's id if authentication already ran (never a new query)."""
    user = getattr(request, "user", None)
    wrapped = getattr(user, "_wrapped", user)
    if wrapped is None or wrapped is empty:
        return None
    return wrapped.pk if getattr(wrapped, "is_authenticated", False) else None


def database_unavailable() -> HttpResponse:
    """Return the 503 answered while the database is down; clients should retry."""
    message = _("The database is not answering; try again in a few seconds.")
    response = JsonResponse({"detail": message, "status": 503}, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


class RequestMonitoringMiddleware:
    """Count and time each request by view, with its database queries; log one line for it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        sent = request.headers.get("X-Request-ID", "")
        request_id = sent if REQUEST_ID.match(sent) else uuid.uuid4().hex[:16]
        request.request_id = request_id  # type: ignore[attr-defined]
        queries = {"count": 0, "seconds": 0.0}

        def count_queries(execute, sql, params, many, context):
            begun = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                queries["count"] += 1
                queries["seconds"] += time.perf_counter() - begun

        started = time.perf_counter()
        with connections["default"].execute_wrapper(count_queries):
            try:
                response = self.get_response(request)
            except DatabaseError as exc:
                # The error page itself needed the database (the user's session): answer here.
                if not is_database_down(exc):
                    raise
                request._kequn_exception = type(exc).__name__  # type: ignore[attr-defined]
                request._kequn_database_down = True  # type: ignore[attr-defined]
                response = HttpResponse(status=500)
        duration = time.perf_counter() - started
        view = get_view_name(request)
        if getattr(request, "_kequn_database_down", False) and response.status_code >= 500:
            metrics.DB_UNAVAILABLE.inc()
            response = database_unavailable()
        exception = getattr(request, "_kequn_exception", "")
        if exception:
            metrics.EXCEPTIONS.labels(view, exception).inc()
        status = response.status_code
        metrics.REQUESTS.labels(view, request.method or "", str(status)).inc()
        metrics.REQUEST_SECONDS.labels(view).observe(duration)
        if queries["count"]:
            metrics.DB_QUERIES.labels(view).inc(queries["count"])
            metrics.DB_QUERY_SECONDS.labels(view).inc(queries["seconds"])
        response["X-Request-ID"] = request_id
        if request.path.startswith(STATIC_PREFIX):
            return response  # static files: counted, not logged one line each
        user_id = get_user_id(request)
        # The path without its query string: searches carry phone numbers and emails.
        request_logger.info(
            "%s %s %s",
            request.method,
            request.path[:200],
            status,
            extra={
                "request_id": request_id,
                "user_id": user_id,
                "view": view,
                "method": request.method,
                "path": request.path[:200],
                "status": status,
                "duration_ms": round(duration * 1000, 1),
                "db_queries": queries["count"],
                "db_ms": round(queries["seconds"] * 1000, 1),
                "exception": exception or None,
            },
        )
        return response
