"""Two-factor authentication (TOTP apps plus one-time recovery codes) through django-otp.

Administrators (the `administrator` role) and superusers must have a confirmed device; other
users may opt in. Until the second factor is checked in this session the user can reach only
the setup or verify page: the back office redirects there and the session API refuses.
"""

from __future__ import annotations

import base64
import math

import qrcode
import qrcode.image.svg
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from django.utils import timezone
from django_otp import devices_for_user, user_has_device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from kequn.security.actors import Actor
from kequn.security.audit import services as audit
from kequn.security.roles import ADMINISTRATOR

RECOVERY_CODES = 10


def is_two_factor_required(user: AbstractBaseUser) -> bool:
    """Tell whether the user must use a second factor (superusers and administrators)."""
    if not user.is_authenticated:
        return False
    return user.is_superuser or user.groups.filter(name=ADMINISTRATOR).exists()


def has_confirmed_device(user: AbstractBaseUser) -> bool:
    """Tell whether the user has set up a second factor."""
    return user.is_authenticated and user_has_device(user, confirmed=True)


def start_totp_setup(user: AbstractBaseUser) -> TOTPDevice:
    """Return the user's unconfirmed authenticator device, creating one if needed."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    return device or TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)


def get_totp_secret(device: TOTPDevice) -> str:
    """Return the device secret in the base32 form authenticator apps accept."""
    return base64.b32encode(device.bin_key).decode().rstrip("=")


def render_qr_svg(text: str) -> str:
    """Render text as an inline SVG QR code (drawn locally, no external service)."""
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    return image.to_string(encoding="unicode")


@transaction.atomic
def confirm_totp_device(device: TOTPDevice, token: str) -> list[str] | None:
    """Confirm a new device with a token from the app; return fresh recovery codes or None."""
    if not device.verify_token((token or "").strip().replace(" ", "")):
        return None
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    # A new authenticator replaces the old one; old recovery codes go with it.
    TOTPDevice.objects.filter(user=device.user).exclude(pk=device.pk).delete()
    codes = create_recovery_codes(device.user)
    audit.record_event(
        audit.PERMISSION_CHANGE, actor=device.user, target=device.user, detail={"two_factor": "on"}
    )
    return codes


def create_recovery_codes(user: AbstractBaseUser) -> list[str]:
    """Replace the user's recovery codes with new one-time codes; return them (shown once)."""
    StaticDevice.objects.filter(user=user).delete()
    static = StaticDevice.objects.create(user=user, name="recovery codes", confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=static, token=code) for code in codes)
    return codes


def get_throttle_wait(user: AbstractBaseUser, device=None) -> int:
    """Return the seconds before a code can be tried again after wrong ones (0 if it can)."""
    devices = [device] if device is not None else devices_for_user(user, confirmed=True)
    wait = 0
    for candidate in devices:
        allowed, info = candidate.verify_is_allowed()
        if not allowed and info and info.get("locked_until"):
            left = (info["locked_until"] - timezone.now()).total_seconds()
            wait = max(wait, math.ceil(left))
    return wait


def match_user_token(user: AbstractBaseUser, token: str):
    """Return the confirmed device that accepts the token (app code or recovery code), or None."""
    token = (token or "").strip().replace(" ", "")
    if not token or len(token) > 32:
        return None
    for device in devices_for_user(user, confirmed=True):
        if device.verify_token(token):
            return device
    return None


@transaction.atomic
def reset_two_factor(username: str, *, by: Actor | None, via: str = "") -> int:
    """Remove every second-factor device of a user (lost phone); return how many were removed."""
    try:
        user = get_user_model().objects.get(username=username)
    except ObjectDoesNotExist:
        raise LookupError(f"no user named {username!r}") from None
    removed = 0
    for model in (TOTPDevice, StaticDevice):
        devices = model.objects.filter(user=user)
        removed += devices.count()
        devices.delete()
    audit.record_event(
        audit.PERMISSION_CHANGE,
        actor=by,
        target=user,
        detail={"two_factor": "reset", "devices_removed": removed, "by": via or "command line"},
    )
    return removed
