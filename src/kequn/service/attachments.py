"""Attachment checks: a size limit, and the file's first bytes must match its extension.

A program renamed to ``invoice.pdf`` starts with ``MZ`` (Windows) or ``\\x7fELF`` (Linux),
not ``%PDF``: it is refused with the reason, whatever its name or declared type says.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext as _

# Signature -> kind. Longer signatures first where they share a prefix.
SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "pdf"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"RIFF", "webp"),  # RIFF....WEBP, checked below
    (b"PK\x03\x04", "zip"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole"),  # old Office files
    (b"MZ", "executable"),
    (b"\x7fELF", "executable"),
    (b"\xca\xfe\xba\xbe", "executable"),
    (b"\xcf\xfa\xed\xfe", "executable"),
    (b"#!", "executable"),
)

# Extension -> the kind its content must be, and the type it is stored as.
ALLOWED: dict[str, tuple[str, str]] = {
    "pdf": ("pdf", "application/pdf"),
    "png": ("png", "image/png"),
    "jpg": ("jpeg", "image/jpeg"),
    "jpeg": ("jpeg", "image/jpeg"),
    "gif": ("gif", "image/gif"),
    "webp": ("webp", "image/webp"),
    "zip": ("zip", "application/zip"),
    "docx": ("zip", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    "xlsx": ("zip", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "pptx": ("zip", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
    "doc": ("ole", "application/msword"),
    "xls": ("ole", "application/vnd.ms-excel"),
    "txt": ("text", "text/plain"),
    "csv": ("text", "text/csv"),
    "log": ("text", "text/plain"),
    "eml": ("text", "message/rfc822"),
}


class AttachmentError(ValueError):
    """An attachment refused; the message names the file and the reason."""


@dataclass(frozen=True)
class CheckedFile:
    name: str
    content_type: str
    data: bytes


def get_max_bytes() -> int:
    """Return the attachment size limit in bytes (KEQUN_SERVICE_ATTACHMENT_MAX_MB)."""
    return int(float(getattr(settings, "KEQUN_SERVICE_ATTACHMENT_MAX_MB", 10)) * 1024 * 1024)


def sniff(data: bytes) -> str:
    """Return the kind the content's first bytes say ("pdf", "executable", "text", "unknown")."""
    for signature, kind in SIGNATURES:
        if data.startswith(signature):
            if kind == "webp" and data[8:12] != b"WEBP":
                continue
            return kind
    head = data[:4096]
    if b"\x00" not in head:
        try:
            head.decode("utf-8")
            return "text"
        except UnicodeDecodeError as exc:
            if exc.start >= len(head) - 3:  # a character cut at the sample's end
                return "text"
            try:
                head.decode("gb18030")
                return "text"
            except UnicodeDecodeError:
                pass
    return "unknown"


def clean_name(name: str) -> str:
    """Return the file's base name without path or control characters (at most 200 chars)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip().strip(".")
    return base[-200:] or "attachment"


def check_attachment(name: str, data: bytes, max_bytes: int | None = None) -> CheckedFile:
    """Return the file if its size and content are acceptable, else raise AttachmentError."""
    name = clean_name(name)
    limit = get_max_bytes() if max_bytes is None else max_bytes
    if len(data) > limit:
        raise AttachmentError(
            _(
                "%(name)s: %(size).1f MB is over the %(limit).0f MB limit "
                "(KEQUN_SERVICE_ATTACHMENT_MAX_MB); ask for a smaller file or a link"
            )
            % {"name": name, "size": len(data) / 1048576, "limit": limit / 1048576}
        )
    if not data:
        raise AttachmentError(_("%(name)s: the file is empty") % {"name": name})
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    kind = sniff(data)
    if kind == "executable":
        raise AttachmentError(
            _(
                "%(name)s: the content is a program (executable), not a .%(extension)s file; "
                "programs are never accepted"
            )
            % {"name": name, "extension": extension or "?"}
        )
    if extension not in ALLOWED:
        allowed = ", ".join(sorted(ALLOWED))
        raise AttachmentError(
            _("%(name)s: .%(extension)s files are not accepted; use %(allowed)s")
            % {"name": name, "extension": extension or "(none)", "allowed": allowed}
        )
    expected, content_type = ALLOWED[extension]
    if kind != expected:
        raise AttachmentError(
            _(
                "%(name)s: the content is %(kind)s, not the %(expected)s a .%(extension)s file "
                "holds; the file is disguised or damaged"
            )
            % {"name": name, "kind": kind, "expected": expected, "extension": extension}
        )
    return CheckedFile(name=name, content_type=content_type, data=data)
