"""Mask personal fields (phone, email, address, birthday) for users who may not see them.

One place for every masking rule: the API schemas, the back office (lists, change views, the
360 page) and the exports all call these functions. Whether a user sees a field group
unmasked is a permission on the customer model (customers.view_customer_phone, …_email,
…_address, …_birthday); superusers and the administrator role hold all four.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterable
from typing import Any

from kequn.security import personal_data

PHONE = "phone"
EMAIL = "email"
ADDRESS = "address"
BIRTHDAY = "birthday"
FIELD_GROUPS = (PHONE, EMAIL, ADDRESS, BIRTHDAY)
UNMASK_PERMISSIONS = {group: f"customers.view_customer_{group}" for group in FIELD_GROUPS}
"""The permission that shows each field group unmasked."""
IDENTITY_GROUPS = {"phone": PHONE, "email": EMAIL, "wechat": PHONE}
"""The field group of each identity kind that is masked. A WeChat openid reaches the person
as a phone number does, so it goes with the phone; external ids are keys of other systems,
with no way to contact anyone, and stay readable so records can be found there."""

MASK = "****"


def mask_phone(phone: str) -> str:
    """Return a phone as 138****8000: first three and last four digits (+86 is dropped)."""
    if not phone:
        return phone
    text = phone.removeprefix("+86")
    if len(text) <= 7:
        # Too short to keep both ends without giving most of it away.
        return "*" * max(len(text) - 2, 1) + text[-2:] if len(text) > 2 else "*" * len(text)
    return f"{text[:3]}{MASK}{text[-4:]}"


def mask_email(email: str) -> str:
    """Return an email as z***@example.com: the first character of the mailbox and the domain."""
    if not email:
        return email
    local, at, domain = email.partition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def mask_address_line(line: str) -> str:
    """Return a street line fully masked (the province, city and district stay readable)."""
    return MASK if line else line


def mask_address(province: str = "", city: str = "", district: str = "", line: str = "") -> str:
    """Return an address as text, readable down to the district and masked after it."""
    return " ".join(p for p in [province, city, district, mask_address_line(line)] if p)


def mask_birthday(birthday: dt.date | str | None) -> str | None:
    """Return a birthday with the year hidden, as ****-05-04 (month and day suffice for greetings)."""
    if not birthday:
        return None if birthday is None else birthday
    text = birthday.isoformat() if isinstance(birthday, dt.date) else str(birthday)
    return f"{MASK}{text[4:10]}" if len(text) >= 10 else MASK


def mask_handle(handle: str) -> str:
    """Return an opaque handle (a WeChat openid) as oX2a****9fQk: its first and last four."""
    if len(handle) <= 10:
        return handle[:1] + MASK if handle else handle
    return f"{handle[:4]}{MASK}{handle[-4:]}"


def mask_identity_value(kind: str, value: str) -> str:
    """Return an identity value masked by its kind; external ids are kept."""
    if kind == "phone":
        return mask_phone(value)
    if kind == "email":
        return mask_email(value)
    if kind == "wechat":
        return mask_handle(value)
    return value


# Import targets (ingest.presets.FIELDS) that hold personal data, by field group.
TARGET_GROUPS = {**IDENTITY_GROUPS, "address": ADDRESS, "postcode": ADDRESS, "birthday": BIRTHDAY}


def mask_raw_value(target: str, value: str) -> str:
    """Return a raw input cell of an import target masked as that kind of value."""
    if not value:
        return value
    if target in IDENTITY_GROUPS:
        return mask_identity_value(target, value)
    return MASK  # free-form addresses and dates in any format: nothing safe to keep


def is_target_masked(groups: frozenset[str], target: str) -> bool:
    """Return whether values of this import target are hidden from these groups."""
    group = TARGET_GROUPS.get(target)
    return group is not None and group not in groups


def mask_mapped_values(
    groups: frozenset[str], values: dict[str, str], columns: dict[str, str]
) -> dict[str, str]:
    """Return raw input values (by column) masked where the column's target is a hidden group."""
    shown = {}
    for column, value in values.items():
        target = columns.get(column, "")
        shown[column] = mask_raw_value(target, value) if is_target_masked(groups, target) else value
    return shown


def get_unmasked_groups(user: Any) -> frozenset[str]:
    """Return the field groups this user sees unmasked (none for anonymous or inactive users)."""
    if user is None or not getattr(user, "is_active", True):
        return frozenset()
    if getattr(user, "is_superuser", False):
        return frozenset(FIELD_GROUPS)
    if not hasattr(user, "has_perm"):
        return frozenset()
    return frozenset(g for g, perm in UNMASK_PERMISSIONS.items() if user.has_perm(perm))


def mask_identity_for(user_groups: Iterable[str], kind: str, value: str) -> str:
    """Return an identity value as a user with these unmasked groups may see it."""
    group = IDENTITY_GROUPS.get(kind)
    return value if group is None or group in user_groups else mask_identity_value(kind, value)


def mask_row(user: Any, row: dict, groups: frozenset[str] | None = None) -> dict:
    """Return a copy of an export row with phone, email, address and birthday masked by role.

    The row's "address" is the text of an address (province city district line); when the row
    carries "address_parts" (that tuple), the masked text keeps everything before the street
    line, else it is masked whole. The returned row never holds "address_parts".
    """
    groups = get_unmasked_groups(user) if groups is None else groups
    row = dict(row)
    parts = row.pop("address_parts", None)
    if PHONE not in groups and row.get(PHONE):
        row[PHONE] = mask_phone(str(row[PHONE]))
    if EMAIL not in groups and row.get(EMAIL):
        row[EMAIL] = mask_email(str(row[EMAIL]))
    if ADDRESS not in groups and row.get(ADDRESS):
        row[ADDRESS] = mask_address(*parts) if parts else MASK
    if BIRTHDAY not in groups and row.get(BIRTHDAY):
        row[BIRTHDAY] = mask_birthday(row[BIRTHDAY])
    return row


def mask_identities(groups: frozenset[str], identities: Iterable[Any]) -> list[Any]:
    """Return identity objects for display, with values masked where the groups require.

    Masked ones are unsaved copies, so a masked value can never be written back.
    """
    shown = []
    for identity in identities:
        value = mask_identity_for(groups, identity.kind, identity.value)
        if value != identity.value:
            identity = copy.copy(identity)
            identity.value = value
            identity.pk = identity.id = None  # a copy for display only
        shown.append(identity)
    return shown


# How a value of each field group is shown to a user who may not see it.
GROUP_MASKERS = {
    PHONE: mask_phone,
    EMAIL: mask_email,
    ADDRESS: mask_address_line,
    BIRTHDAY: mask_birthday,
}


def mask_declared_fields(groups: frozenset[str], instance: Any) -> Any:
    """Return a row for display with the fields its app declares masked (personal_data) masked.

    A masked row is an unsaved copy, so a masked value can never be written back.
    """
    entry = personal_data.get_entry(type(instance))
    hidden = {
        name: group
        for name, group in (entry.masked if entry is not None else {}).items()
        if group not in groups
    }
    if not hidden:
        return instance
    shown = copy.copy(instance)
    for name, group in hidden.items():
        value = getattr(shown, name)
        setattr(shown, name, "" if name in entry.masked_blank else GROUP_MASKERS[group](value))
    shown.pk = shown.id = None  # a copy for display only
    return shown


def mask_addresses(groups: frozenset[str], addresses: Iterable[Any]) -> list[Any]:
    """Return address objects for display, the street line and postcode masked unless allowed."""
    if ADDRESS in groups:
        return list(addresses)
    return [mask_declared_fields(groups, address) for address in addresses]
