"""Find personal data (emails, phone numbers, id-card numbers, addresses) in event properties.

The rule, also in the README ("Personal data in event properties"): a property value is personal
when its key names an email, phone, address or id number (any case, any separator, at any depth,
e.g. ``Email``, ``phone_number``, ``contact.email``) or when the text itself holds an email
address, a Chinese mobile number, an international +number or a Chinese id-card number (18
characters with a valid check digit). Emails, phones and addresses leave the stored properties
for the event's encrypted column and a marker such as ``[email]`` takes their place; id-card
numbers are dropped (behaviour tracking never needs them) and only the marker stays. Whoever
may see a field group sees the value again; everyone else sees it masked.

Pure functions (no Django), so the data migration can use them as they are.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from contextlib import suppress
from functools import lru_cache
from typing import Any

from kequn.security.masking import mask_email, mask_phone

EMAIL = "email"
PHONE = "phone"
ADDRESS = "address"
ID_NUMBER = "id_number"
KINDS = (EMAIL, PHONE, ADDRESS, ID_NUMBER)
MARKERS = {
    EMAIL: "[email]",
    PHONE: "[phone]",
    ADDRESS: "[address]",
    ID_NUMBER: "[id number]",
    "mixed": "[personal data]",
}
_MARKER_VALUES = frozenset(MARKERS.values())
MASK = "****"
# Deeper than this, a subtree is not inspected value by value: it is kept encrypted whole.
MAX_DEPTH = 64

# Keys are compared lower-cased without separators: "E-Mail", "e_mail" and "eMail" are one.
_KEY_SEPARATORS = re.compile(r"[\s_\-.:]+")
_EMAIL_KEY = re.compile(r"(e?mail(address)?|邮箱|电子邮件|邮件地址)$")
_PHONE_KEY = re.compile(
    r"(^tel|telephone|phone(number|no|num)?|mobile(number|no|num|phone)?|cellphone"
    r"|手机|手机号|手机号码|电话|电话号码|联系电话|联系方式)$"
)
_ADDRESS_KEY = re.compile(
    r"(^address|^street|streetaddress|addressline\d?|shippingaddress|billingaddress"
    r"|deliveryaddress|postcode|postalcode|zipcode|地址|收货地址|详细地址|邮编)$"
)
_ID_KEY = re.compile(
    r"^(idcard|idcardno|idcardnumber|idnumber|idno|identitycard|identitycardnumber"
    r"|nationalid|citizenid|身份证|身份证号|身份证号码|证件号|证件号码)$"
)

EMAIL_PATTERN = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
# A Chinese mobile (optionally +86 / 86, spaces or dashes between groups), or an international
# number written with a leading +; never part of a longer run of digits (timestamps) nor
# right after a Latin letter (ORD13912345678 is an order number), but 电话13912345678 is one.
PHONE_PATTERN = re.compile(
    r"(?<![0-9A-Za-z+])(?:(?:\+|00)?86[\s\-]?)?1[3-9]\d[\s\-]?\d{4}[\s\-]?\d{4}(?!\d)"
    r"|(?<![\w+])\+[1-9][\d\s\-]{6,16}\d(?!\d)"
)
_SEVENTEEN_DIGITS = re.compile(r"\d{17}")
ID_NUMBER_PATTERN = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


@lru_cache(maxsize=4096)
def classify_key(key: object) -> str | None:
    """Return the kind of personal data a property key names, or None."""
    text = _KEY_SEPARATORS.sub("", str(key)).lower()
    if not text:
        return None
    if _ID_KEY.search(text):
        return ID_NUMBER
    if _EMAIL_KEY.search(text):
        return EMAIL
    if _PHONE_KEY.search(text):
        return PHONE
    if _ADDRESS_KEY.search(text):
        return ADDRESS
    return None


def is_id_number(text: str) -> bool:
    """Return whether 18 characters are a Chinese id-card number (check digit and birth date)."""
    if len(text) != 18 or not text[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(text[:17], _ID_WEIGHTS, strict=True))
    if _ID_CHECK[total % 11] != text[17].upper():
        return False
    year, month, day = int(text[6:10]), int(text[10:12]), int(text[12:14])
    return 1900 <= year <= 2100 and 1 <= month <= 12 and 1 <= day <= 31


def _drop_id_numbers(text: str) -> tuple[str, bool]:
    found = False

    def replace(match: re.Match) -> str:
        nonlocal found
        if is_id_number(match.group()):
            found = True
            return MARKERS[ID_NUMBER]
        return match.group()

    if not _SEVENTEEN_DIGITS.search(text):
        return text, False
    return ID_NUMBER_PATTERN.sub(replace, text), found


def classify_text(text: str) -> set[str]:
    """Return the kinds of contact data (email, phone) the text holds."""
    kinds = set()
    if "@" in text and EMAIL_PATTERN.search(text):
        kinds.add(EMAIL)
    if PHONE_PATTERN.search(text):
        kinds.add(PHONE)
    return kinds


Path = list  # keys and list indexes from the top of the properties to a value


def split_personal(properties: Any) -> tuple[Any, list[list]]:
    """Return the properties with personal values replaced by markers, and what was taken out.

    What was taken out is a list of [path, kinds, value]; id-card numbers are not in it (they
    are dropped). Values that are already markers are left alone, so splitting twice is safe.
    """
    found: list[list] = []
    cleaned = _walk(properties, None, None, found, 0)
    return cleaned, found


# Anything shorter holds no email (a@b.cn), phone or id number.
_MIN_PERSONAL_LENGTH = 6
# Seven digits, single spaces or dashes between them allowed: every phone and id number has
# them, so text without them needs no closer look (a C-speed check on every value).
_SEVEN_DIGITS = re.compile(r"\d(?:[\s\-]?\d){6}")


def _path(node: tuple | None) -> Path:
    # Paths are kept as (parent, key) links while walking: built only for values taken out.
    steps = []
    while node is not None:
        node, step = node
        steps.append(step)
    return steps[::-1]


def _walk(value: Any, node: tuple | None, key_kind: str | None, found: list, depth: int) -> Any:
    if isinstance(value, str):
        if key_kind is None and (
            len(value) < _MIN_PERSONAL_LENGTH
            or ("@" not in value and not _SEVEN_DIGITS.search(value))
        ):
            return value
        return _walk_text(value, node, key_kind, found)
    if depth > MAX_DEPTH:
        found.append([_path(node), ["mixed"], value])
        return MARKERS["mixed"]
    if isinstance(value, dict):
        return {
            key: _walk(item, (node, key), classify_key(key), found, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_walk(item, (node, i), key_kind, found, depth + 1) for i, item in enumerate(value)]
    if isinstance(value, bool) or not isinstance(value, int):
        return value  # floats, null, true/false
    if key_kind == ID_NUMBER:
        return MARKERS[ID_NUMBER]
    if key_kind is None and not 1_000_000 <= abs(value) < 10**18:
        return value
    text = str(value)
    if key_kind in (EMAIL, PHONE, ADDRESS) or PHONE_PATTERN.fullmatch(text):
        found.append([_path(node), [key_kind or PHONE], value])
        return MARKERS[key_kind or PHONE]
    return MARKERS[ID_NUMBER] if is_id_number(text) else value


def _walk_text(value: str, node: tuple | None, key_kind: str | None, found: list) -> Any:
    if value in _MARKER_VALUES:
        return value
    if key_kind == ID_NUMBER:
        return MARKERS[ID_NUMBER]
    text, _had_id = _drop_id_numbers(value)
    kinds = classify_text(text)
    if key_kind is not None:
        kinds.add(key_kind)
    if not kinds:
        return text
    found.append([_path(node), sorted(kinds), text])
    return MARKERS[kinds.pop()] if len(kinds) == 1 else MARKERS["mixed"]


def merge_personal(old: list[list] | None, new: Iterable[list]) -> list[list]:
    """Return the stored personal values with new ones added (a path found again is replaced)."""
    merged = {_path_key(p): [p, k, v] for p, k, v in old or []}
    for path, kinds, value in new:
        merged[_path_key(path)] = [path, kinds, value]
    return list(merged.values())


def _path_key(path: Path) -> str:
    return "\x1f".join(f"{type(p).__name__}:{p}" for p in path)


def mask_text(kinds: Iterable[str], value: Any) -> Any:
    """Return a personal value as someone who may not see it sees it."""
    kinds = set(kinds)
    if ADDRESS in kinds or "mixed" in kinds or not isinstance(value, str | int):
        return MASK
    text = str(value)
    if EMAIL in kinds and not EMAIL_PATTERN.search(text) and PHONE not in kinds:
        return mask_email(text)  # a key says email but the text is not one: mask it whole
    if PHONE in kinds and not PHONE_PATTERN.search(text) and EMAIL not in kinds:
        return mask_phone(text)
    text = EMAIL_PATTERN.sub(lambda m: mask_email(m.group()), text)
    return PHONE_PATTERN.sub(lambda m: mask_phone(re.sub(r"[\s\-]", "", m.group())), text)


def reveal_personal(
    properties: Any, personal: list[list] | None, visible: Iterable[str] = ()
) -> Any:
    """Return the properties with personal values put back: in clear for the visible kinds."""
    if not personal:
        return properties
    visible = set(visible)
    shown = copy.deepcopy(properties)
    for path, kinds, value in personal:
        clear = set(kinds) <= visible
        shown = _put(shown, path, value if clear else mask_text(kinds, value))
    return shown


def _put(container: Any, path: Path, value: Any) -> Any:
    if not path:
        return value
    node = container
    for step in path[:-1]:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return container  # the properties no longer have this place
    with suppress(IndexError, TypeError):
        node[path[-1]] = value
    return container
