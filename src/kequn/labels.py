"""Labels for codes stored as plain text: channels, sources, model names, permissions.

Some columns hold short codes rather than choices (a customer's source channel, an event's
channel, the model an audit entry is about). Pages show them by label in the user's
language; a code without a known label is shown as it is.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

# Where customers come from and where events happen: the codes the importers, the event
# collector and the demo write.
CODE_LABELS = {
    "store": _("Store"),
    "online": _("Online shop"),
    "web": _("Website"),
    "app": _("App"),
    "miniprogram": _("Mini program"),
    "wechat": _("WeChat"),
    "tmall": _("Tmall"),
    "jd": _("JD.com"),
    "taobao": _("Taobao"),
    "douyin": _("Douyin"),
    "referral": _("Referral"),
    "import": _("Import"),
    "api": _("API"),
    "server": _("Server"),
    "email": _("Email"),
    "sms": _("SMS"),
    "phone": _("Phone"),
}

# Event names of the Segment e-commerce and lifecycle specs (what the collector receives).
EVENT_LABELS = {
    "Product Viewed": _("Product viewed"),
    "Product Added": _("Product added to cart"),
    "Product Removed": _("Product removed from cart"),
    "Product List Viewed": _("Product list viewed"),
    "Products Searched": _("Products searched"),
    "Cart Viewed": _("Cart viewed"),
    "Checkout Started": _("Checkout started"),
    "Order Completed": _("Order completed"),
    "Order Refunded": _("Order refunded"),
    "Order Cancelled": _("Order cancelled"),
    "Coupon Applied": _("Coupon applied"),
    "Signed Up": _("Signed up"),
    "Signed In": _("Signed in"),
    "Signed Out": _("Signed out"),
}

# Upstream apps whose names and models are not marked for translation.
APP_NAMES = {
    "otp_totp": _("Two-factor authenticator apps"),
    "otp_static": _("Two-factor backup codes"),
    "axes": _("Login lockouts"),
    "django_tasks_database": _("Background tasks"),
}
MODEL_NAMES = {
    "otp_totp.totpdevice": (_("authenticator app"), _("authenticator apps")),
    "otp_static.staticdevice": (_("backup code set"), _("backup code sets")),
    "otp_static.statictoken": (_("backup code"), _("backup codes")),
}
PERMISSION_ACTIONS = {
    "add": _("Can add %(model)s"),
    "change": _("Can change %(model)s"),
    "delete": _("Can delete %(model)s"),
    "view": _("Can view %(model)s"),
}


def get_code_label(code: Any) -> str:
    """Return the label of a channel or source code, an event name or a model ("app.model")."""
    if code is None:
        return ""
    text = str(code)
    label = EVENT_LABELS.get(text) or CODE_LABELS.get(text.strip().lower())
    if label is not None:
        return str(label)
    if text.count(".") == 1:
        model = get_model_name(text)
        if model:
            return model
    return text


def get_model_name(label: str) -> str:
    """Return the translated name of a model given as "app_label.model_name", or ""."""
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError):
        return ""
    upstream = MODEL_NAMES.get(model._meta.label_lower)
    return str(upstream[0] if upstream else model._meta.verbose_name)


def get_permission_label(permission: Any) -> str:
    """Return "app | model | action" for a permission, all three in the user's language."""
    content_type = permission.content_type
    model = content_type.model_class()
    action, _sep, _rest = permission.codename.partition("_")
    if model is None:
        return str(permission)
    app_name = str(apps.get_app_config(content_type.app_label).verbose_name)
    upstream = MODEL_NAMES.get(model._meta.label_lower)
    model_name = str(upstream[0] if upstream else model._meta.verbose_name)
    default = f"{action}_{model._meta.model_name}"
    if permission.codename == default and action in PERMISSION_ACTIONS:
        name = str(PERMISSION_ACTIONS[action]) % {"model": model_name}
    else:
        # Custom permissions keep their English name in the database; it is their msgid.
        name = gettext(permission.name)
    return f"{app_name} | {model_name} | {name}"


def name_upstream_apps() -> None:
    """Give upstream apps without translatable names their translated names.

    Model names stay: they are part of the migration state of those apps.
    """
    for label, name in APP_NAMES.items():
        try:
            apps.get_app_config(label).verbose_name = name
        except LookupError:
            continue
