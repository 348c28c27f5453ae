"""Reading inbound email: sender, subject, text, attachments and the ticket it answers.

Pure parsing (no writes): services.receive_email decides what the message becomes.
"""

from __future__ import annotations

import email
import hashlib
import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime

from django.utils.html import strip_tags
from django.utils.translation import gettext as _

TICKET_TAG = re.compile(r"\[#(\d{1,18})\]")
# Message-IDs of our outgoing replies: <ticket-123.456.nonce@host>.
OUR_MESSAGE_ID = re.compile(r"<ticket-(\d{1,18})\.")


@dataclass
class ParsedEmail:
    digest: str
    message_id: str
    sender: str
    sender_name: str
    subject: str
    text: str
    references: list[str]
    sent_at: object = None
    is_automatic: bool = False
    attachments: list[tuple[str, bytes]] = field(default_factory=list)
    problem: str = ""

    def ticket_hint(self) -> int | None:
        """Return the ticket number named by the subject's "[#123]" tag, if any."""
        found = TICKET_TAG.search(self.subject)
        return int(found.group(1)) if found else None

    def referenced_ticket_ids(self) -> list[int]:
        """Return ticket numbers found in the References of our own Message-IDs."""
        return [int(m.group(1)) for ref in self.references if (m := OUR_MESSAGE_ID.match(ref))]


def compute_digest(raw: bytes) -> str:
    """Return the message's SHA-256 (the same message received twice is stored once)."""
    return hashlib.sha256(raw).hexdigest()


def _text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain", "html"))
    if body is None:
        return ""
    try:
        content = body.get_content()
    except (LookupError, UnicodeDecodeError):  # an unknown charset: keep what decodes
        payload = body.get_payload(decode=True)
        content = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else ""
    if body.get_content_type() == "text/html":
        content = strip_tags(content)
    return str(content).replace("\x00", "").strip()


def parse_email(raw: bytes) -> ParsedEmail:
    """Return what a raw RFC 5322 message says; problems are noted, never raised."""
    digest = compute_digest(raw)
    try:
        message = email.message_from_bytes(raw, policy=policy.default)
        if not isinstance(message, EmailMessage):
            raise TypeError("not an email message")
        senders = getaddresses([str(message.get("From", ""))])
        name, address = senders[0] if senders else ("", "")
        refs = " ".join(str(message.get(h, "")) for h in ("In-Reply-To", "References"))
        parsed = ParsedEmail(
            digest=digest,
            message_id=str(message.get("Message-ID", "")).strip()[:300],
            sender=address.strip().lower()[:254] if "@" in address else "",
            sender_name=name.strip()[:100],
            subject=" ".join(str(message.get("Subject", "")).split())[:300],
            text=_text_of(message),
            references=re.findall(r"<[^<>\s]+>", refs),
        )
        auto = str(message.get("Auto-Submitted", "no")).lower()
        parsed.is_automatic = auto not in ("", "no") or bool(message.get("X-Autoreply"))
        try:
            parsed.sent_at = (
                parsedate_to_datetime(str(message["Date"])) if message["Date"] else None
            )
        except (TypeError, ValueError):
            parsed.sent_at = None
        for part in message.iter_attachments():
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                parsed.attachments.append((part.get_filename() or "attachment", payload))
        return parsed
    except Exception as exc:
        return ParsedEmail(
            digest=digest,
            message_id="",
            sender="",
            sender_name="",
            subject="",
            text="",
            references=[],
            problem=(
                _("the message cannot be read as email: %(error)s")
                % {"error": f"{type(exc).__name__}: {exc}"}
            )[:300],
        )
