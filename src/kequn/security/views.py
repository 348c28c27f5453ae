"""Pages of the second login step (set up or check a one-time code) and the lockout page."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from kequn.security import otp

SETUP_SESSION_KEY = "kq_otp_setup_device"


class TokenForm(forms.Form):
    token = forms.CharField(
        label=_("Code"),
        max_length=32,
        help_text=_("The 6-digit code from your authenticator app, or one of your recovery codes."),
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "autofocus": True,
                "class": "border border-base-200 rounded-default px-3 py-2 w-full "
                "dark:bg-base-900 dark:border-base-700",
            }
        ),
    )


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("admin:index")


def _code_error(wait: int) -> str:
    if wait:
        return gettext("Too many wrong codes: wait %(seconds)d seconds, then try again.") % {
            "seconds": wait
        }
    return gettext("This code is wrong or expired: enter the current code from the app.")


def _page(request: HttpRequest, template: str, context: dict, status: int = 200) -> HttpResponse:
    base = admin.site.each_context(request)
    return render(request, template, {**base, **context}, status=status)


@never_cache
@sensitive_post_parameters("token")
@login_required
def verify_view(request: HttpRequest) -> HttpResponse:
    """Ask for the second factor of a user who has set one up."""
    user = request.user
    if not otp.has_confirmed_device(user):
        return HttpResponseRedirect(
            f"{reverse('otp-setup')}?{urlencode({'next': _next_url(request)})}"
        )
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        wait = otp.get_throttle_wait(user)
        device = None if wait else otp.match_user_token(user, form.cleaned_data["token"])
        if device is not None:
            otp_login(request, device)
            return HttpResponseRedirect(_next_url(request))
        form.add_error("token", _code_error(wait))
    status = 400 if form.errors else 200
    return _page(
        request,
        "security/otp_verify.html",
        {"form": form, "title": gettext("Two-factor authentication"), "next": _next_url(request)},
        status,
    )


@never_cache
@sensitive_post_parameters("token")
@login_required
def setup_view(request: HttpRequest) -> HttpResponse:
    """Show the QR code of a new authenticator device and confirm it with a first code."""
    user = request.user
    # Someone who already has a device must prove it before replacing it.
    if otp.has_confirmed_device(user) and not user.is_verified():
        return HttpResponseRedirect(f"{reverse('otp-verify')}?next={reverse('otp-setup')}")
    device = TOTPDevice.objects.filter(
        pk=request.session.get(SETUP_SESSION_KEY), user=user, confirmed=False
    ).first() or otp.start_totp_setup(user)
    request.session[SETUP_SESSION_KEY] = device.pk
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        wait = otp.get_throttle_wait(user, device)
        codes = None if wait else otp.confirm_totp_device(device, form.cleaned_data["token"])
        if codes is not None:
            request.session.pop(SETUP_SESSION_KEY, None)
            otp_login(request, device)
            return _page(
                request,
                "security/otp_codes.html",
                {
                    "codes": codes,
                    "title": gettext("Recovery codes"),
                    "next": _next_url(request),
                },
            )
        form.add_error("token", _code_error(wait))
    return _page(
        request,
        "security/otp_setup.html",
        {
            "form": form,
            "title": gettext("Set up two-factor authentication"),
            "qr_svg": otp.render_qr_svg(device.config_url),
            "secret": otp.get_totp_secret(device),
            "required": otp.is_two_factor_required(user),
            "next": _next_url(request),
        },
        400 if form.errors else 200,
    )


def render_blocked(request: HttpRequest, message: str, status: int, retry_after: int | None):
    """Render the login-blocked page with a message, and Retry-After when known."""
    response = _page(
        request,
        "security/blocked.html",
        {"title": gettext("Login blocked"), "message": message},
        status,
    )
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response


def lockout_response(request: HttpRequest, response=None, credentials=None) -> HttpResponse:
    """Tell a user locked out by django-axes why, and for how long (AXES_LOCKOUT_CALLABLE)."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    message = gettext(
        "Too many failed logins for this account from your address. "
        "Try again in %(minutes)d minutes, or ask an administrator to unlock it "
        "(kequn axes_reset_username USER)."
    ) % {"minutes": minutes}
    return render_blocked(request, message, 429, minutes * 60)
