"""Pages of sales outside the admin site: the .ics feed and the rep's calendar page."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.admin import site
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth import get_user_model
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext
from django.views.decorators.http import require_GET

from kequn.sales.calendar import build_feed, make_feed_token, mark_password, read_feed_token
from kequn.sales.models import Task
from kequn.security.permissions import require_permission


@require_GET
def calendar_feed(request: HttpRequest, token: str) -> HttpResponse:
    """Serve a user's feed to a calendar app (the signed token is the only key)."""
    found = read_feed_token(token)
    if found is None:
        raise Http404("no such calendar")
    user_id, mark = found
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None or not constant_time_compare(mark_password(user), mark):
        raise Http404("no such calendar")
    response = HttpResponse(
        build_feed(user, host=request.get_host()), content_type="text/calendar; charset=utf-8"
    )
    response["Cache-Control"] = "private, max-age=300"
    return response


@staff_member_required
def calendar_page(request: HttpRequest) -> HttpResponse:
    """Show the signed-in rep's coming four weeks of tasks by day, and their feed's address."""
    require_permission(request.user, "sales.view_task")
    now = timezone.now()
    tasks = Task.objects.filter(
        owner_id=request.user.pk, done_at__isnull=True, due_at__lt=now + timedelta(days=28)
    ).order_by("due_at")[:500]
    days: dict[str, list[Task]] = {}
    for task in tasks:
        days.setdefault(timezone.localdate(task.due_at).isoformat(), []).append(task)
    feed = request.build_absolute_uri(
        reverse("sales:calendar_feed", args=[make_feed_token(request.user)])
    )
    context = {
        **site.each_context(request),
        "title": gettext("My calendar"),
        "days": sorted(days.items()),
        "today": timezone.localdate().isoformat(),
        "feed_url": feed,
    }
    return TemplateResponse(request, "admin/sales/calendar.html", context)
