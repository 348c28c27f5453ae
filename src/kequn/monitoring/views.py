"""/metrics for Prometheus and /readyz for load balancers and orchestrators."""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache

from kequn.monitoring.metrics import render_metrics
from kequn.monitoring.selectors import get_queue_state

# The oldest waiting job may wait this long before /readyz reports the queue as stalled.
QUEUE_STALLED_SECONDS = 15 * 60


def is_local_address(value: str | None) -> bool:
    """Return whether a client address is this machine (loopback)."""
    try:
        return ipaddress.ip_address((value or "").strip()).is_loopback
    except ValueError:
        return False


@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Serve the metrics to a scraper with the token, or to this machine when no token is set."""
    token = settings.KEQUN_METRICS_TOKEN
    if token:
        sent = request.headers.get("Authorization", "")
        scheme, _sep, value = sent.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip(), token):
            response = HttpResponse(
                "401 Unauthorized: /metrics needs the header "
                "'Authorization: Bearer <KEQUN_METRICS_TOKEN>'\n",
                status=401,
                content_type="text/plain; charset=utf-8",
            )
            response["WWW-Authenticate"] = 'Bearer realm="kequn-metrics"'
            return response
    elif not is_local_address(request.META.get("REMOTE_ADDR")):
        return HttpResponse(
            "403 Forbidden: /metrics answers only this machine (127.0.0.1, ::1); "
            "set KEQUN_METRICS_TOKEN to scrape it from elsewhere with a bearer token\n",
            status=403,
            content_type="text/plain; charset=utf-8",
        )
    body, content_type = render_metrics()
    return HttpResponse(body, content_type=content_type)


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Answer 200 when the database answers and the job queue can be read, else 503.

    A queue whose oldest job waited over 15 minutes is reported as stalled (no worker
    running?) but still ready: the server itself can serve, so it stays in the pool.
    """
    checks: dict[str, object] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except DatabaseError as exc:
        checks["database"] = f"error: {type(exc).__name__}"
        return JsonResponse({"status": "unavailable", "checks": checks}, status=503)
    try:
        depth, oldest = get_queue_state()
    except DatabaseError as exc:
        checks["job_queue"] = f"error: {type(exc).__name__}"
        return JsonResponse({"status": "unavailable", "checks": checks}, status=503)
    age = (timezone.now() - oldest).total_seconds() if oldest else 0.0
    checks["job_queue"] = {
        "waiting": depth,
        "oldest_age_seconds": round(age, 1),
        "stalled": age > QUEUE_STALLED_SECONDS,
    }
    return JsonResponse({"status": "ok", "checks": checks})
