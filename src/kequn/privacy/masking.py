"""Requests as each user may see them: a correction's new birthday is masked like the birthday."""

from __future__ import annotations

from typing import Any

from kequn.security.masking import BIRTHDAY, get_unmasked_groups, mask_birthday


def mask_request_parameters(user: Any, parameters: Any) -> Any:
    """Return a request's parameters with the new birthday of a correction masked for the user.

    A service agent records corrections but sees birthdays without the year; the value asked
    for is the same personal data as the stored one.
    """
    if not isinstance(parameters, dict) or BIRTHDAY in get_unmasked_groups(user):
        return parameters
    fields = parameters.get("fields")
    if not isinstance(fields, dict) or not fields.get(BIRTHDAY):
        return parameters
    value = fields[BIRTHDAY]
    return {**parameters, "fields": {**fields, BIRTHDAY: mask_birthday(str(value))}}
