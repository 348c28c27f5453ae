"""Inbound email: poll an IMAP mailbox, or receive over SMTP (an aiosmtpd handler).

``KEQUN_SERVICE_IMAP_URL`` names the mailbox: ``imaps://user:password@host:993/INBOX``
(``imap://`` without TLS, for a local server). Each unread message is filed through
services.receive_email and only then flagged \\Seen, so a poll killed half-way files the
rest next time; a message filed but not yet flagged is recognised by its digest.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
from typing import Any
from urllib.parse import unquote, urlsplit

from django.conf import settings

from kequn.security.actors import Actor
from kequn.service import services
from kequn.service.models import InboundEmail


class MailboxError(Exception):
    """The mailbox cannot be reached or read; the message says what to check."""


def is_configured() -> bool:
    """Return whether an inbound mailbox is set."""
    return bool(getattr(settings, "KEQUN_SERVICE_IMAP_URL", ""))


def connect(url: str, timeout: float = 30) -> tuple[imaplib.IMAP4, str]:
    """Log in to the mailbox of an imap(s):// URL; return the connection and folder."""
    parts = urlsplit(url)
    if parts.scheme not in ("imap", "imaps") or not parts.hostname:
        raise MailboxError(
            "KEQUN_SERVICE_IMAP_URL must look like imaps://user:password@host:993/INBOX"
        )
    port = parts.port or (993 if parts.scheme == "imaps" else 143)
    cls = imaplib.IMAP4_SSL if parts.scheme == "imaps" else imaplib.IMAP4
    try:
        conn = cls(parts.hostname, port, timeout=timeout)
    except OSError as exc:
        raise MailboxError(f"cannot reach {parts.hostname}:{port}: {exc}") from None
    try:
        conn.login(unquote(parts.username or ""), unquote(parts.password or ""))
    except imaplib.IMAP4.error as exc:
        conn.shutdown()
        raise MailboxError(
            f"{parts.hostname}: login refused ({exc}); check user and password"
        ) from None
    return conn, unquote(parts.path.lstrip("/")) or "INBOX"


def fetch_mail(*, by: Actor, url: str | None = None, progress: Any = None) -> dict[str, int]:
    """File every unread message of the mailbox; return counts by outcome."""
    conn, folder = connect(url or settings.KEQUN_SERVICE_IMAP_URL)
    counts = dict.fromkeys(InboundEmail.Outcome.values, 0)
    try:
        status, _ = conn.select(folder)
        if status != "OK":
            raise MailboxError(f"the mailbox has no folder {folder!r}")
        status, found = conn.uid("SEARCH", "UNSEEN")
        uids = found[0].split() if status == "OK" and found and found[0] else []
        for uid in uids:
            status, data = conn.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next((item[1] for item in data if isinstance(item, tuple)), None)
            if status != "OK" or raw is None:
                continue
            record = services.receive_email(raw, by=by, via="imap")
            counts[record.outcome] += 1
            conn.uid("STORE", uid, "+FLAGS", "(\\Seen)")
            if progress is not None:
                progress.update(1)
    finally:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            conn.logout()
    return counts


class SmtpInboundHandler:
    """aiosmtpd handler: each message received over SMTP is filed like a polled one."""

    def __init__(self, by: Actor):
        self.by = by

    async def handle_DATA(  # noqa: N802 -- the name aiosmtpd calls
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        """File the message (in a worker thread: the ORM is synchronous); 250 once stored."""
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        try:
            await asyncio.get_running_loop().run_in_executor(None, self._file, raw)
        except Exception as exc:
            reason = " ".join(str(exc).split())[:100]
            return f"451 cannot store the message now: {reason}"
        return "250 Message accepted"

    def _file(self, raw: bytes) -> None:
        from django.db import close_old_connections  # noqa: PLC0415 -- a thread of its own

        close_old_connections()
        try:
            services.receive_email(raw, by=self.by, via="smtp")
        finally:
            close_old_connections()
