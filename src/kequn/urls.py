from django.contrib import admin
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.templatetags.static import static
from django.urls import include, path
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.generic import RedirectView

from kequn.api import api
from kequn.security import views as security_views


def healthz(request: HttpRequest) -> JsonResponse:
    """Report liveness and whether the database answers."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return JsonResponse({"status": "ok"})
    except Exception as exc:  # the health check must answer, not raise
        return JsonResponse({"status": "error", "detail": str(exc)[:200]}, status=503)


def login_view(request: HttpRequest) -> HttpResponse:
    """Show the admin login; send a user already signed in to the page asked for."""
    target = request.GET.get(REDIRECT_FIELD_NAME, "")
    # Django's admin login sends a signed-in user to the dashboard, whatever `next` says.
    if (
        request.method == "GET"
        and admin.site.has_permission(request)
        and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
    ):
        return HttpResponseRedirect(target)
    return admin.site.login(request)


# Error pages in the back office's theme and the user's language; unknown URLs under /api/
# (like /api/v1/customers/1.5) get the API's JSON 404.
PAGE_APPS = ("engage", "journeys", "service", "loyalty", "feedback", "sales", "monitoring")

handler403 = "kequn.errors.permission_denied"
handler404 = "kequn.errors.page_not_found"
handler500 = "kequn.errors.server_error"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("healthz", healthz, name="healthz"),
    # Browsers ask for /favicon.ico on pages that name no icon (JSON, the API docs).
    path("favicon.ico", RedirectView.as_view(url=static("kequn/favicon.svg"), permanent=True)),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/", api.urls),
    path("v1/", include("kequn.events.collect")),
    path("admin/dashboard/", include("kequn.dashboard.urls")),
    path("admin/otp/setup/", security_views.setup_view, name="otp-setup"),
    path("admin/otp/verify/", security_views.verify_view, name="otp-verify"),
    path("admin/login/", login_view),
    path("admin/", admin.site.urls),
    # Each app's own pages outside the admin (unsubscribe, survey answers, calendar feeds...).
    *(path("", include(f"kequn.{app}.urls")) for app in PAGE_APPS),
]
