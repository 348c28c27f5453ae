"""Links that pages draw many times: resolved once per script prefix, then filled in.

A `reverse()` walks the URL patterns every time (tens of µs with the admin's hundreds of
them), and a list of 50 rows drew 100 such links, the dashboard 240. The script prefix is
the only part of a link that can change while the process runs, so each view's link is
resolved once per prefix and an object's key is put into its copy.
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import quote

from django.contrib.admin.utils import quote as admin_quote
from django.urls import NoReverseMatch, get_script_prefix, reverse

# Digits pass every converter an object's key uses (int, str, slug, path); a link that
# cannot take them (a uuid key) is resolved each time instead.
_MARK = "7319826450"
# What reverse() leaves unescaped in an argument (RFC 3986 sub-delimiters and /~:@).
_SAFE = "!$&'()*+,;=/~:@"


@functools.lru_cache(maxsize=1024)
def _resolve(viewname: str, prefix: str, current_app: str | None, with_key: bool) -> str:
    # `prefix` is only part of the cache key: reverse() reads the thread's script prefix.
    return reverse(viewname, args=[_MARK] if with_key else None, current_app=current_app)


def get_url(viewname: str, *, current_app: str | None = None) -> str:
    """Return the link of a view that takes no arguments."""
    return _resolve(viewname, get_script_prefix(), current_app, False)


def get_object_url(viewname: str, key: Any, *, current_app: str | None = None) -> str:
    """Return the link of a view that takes one object's key (an admin change page, say).

    The key is not checked against the view's converter: pass one the view takes.
    """
    try:
        template = _resolve(viewname, get_script_prefix(), current_app, True)
    except NoReverseMatch:
        return reverse(viewname, args=[admin_quote(key)], current_app=current_app)
    head, _mark, tail = template.rpartition(_MARK)
    # The admin's own quoting first (as it reverses with quote(pk)), then reverse()'s.
    return f"{head}{quote(str(admin_quote(key)), safe=_SAFE)}{tail}"
