"""Error pages (403, 404, 500, CSRF failure) in the back office's theme and the user's language.

Signed-in staff get the page inside the back office, sidebar included, so they can go on
from there; everyone else gets the plain themed page. The API answers in JSON instead.
"""

from __future__ import annotations

import logging

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils.translation import gettext

logger = logging.getLogger(__name__)
# Machine clients get JSON: the REST API and the event collection endpoints.
JSON_PREFIXES = ("/api/", "/v1/")


def _texts(status: int, reason: str = "") -> tuple[str, str]:
    """Return the title and the explanation shown for a status."""
    if reason == "csrf":
        return gettext("This form has expired"), gettext(
            "The page was open too long or your session changed. Go back, reload the page "
            "and submit the form again."
        )
    if status == 403:
        return gettext("You cannot open this page"), gettext(
            "Your role does not include this page. Ask an administrator if you need it."
        )
    if status == 404:
        return gettext("Page not found"), gettext(
            "Nothing is at this address: the link may be wrong, or what it pointed to was deleted."
        )
    return gettext("Something went wrong"), gettext(
        "The server could not show this page. The error has been logged; try again in a "
        "moment, or tell your administrator if it happens again."
    )


def _is_staff(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return user is not None and admin.site.has_permission(request)


def render_error(request: HttpRequest, status: int, reason: str = "") -> HttpResponse:
    """Render the themed error page for a status (403, 404, 500)."""
    title, message = _texts(status, reason)
    if request.path.startswith(JSON_PREFIXES):
        return JsonResponse({"detail": f"{title}: {message}"}, status=status)
    inside = _is_staff(request)
    context = {
        "title": title,
        "message": message,
        "status": status,
        "base_template": "admin/base_site.html" if inside else "errors/outside.html",
        "is_signed_in": bool(getattr(getattr(request, "user", None), "is_authenticated", False)),
    }
    try:
        context = {**admin.site.each_context(request), **context}
        html = render_to_string("errors/error.html", context, request=request)
    except Exception:  # an error page must answer even when the page cannot be drawn
        logger.exception("the %s page could not be rendered; answering in plain text", status)
        return HttpResponse(
            f"{status} {title}\n{message}\n",
            status=status,
            content_type="text/plain; charset=utf-8",
        )
    return HttpResponse(html, status=status)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler403."""
    return render_error(request, 403)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404 (unknown URLs under /api/ get the API's JSON 404)."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"detail": f"not found: no API operation at {request.path}"}, status=404
        )
    return render_error(request, 404)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500."""
    return render_error(request, 500)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: the form-expired page (403)."""
    return render_error(request, 403, reason="csrf")
