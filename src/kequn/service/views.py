"""The public contact form: no login, CSRF-protected, rate-limited; each message is a ticket."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.cache import never_cache

from kequn.security.actors import system_actor
from kequn.security.middleware import get_client_ip
from kequn.security.ratelimit import hit, parse_rate
from kequn.service.attachments import get_max_bytes
from kequn.service.models import TicketType
from kequn.service.services import WEB_FORM_TYPES, submit_web_form

ACTOR = system_actor("contact-form")


class ContactForm(forms.Form):
    name = forms.CharField(label=_lazy("Your name"), max_length=100)
    email = forms.EmailField(label=_lazy("Email"), max_length=254)
    phone = forms.CharField(label=_lazy("Phone (optional)"), max_length=30, required=False)
    type = forms.ChoiceField(
        label=_lazy("About"),
        choices=[(value, label) for value, label in TicketType.choices if value in WEB_FORM_TYPES],
        initial=TicketType.INQUIRY,
    )
    order_number = forms.CharField(
        label=_lazy("Order number (optional)"), max_length=64, required=False
    )
    subject = forms.CharField(label=_lazy("Subject"), max_length=300)
    body = forms.CharField(label=_lazy("Message"), max_length=20_000, widget=forms.Textarea)
    attachment = forms.FileField(label=_lazy("Attachment (optional)"), required=False)

    def clean_attachment(self) -> Any:
        upload = self.cleaned_data.get("attachment")
        # Refuse by the declared size before reading an oversized upload into memory.
        if upload is not None and upload.size > get_max_bytes():
            raise ValidationError(
                _("%(name)s: %(size).1f MB is over the %(limit).0f MB limit")
                % {
                    "name": upload.name,
                    "size": upload.size / 1048576,
                    "limit": get_max_bytes() / 1048576,
                }
            )
        return upload


def _page(request: HttpRequest, status: int = 200, **context: Any) -> HttpResponse:
    response = render(request, "service/contact.html", context, status=status)
    response["X-Robots-Tag"] = "noindex"
    return response


@never_cache
def contact_view(request: HttpRequest) -> HttpResponse:
    """Show the contact form; on POST turn it into a ticket and thank the visitor."""
    if request.method != "POST":
        return _page(request, form=ContactForm())
    rate = parse_rate(settings.KEQUN_SERVICE_FORM_RATE, "KEQUN_SERVICE_FORM_RATE")
    if wait := hit("contact-form", get_client_ip(request) or "unknown", rate):
        response = _page(
            request,
            status=429,
            form=ContactForm(request.POST),
            error=_("Too many messages from your address: please try again in %(minutes)d minutes.")
            % {"minutes": max(1, round(wait / 60))},
        )
        response["Retry-After"] = str(wait)
        return response
    form = ContactForm(request.POST, request.FILES)
    if not form.is_valid():
        return _page(request, status=400, form=form)
    data = form.cleaned_data
    upload = data.get("attachment")
    files = [(upload.name, upload.read())] if upload is not None else []
    try:
        ticket = submit_web_form(
            name=data["name"],
            email=data["email"],
            phone=data["phone"],
            subject=data["subject"],
            body=data["body"],
            type=data["type"],
            order_number=data["order_number"],
            attachments=files,
            by=ACTOR,
        )
    except ValidationError as exc:
        form.add_error(None, "; ".join(exc.messages))
        return _page(request, status=400, form=form)
    return _page(request, done=True, reference=ticket.reference)
