"""Email HTML: CSS inlined, then sanitised; and the plain-text version of a body."""

from __future__ import annotations

import copy
import functools
import html as html_lib
import re

import css_inline
import nh3

# Mail clients drop <style> blocks and ignore classes, so rules are moved into style
# attributes; remote stylesheets are never fetched (no network at send time).
_INLINER = css_inline.CSSInliner(
    keep_style_tags=False, keep_link_tags=False, load_remote_stylesheets=False
)

_TAGS = set(nh3.ALLOWED_TAGS) | {"font", "section"}
_ATTRIBUTES: dict[str, set[str]] = copy.deepcopy(nh3.ALLOWED_ATTRIBUTES)
for _tag in _TAGS:
    _ATTRIBUTES.setdefault(_tag, set()).update({"style", "align", "dir", "lang", "title"})
for _tag in ("table", "td", "th", "tr", "tbody", "thead", "col", "colgroup"):
    _ATTRIBUTES[_tag].update(
        {
            "width",
            "height",
            "bgcolor",
            "border",
            "cellpadding",
            "cellspacing",
            "valign",
            "colspan",
            "rowspan",
        }
    )
_ATTRIBUTES["img"].update({"width", "height", "alt", "src", "border"})
_ATTRIBUTES["a"].update({"href", "target"})
_ATTRIBUTES["font"].update({"color", "face", "size"})

# Presentation only: nothing that positions over other content or loads behaviour.
_STYLE_PROPERTIES = {
    "color", "background-color", "font", "font-family", "font-size", "font-style",
    "font-weight", "line-height", "letter-spacing", "text-align", "text-decoration",
    "text-transform", "vertical-align", "white-space", "word-break", "width", "max-width",
    "min-width", "height", "max-height", "margin", "margin-top", "margin-right",
    "margin-bottom", "margin-left", "padding", "padding-top", "padding-right",
    "padding-bottom", "padding-left", "border", "border-top", "border-right",
    "border-bottom", "border-left", "border-color", "border-style", "border-width",
    "border-radius", "border-collapse", "border-spacing", "display", "table-layout",
}  # fmt: skip

_SHELL = (
    '<!DOCTYPE html><html><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width"></head><body>{}</body></html>'
)


# Built once: handing the option sets to nh3 on every call costs more than the cleaning.
_CLEANER = nh3.Cleaner(
    tags=_TAGS,
    attributes=_ATTRIBUTES,
    clean_content_tags={"script", "style", "title"},
    url_schemes={"http", "https", "mailto", "tel"},
    filter_style_properties=_STYLE_PROPERTIES,
    link_rel="noopener noreferrer",
    strip_comments=True,
)


# A campaign without personal fields sends one body to everyone: prepare it once.
@functools.lru_cache(maxsize=64)
def prepare_html(source: str) -> str:
    """Return ``source`` with its CSS inlined and everything unsafe removed, as a document."""
    try:
        inlined = _INLINER.inline(source)
    except ValueError:
        inlined = source  # CSS the inliner cannot parse: sanitising below still applies
    return _SHELL.format(_CLEANER.clean(inlined))


_BLOCKS = (
    "p|div|br|tr|table|h[1-6]|li|ul|ol|blockquote|hr|section|header|footer|article|pre|dl|dt|dd"
)
_HIDDEN = re.compile(r"<(script|style|head|title)\b.*?</\1\s*>", re.S | re.I)
_LINK = re.compile(
    r"""<a\b[^>]*?\bhref\s*=\s*(?:"([^"]*)"|'([^']*)')[^>]*>(.*?)</a\s*>""", re.S | re.I
)
_ITEM = re.compile(r"<li\b[^>]*>", re.I)
_BLOCK = re.compile(rf"</?(?:{_BLOCKS})\b[^>]*>", re.I)
_CELL = re.compile(r"</?t[dh]\b[^>]*>", re.I)
_TAG = re.compile(r"<[^>]*>")
_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\n\s*\n\s*(\n\s*)+")


def _link(match: re.Match[str]) -> str:
    href = html_lib.unescape(match.group(1) or match.group(2) or "")
    label = match.group(3)
    if href.startswith(("http://", "https://")) and href not in label:
        return f"{label} ({href})"
    return label


@functools.lru_cache(maxsize=64)
def html_to_text(source: str) -> str:
    """Return a readable plain-text version of an HTML body (links as "text (url)")."""
    text = _HIDDEN.sub("", source)
    text = _LINK.sub(_link, text)
    text = _ITEM.sub("\n- ", text)
    text = _BLOCK.sub("\n", text)
    text = _CELL.sub(" ", text)
    text = html_lib.unescape(_TAG.sub("", text))
    text = _SPACES.sub(" ", text)
    lines = [line.strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
