"""Check a request's parameters: the fields of a correction, the consents of a withdrawal."""

from __future__ import annotations

from datetime import date

from django.utils.translation import gettext as _

from kequn.customers.models import Consent
from kequn.customers.services import PROFILE_FIELDS
from kequn.privacy.models import PrivacyRequest
from kequn.privacy.services.base import PrivacyError
from kequn.security.inputs import DATE_YEARS, is_in_years

MARKETING = Consent.Purpose.MARKETING


def _check_correction_values(fields: dict) -> None:
    # A list or number became its Python repr (['a']) as the new name; a birthday in year 1
    # overflowed later. New values are text, as typed on a correction form.
    not_text = sorted(name for name, value in fields.items() if not isinstance(value, str))
    if not_text:
        raise PrivacyError(
            _('correction values must be text: %(f)s (e.g. {"name": "new value"})')
            % {"f": ", ".join(not_text)}
        )
    birthday = fields.get("birthday")
    if birthday:
        try:
            valid = is_in_years(date.fromisoformat(birthday), DATE_YEARS)
        except ValueError:
            valid = False
        if not valid:
            raise PrivacyError(
                _("the corrected birthday must be a date YYYY-MM-DD between %(low)s and %(high)s")
                % {"low": f"{DATE_YEARS[0]}-01-01", "high": f"{DATE_YEARS[1]}-12-31"}
            )


def check_parameters(kind: str, parameters: dict) -> dict:
    """Return a request's parameters checked for its type (defaults filled in)."""
    if not isinstance(parameters, dict):
        raise PrivacyError(_("parameters must be a JSON object"))
    if kind == PrivacyRequest.Type.CORRECTION:
        fields = parameters.get("fields")
        if not isinstance(fields, dict) or not fields:
            raise PrivacyError(
                _('a correction needs {"fields": {"name": "new value", ...}} with the new values')
            )
        unknown = sorted(set(fields) - set(PROFILE_FIELDS))
        if unknown:
            raise PrivacyError(
                _("cannot correct %(f)s: use one of %(ok)s")
                % {"f": ", ".join(unknown), "ok": ", ".join(PROFILE_FIELDS)}
            )
        _check_correction_values(fields)
    if kind == PrivacyRequest.Type.WITHDRAW_CONSENT:
        channels = parameters.get("channels") or list(Consent.Channel.values)
        purposes = parameters.get("purposes") or [MARKETING]
        bad = [c for c in channels if c not in Consent.Channel.values] + [
            p for p in purposes if p not in Consent.Purpose.values
        ]
        if bad:
            raise PrivacyError(
                _("unknown consent channel or purpose %(v)s: channels are %(c)s, purposes %(p)s")
                % {
                    "v": ", ".join(map(str, bad)),
                    "c": ", ".join(Consent.Channel.values),
                    "p": ", ".join(Consent.Purpose.values),
                }
            )
        parameters = {**parameters, "channels": list(channels), "purposes": list(purposes)}
    return parameters
