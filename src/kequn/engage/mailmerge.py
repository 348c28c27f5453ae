"""Email bodies prepared once per template and filled in per recipient.

Inlining CSS and sanitising a body costs more than everything else in an email, and a
campaign's bodies differ only in their field values. So a template is rendered once per
shape (the branches of its {% if %} tags a customer takes) with a marker in place of each
field; that skeleton is inlined and sanitised once, and each recipient's body is the
skeleton's pieces joined with their escaped values (the plain text made from that).

This gives what preparing each message would, because an escaped value cannot add markup.
A field whose marker did not come through as text or inside a link's address (in a style
rule or another attribute, or dropped by the sanitiser) makes that shape fall back to
preparing each message, as does a value heading a link with a scheme the sanitiser refuses.
"""

from __future__ import annotations

import functools
import html
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kequn.engage import content
from kequn.engage.channels.html import html_to_text, prepare_html

_NONCE = secrets.token_hex(4)
_MARKER = re.compile(rf"kqm{_NONCE}x(\d+)y")
_SAFE_SCHEMES = ("http://", "https://", "mailto:", "tel:")
_OPEN_ATTRIBUTE = re.compile(r'([a-zA-Z-]+)="([^"]*)$')


@dataclass(frozen=True)
class _Shape:
    """A prepared skeleton: literal pieces of HTML around field slots."""

    html_pieces: tuple[str, ...]
    html_slots: tuple[int, ...]  # field index of each gap between pieces
    link_heads: frozenset[int]  # fields that start a link: their scheme is checked


def _marker(index: int) -> str:
    return f"kqm{_NONCE}x{index}y"


def _split(prepared: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
    parts = _MARKER.split(prepared)
    return tuple(parts[0::2]), tuple(int(i) for i in parts[1::2])


def _check_contexts(pieces: tuple[str, ...], slots: tuple[int, ...]) -> frozenset[int] | None:
    """Return the fields that head a link, or None when a field sits anywhere but text or a link."""
    heads = set()
    before = ""
    for piece, slot in zip(pieces, slots, strict=False):
        before += piece
        opened, closed = before.rfind("<"), before.rfind(">")
        if opened > closed:  # inside a tag: only a link's address may hold a field
            found = _OPEN_ATTRIBUTE.search(before[opened:])
            if found is None or found.group(1).lower() not in ("href", "src"):
                return None
            if not found.group(2):
                heads.add(slot)
            elif not found.group(2).lower().startswith(_SAFE_SCHEMES):
                return None
        elif re.search(r"<(style|script)\b[^>]*>[^<]*$", before, re.I):
            return None
        before += "\x00"  # the field itself: never markup
    return frozenset(heads)


@functools.lru_cache(maxsize=128)
def _prepare_shape(source: str, branches: tuple[bool, ...], fields: int) -> _Shape | None:
    """Return the prepared shape of a template along branches, or None to prepare each message."""
    markers = [_marker(i) for i in range(fields)]
    html_pieces, html_slots = _split(prepare_html(content.skeleton(source, branches, markers)))
    if sorted(html_slots) != list(range(fields)):
        return None  # a field was dropped or copied (e.g. inside a removed element)
    heads = _check_contexts(html_pieces, html_slots)
    if heads is None:
        return None
    return _Shape(html_pieces, html_slots, heads)


def _join(pieces: tuple[str, ...], slots: tuple[int, ...], values: list[str]) -> str:
    out = [pieces[0]]
    for piece, slot in zip(pieces[1:], slots, strict=True):
        out.append(values[slot])
        out.append(piece)
    return "".join(out)


def render_email_body(source: str, context: Mapping[str, Any]) -> tuple[str, str]:
    """Return an HTML template's body for one context as (prepared HTML document, plain text)."""
    branches, values = content.fill_in(source, context)
    shape = _prepare_shape(source, branches, len(values))
    if shape is not None and all(
        values[i].lower().startswith(_SAFE_SCHEMES) or not values[i] for i in shape.link_heads
    ):
        escaped = [html.escape(v, quote=True) for v in values]
        document = _join(shape.html_pieces, shape.html_slots, escaped)
        # The text follows the filled-in links and lines (cheap next to preparing HTML).
        return document, html_to_text(document)
    prepared = prepare_html(content.render(source, context, escape=True))
    return prepared, html_to_text(prepared)
