"""Normalise identity values so that one person's email or phone is stored one way only."""

from __future__ import annotations

import unicodedata

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from kequn.conf import read_env


class IdentityError(ValueError):
    """An identity value that cannot be normalised; the message says why."""


def get_default_region() -> str:
    """Return the region assumed for phone numbers without a country code (KEQUN_DEFAULT_REGION)."""
    return read_env("KEQUN_DEFAULT_REGION", "CN").upper()


def fold_text(value: str) -> str:
    """Fold full-width characters to ASCII (NFKC) and trim surrounding space."""
    return unicodedata.normalize("NFKC", value).strip()


def normalize_email(value: str) -> str:
    """Return the email validated and lower-cased, or raise IdentityError."""
    text = fold_text(value)
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise IdentityError(f"invalid email {text!r}: {exc}") from None
    return result.normalized.lower()


def normalize_phone(value: str, region: str | None = None) -> str:
    """Return the phone number in E.164 (e.g. +8613800138000), or raise IdentityError."""
    text = fold_text(value)
    try:
        number = phonenumbers.parse(text, region or get_default_region())
    except phonenumbers.NumberParseException as exc:
        raise IdentityError(f"invalid phone number {text!r}: {exc}") from None
    if not phonenumbers.is_possible_number(number):
        raise IdentityError(f"invalid phone number {text!r}: wrong length")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_identity(kind: str, value: str, region: str | None = None) -> str:
    """Normalise a value of the given identity kind (email, phone, wechat, external)."""
    if value is None or not str(value).strip():
        raise IdentityError(f"empty {kind} value")
    value = str(value)
    if kind == "email":
        return normalize_email(value)
    if kind == "phone":
        return normalize_phone(value, region)
    if kind in ("wechat", "external"):
        text = fold_text(value)
        if len(text) > 255:
            raise IdentityError(f"{kind} id longer than 255 characters")
        return text
    raise IdentityError(f"unknown identity type {kind!r}: use email, phone, wechat or external")
