"""Request guards: session idle/absolute timeouts, the second login factor, and rate limits."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import SESSION_KEY, logout
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext

from kequn.security import otp
from kequn.security.ratelimit import get_rate, hit
from kequn.security.views import render_blocked

SEEN_KEY = "kq_seen"
STARTED_KEY = "kq_started"
# Paths an authenticated user may reach before the second factor is checked.
OPEN_PREFIXES = ("/static/", "/i18n/", "/healthz", "/v1/", "/admin/otp/", "/admin/logout/")


def get_client_ip(request: HttpRequest) -> str:
    """Return the client address; trust X-Forwarded-For only from KEQUN_PROXY_COUNT proxies."""
    proxies = int(getattr(settings, "KEQUN_PROXY_COUNT", 0) or 0)
    if proxies > 0:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        hops = [h for h in hops if h]
        # Each trusted proxy appends the address it saw; earlier entries can be forged.
        if len(hops) >= proxies and _is_ip(hops[-proxies]):
            return hops[-proxies]
    address = request.META.get("REMOTE_ADDR", "")
    return address if _is_ip(address) else ""


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def axes_client_ip(request: HttpRequest) -> str | None:
    """AXES_CLIENT_IP_CALLABLE: the same client address the rate limits use (None if unknown)."""
    return get_client_ip(request) or None


class SessionTimeoutMiddleware:
    """Log out sessions idle for KEQUN_SESSION_IDLE_MINUTES or older than KEQUN_SESSION_MAX_HOURS."""

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = getattr(request, "session", None)
        if session is not None and SESSION_KEY in session:
            self.check(request)
        return self.get_response(request)

    def check(self, request: HttpRequest) -> None:
        session = request.session
        now = int(time.time())
        idle = int(settings.KEQUN_SESSION_IDLE_MINUTES) * 60
        longest = int(settings.KEQUN_SESSION_MAX_HOURS) * 3600
        seen, started = session.get(SEEN_KEY), session.get(STARTED_KEY)
        if not isinstance(seen, int) or not isinstance(started, int):
            session[SEEN_KEY] = session[STARTED_KEY] = now
        elif now - seen > idle or now - started > longest:
            logout(request)
            request.kequn_session_expired = True
        # Saving the session on every request would write the database each time; a
        # refresh every tenth of the idle period keeps the sliding window close enough.
        elif now - seen >= max(1, idle // 10):
            session[SEEN_KEY] = now


class TwoFactorMiddleware:
    """Hold back users who have not passed their second factor in this session."""

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not user.is_verified():
            has_device = otp.has_confirmed_device(user)
            if has_device or otp.is_two_factor_required(user):
                path = request.path_info
                # The docs page is a page: it sends the user on to the second factor.
                if path.startswith("/api/") and path != reverse("api:openapi-view"):
                    # The session does not count for the API; bearer tokens still work.
                    request.user = AnonymousUser()
                elif not path.startswith(OPEN_PREFIXES) and path != reverse("admin:login"):
                    target = reverse("otp-verify" if has_device else "otp-setup")
                    return HttpResponseRedirect(
                        f"{target}?{urlencode({'next': request.get_full_path()})}"
                    )
        return self.get_response(request)


def _api_identity(request: HttpRequest) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header[:7].lower() == "bearer ":
        return "token:" + hashlib.sha256(header[7:].strip().encode()).hexdigest()
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return None


def _write_key(request: HttpRequest) -> str:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header[:6].lower() == "basic ":
        try:
            return base64.b64decode(header[6:]).decode().partition(":")[0]
        except (ValueError, UnicodeDecodeError):
            return ""
    return ""


def too_many_api_requests(what: str, rate, wait: int) -> JsonResponse:
    """Return the API's 429 answer: one line of JSON and Retry-After."""
    response = JsonResponse(
        {
            "detail": f"too many requests: at most {rate.limit} per {rate.seconds} s {what}; "
            f"retry in {wait} s"
        },
        status=429,
    )
    response["Retry-After"] = str(wait)
    return response


class RateLimitMiddleware:
    """Limit login attempts (per address and per user name) and API calls (per token/user and address)."""

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        self.login_path = None

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if path.startswith("/api/"):
            blocked = self.limit_api(request)
        elif path.startswith("/v1/"):
            blocked = self.limit_collection(request)
        elif request.method == "POST" and path == self.get_login_path():
            blocked = self.limit_login(request)
        else:
            blocked = None
        return blocked or self.get_response(request)

    def get_login_path(self) -> str:
        if self.login_path is None:
            self.login_path = reverse("admin:login")
        return self.login_path

    def limit_api(self, request: HttpRequest) -> HttpResponse | None:
        rate = get_rate("KEQUN_API_IP_RATE")
        if wait := hit("api-ip", get_client_ip(request) or "unknown", rate):
            return too_many_api_requests("from one address", rate, wait)
        identity = _api_identity(request)
        rate = get_rate("KEQUN_API_RATE")
        if identity and (wait := hit("api", identity, rate)):
            return too_many_api_requests("for one token or user", rate, wait)
        return None

    def limit_collection(self, request: HttpRequest) -> HttpResponse | None:
        rate = get_rate("KEQUN_COLLECT_RATE")
        if rate is None:
            return None
        key = _write_key(request)
        if key and (wait := hit("collect", key, rate)):
            response = JsonResponse(
                {
                    "success": False,
                    "message": f"too many requests: at most {rate.limit} per {rate.seconds} s "
                    f"for one write key; retry in {wait} s",
                },
                status=429,
            )
            response["Retry-After"] = str(wait)
            return response
        return None

    def limit_login(self, request: HttpRequest) -> HttpResponse | None:
        rate = get_rate("KEQUN_LOGIN_RATE")
        username = str(request.POST.get("username", ""))[:150].strip().lower()
        wait = hit("login-ip", get_client_ip(request) or "unknown", rate)
        if not wait and username:
            wait = hit("login-user", username, rate)
        if not wait:
            return None
        message = gettext("Too many login attempts. Wait %(seconds)d seconds, then try again.") % {
            "seconds": wait
        }
        return render_blocked(request, message, 429, wait)
