"""Public pages of engagement: the one-click unsubscribe (RFC 8058) behind every marketing link."""

from __future__ import annotations

from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from kequn.security.actors import system_actor


@csrf_exempt  # mail clients post List-Unsubscribe=One-Click without a form of ours (RFC 8058)
@require_http_methods(["GET", "POST"])
def unsubscribe_view(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a confirmation button; POST withdraws the marketing consent of the link."""
    # Loaded on the first request: the URL configuration stays light to import.
    from kequn.engage.services import read_unsubscribe_token, unsubscribe  # noqa: PLC0415 -- see above

    try:
        data = read_unsubscribe_token(token)
    except signing.BadSignature:
        return render(
            request,
            "engage/unsubscribe.html",
            {"state": "invalid", "message": _("This unsubscribe link is not valid.")},
            status=400,
        )
    if request.method == "GET":
        return render(
            request, "engage/unsubscribe.html", {"state": "confirm", "channel": data.get("ch")}
        )
    unsubscribe(token, by=system_actor("unsubscribe-link"))
    return render(request, "engage/unsubscribe.html", {"state": "done", "channel": data.get("ch")})
