"""Public pages of engagement: the one-click unsubscribe (RFC 8058), the open pixel, link redirects."""

from __future__ import annotations

from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from kequn.engage import tracking
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


@never_cache  # each fetch must reach us: a cached pixel would hide the open
@require_http_methods(["GET", "HEAD"])
def open_pixel_view(request: HttpRequest, token: str) -> HttpResponse:
    """Return a 1x1 GIF and record the message as opened (the first open counts)."""
    from kequn.engage.services import record_message_event  # noqa: PLC0415 -- light URLconf

    try:
        message_id = tracking.read_open_token(token)
    except signing.BadSignature:
        raise Http404("unknown tracking token") from None
    record_message_event(message_id=message_id, kind="opened")
    response = HttpResponse(tracking.PIXEL_GIF, content_type="image/gif")
    response["Cache-Control"] = "no-store"
    return response


@never_cache
@require_http_methods(["GET", "HEAD"])
def click_view(request: HttpRequest, token: str) -> HttpResponse:
    """Record the message's link as clicked and redirect to the address signed into the token."""
    from kequn.engage.services import record_message_event  # noqa: PLC0415 -- light URLconf

    try:
        message_id, url = tracking.read_click_token(token)
    except signing.BadSignature:
        raise Http404("unknown tracking token") from None
    record_message_event(message_id=message_id, kind="clicked")
    # A click shows the mail was opened, also when its images were blocked.
    record_message_event(message_id=message_id, kind="opened")
    return HttpResponseRedirect(url)
