"""Email over SMTP: pooled connections in parallel, one-click unsubscribe, DKIM.

Each of KEQUN_EMAIL_CONNECTIONS threads keeps its own SMTP connection open across messages
and reconnects when the server hangs up. Every message is multipart/alternative (plain text
beside the sanitised, CSS-inlined HTML); a marketing message (one with an unsubscribe URL)
carries List-Unsubscribe and List-Unsubscribe-Post (RFC 8058 one-click).
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import functools
import itertools
import queue
import re
import smtplib
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from kequn.engage.channels.base import (
    ChannelNotConfiguredError,
    ChannelUnavailableError,
    OutgoingMessage,
    RateLimiter,
    SendResult,
    one_line,
)
from kequn.engage.channels.dkimsign import DKIMSigner
from kequn.engage.channels.html import html_to_text, prepare_html

SCHEMES = {"smtp": "plain", "smtp+starttls": "starttls", "smtps": "tls"}
TIMEOUT_SECONDS = 30.0
# Headers a caller may not set: the channel writes them, and a second copy would confuse
# receivers (or, with a line break in a value, inject headers).
RESERVED_HEADERS = {
    "from", "to", "subject", "date", "message-id", "mime-version", "content-type",
    "content-transfer-encoding", "list-unsubscribe", "list-unsubscribe-post", "dkim-signature",
}  # fmt: skip
SIGNED_HEADERS = [
    "From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type",
    "List-Unsubscribe", "List-Unsubscribe-Post",
]  # fmt: skip
_LEADING_DOT = re.compile(rb"(?m)^\.")  # dot-stuffing (RFC 5321 4.5.2)
_HTML_TAG = re.compile(r"<\s*[a-zA-Z!/][^>]*>")
_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")


@dataclass(frozen=True)
class SMTPServer:
    """Where and how to connect, from KEQUN_EMAIL_URL."""

    host: str
    port: int
    security: str  # plain | starttls | tls
    user: str = ""
    password: str = ""

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_email_url(url: str) -> SMTPServer:
    """Return the server named by a KEQUN_EMAIL_URL, or raise ChannelNotConfiguredError."""
    parts = urllib.parse.urlsplit(url)
    security = SCHEMES.get(parts.scheme.lower())
    if security is None or not parts.hostname:
        raise ChannelNotConfiguredError(
            f"KEQUN_EMAIL_URL must look like smtp://user:password@host:587 "
            f"(schemes: {', '.join(SCHEMES)}), not {parts.scheme or 'no scheme'}://…"
        )
    try:
        port = parts.port
    except ValueError:
        raise ChannelNotConfiguredError("KEQUN_EMAIL_URL has an invalid port number") from None
    default_port = 465 if security == "tls" else 587 if security == "starttls" else 25
    return SMTPServer(
        host=parts.hostname,
        port=port or default_port,
        security=security,
        user=urllib.parse.unquote(parts.username or ""),
        password=urllib.parse.unquote(parts.password or ""),
    )


def _encode_header(value: str) -> str:
    """Return a header value as ASCII (RFC 2047 words for other scripts), without line breaks."""
    value = " ".join(value.split())
    if value.isascii():
        return value
    # Base64 words of at most 45 bytes (60 characters encoded), never splitting a character.
    words: list[str] = []
    chunk: list[str] = []
    size = 0
    for char in value:
        n = len(char.encode("utf-8"))
        if size + n > 45:
            words.append("".join(chunk))
            chunk, size = [], 0
        chunk.append(char)
        size += n
    words.append("".join(chunk))
    return "\r\n ".join(
        f"=?utf-8?b?{base64.b64encode(w.encode('utf-8')).decode('ascii')}?=" for w in words
    )


def _encode_body(text: str) -> bytes:
    """Return text as base64 in 76-character CRLF lines (one encode, then slices)."""
    data = base64.b64encode(text.encode("utf-8"))
    return b"\r\n".join([data[i : i + 76] for i in range(0, len(data), 76)]) + b"\r\n"


@functools.lru_cache(maxsize=2)
def _date_header(second: int) -> str:
    return email.utils.formatdate(second, usegmt=True)


def _is_valid_address(address: str) -> bool:
    return bool(_ADDRESS.match(address)) and address.isascii()


class EmailChannel:
    """Send email over SMTP through a pool of persistent connections."""

    kind = "email"

    def __init__(
        self,
        server: SMTPServer,
        *,
        sender: str,
        rate_per_second: float = 0.0,
        connections: int = 4,
        dkim_key: DKIMSigner | None = None,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        name, address = email.utils.parseaddr(sender)
        if not _is_valid_address(address):
            raise ChannelNotConfiguredError(
                f"KEQUN_EMAIL_FROM must be an address such as 'Shop <news@shop.example>', not {sender!r}"
            )
        self.server = server
        self.sender_address = address
        self.sender_header = _encode_header(email.utils.formataddr((name, address)))
        self.domain = address.rsplit("@", 1)[1]
        self.rate_per_second = rate_per_second
        self.connections = max(1, connections)
        self.dkim_key = dkim_key
        self.timeout = timeout
        self.limiter = RateLimiter(rate_per_second)
        self._idle: queue.LifoQueue[smtplib.SMTP | None] = queue.LifoQueue()
        for _ in range(self.connections):
            self._idle.put(None)
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ connections

    def _connect(self) -> smtplib.SMTP:
        """Open and log in one connection; raise ChannelUnavailableError with one line if not."""
        server = self.server
        try:
            if server.security == "tls":
                conn: smtplib.SMTP = smtplib.SMTP_SSL(
                    server.host,
                    server.port,
                    timeout=self.timeout,
                    context=ssl.create_default_context(),
                )
            else:
                conn = smtplib.SMTP(server.host, server.port, timeout=self.timeout)
            conn.ehlo()
            if server.security == "starttls":
                conn.starttls(context=ssl.create_default_context())
                conn.ehlo()
        except ssl.SSLCertVerificationError as exc:
            raise ChannelUnavailableError(
                f"email: the SMTP server {server}'s certificate is not trusted ({one_line(exc.verify_message, 80)}); "
                "it needs a certificate from a trusted authority for that host name"
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise ChannelUnavailableError(
                f"email: cannot connect to the SMTP server {server} ({one_line(exc, 120)}); "
                "check KEQUN_EMAIL_URL and that the server is up"
            ) from None
        if server.user:
            try:
                conn.login(server.user, server.password)
            except smtplib.SMTPException as exc:
                _quietly_close(conn)
                detail = _smtp_error(exc)
                raise ChannelUnavailableError(
                    f"email: the SMTP server {server} refused the login of {server.user!r} ({detail}); "
                    "check the user and password in KEQUN_EMAIL_URL"
                ) from None
            except OSError as exc:
                _quietly_close(conn)
                raise ChannelUnavailableError(
                    f"email: the SMTP server {server} hung up during the login ({one_line(exc, 120)})"
                ) from None
        return conn

    def close(self) -> None:
        """Say QUIT on every open connection and stop the threads."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor:
            executor.shutdown(wait=True)
        conns = []
        while True:
            try:
                conns.append(self._idle.get_nowait())
            except queue.Empty:
                break
        for conn in conns:
            if conn is not None:
                _quietly_close(conn)
            self._idle.put(None)

    def __enter__(self) -> EmailChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ messages

    def build_message(self, message: OutgoingMessage) -> bytes:
        """Return the wire form of one message (CRLF lines, DKIM-signed when configured)."""
        if message.html_ready:  # prepared once per campaign (kequn.engage.mailmerge)
            html, text = message.html, message.text
        elif message.html and not _HTML_TAG.search(message.html):
            # A body written as plain text goes as plain text, line breaks and all.
            html, text = "", message.text or message.html
        else:
            html = prepare_html(message.html) if message.html else ""
            text = message.text or (html_to_text(html) if html else "")
        boundary = f"=_kequn_{message.key}_{time.monotonic_ns()}"
        headers = [
            f"From: {self.sender_header}",
            f"To: {message.to}",
            f"Subject: {_encode_header(message.subject)}",
            f"Date: {_date_header(int(time.time()))}",
            f"Message-ID: <{message.key}@{self.domain}>",
            "MIME-Version: 1.0",
        ]
        if message.unsubscribe_url:
            headers.append(f"List-Unsubscribe: <{message.unsubscribe_url}>")
            headers.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
        for name, value in message.headers.items():
            if name.lower() in RESERVED_HEADERS or not re.fullmatch(r"[A-Za-z0-9-]+", name):
                continue
            headers.append(f"{name}: {_encode_header(value)}")
        if html:
            headers.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
            parts = [
                "\r\n".join(headers).encode("ascii"),
                b"\r\n\r\nThis is a multipart message in MIME format.\r\n",
                f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: base64\r\n\r\n".encode(),
                _encode_body(text),
                f"--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n"
                "Content-Transfer-Encoding: base64\r\n\r\n".encode(),
                _encode_body(html),
                f"--{boundary}--\r\n".encode(),
            ]
        else:
            headers.append("Content-Type: text/plain; charset=utf-8")
            headers.append("Content-Transfer-Encoding: base64")
            parts = ["\r\n".join(headers).encode("ascii"), b"\r\n\r\n", _encode_body(text)]
        data = b"".join(parts)
        if self.dkim_key:
            data = self._sign(data)
        return data

    def _sign(self, data: bytes) -> bytes:
        if self.dkim_key is None:
            return data
        return self.dkim_key.sign(data, SIGNED_HEADERS) + data

    def send_batch(
        self,
        messages: Sequence[OutgoingMessage],
        *,
        on_result: Callable[[int, SendResult], None] | None = None,
    ) -> list[SendResult]:
        """Send the messages over the pool; one result per message, in order.

        ``on_result(index, result)`` is called from the connection's thread as soon as the
        server answered a message, before that connection starts the next one: a caller that
        records the outcome there leaves at most one accepted, unrecorded message per
        connection when the process dies. Raises ChannelUnavailableError only when nothing
        could be sent at all (server down, login refused): then every message may be retried
        later without duplicates.
        """
        if not messages:
            return []
        results: list[SendResult | None] = [None] * len(messages)
        counter = itertools.count()
        workers = min(self.connections, len(messages))
        outages: list[ChannelUnavailableError] = []

        def work() -> None:
            conn = self._idle.get()
            try:
                while True:
                    i = next(counter)
                    if i >= len(messages):
                        return
                    conn, result = self._send_one(conn, messages[i])
                    results[i] = result
                    if on_result is not None:
                        on_result(i, result)
                    if conn is None and result.status == "retry":
                        return  # the server keeps hanging up: leave the rest for later
            except ChannelUnavailableError as exc:
                outages.append(exc)
            finally:
                self._idle.put(conn)

        if workers == 1:
            work()
        else:
            with self._lock:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(
                        self.connections, thread_name_prefix="kequn-smtp"
                    )
                executor = self._executor
            for future in [executor.submit(work) for _ in range(workers)]:
                future.result()
        if outages and all(r is None for r in results):
            raise outages[0]
        reason = (
            one_line(outages[0]) if outages else "email: the SMTP server went away; retry later"
        )
        return [
            r or SendResult(key=m.key, status="retry", error=reason)
            for r, m in zip(results, messages, strict=True)
        ]

    def _transact(self, conn: smtplib.SMTP, to: str, data: bytes) -> None:
        """Send one mail transaction; raise smtplib's errors as sendmail does.

        With a server that offers PIPELINING (RFC 2920; Postfix, Exim and the big providers
        do), MAIL, RCPT and DATA go in one write and their answers are read together: two
        round trips a message instead of four, which is what bounds a remote server.
        """
        if not conn.has_extn("pipelining"):
            conn.sendmail(self.sender_address, [to], data)
            return
        conn.send(
            f"MAIL FROM:<{self.sender_address}>\r\nRCPT TO:<{to}>\r\nDATA\r\n".encode("ascii")
        )
        mail, rcpt, start = conn.getreply(), conn.getreply(), conn.getreply()
        if mail[0] != 250 or rcpt[0] not in (250, 251) or start[0] != 354:
            if start[0] == 354:  # accepted DATA anyway: end it empty, then reset
                conn.send(b".\r\n")
                conn.getreply()
            if 421 in (mail[0], rcpt[0], start[0]):
                conn.close()
            else:
                _quietly_reset(conn)
            if mail[0] != 250:
                raise smtplib.SMTPSenderRefused(mail[0], mail[1], self.sender_address)
            if rcpt[0] not in (250, 251):
                raise smtplib.SMTPRecipientsRefused({to: rcpt})
            raise smtplib.SMTPDataError(*start)
        body = _LEADING_DOT.sub(b"..", data)
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        conn.send(body + b".\r\n")
        code, answer = conn.getreply()
        if code != 250:
            if code == 421:
                conn.close()
            else:
                _quietly_reset(conn)
            raise smtplib.SMTPDataError(code, answer)

    def _send_one(
        self, conn: smtplib.SMTP | None, message: OutgoingMessage
    ) -> tuple[smtplib.SMTP | None, SendResult]:
        """Send one message, reconnecting once if the connection was dropped."""
        key = message.key
        to = message.to.strip()
        if not _is_valid_address(to):
            return conn, SendResult(
                key=key, status="failed", error="email: not a valid email address", hard_bounce=True
            )
        try:
            data = self.build_message(message)
        except Exception as exc:  # one bad message must not stop the batch
            return conn, SendResult(
                key=key,
                status="failed",
                error=f"email: cannot build the message ({one_line(exc, 120)})",
            )
        self.limiter.wait()
        for attempt in (1, 2):
            if conn is None:
                # A server that does not take us back raises ChannelUnavailableError to the
                # worker, which stops; this message is then reported "retry".
                conn = self._connect()
            try:
                self._transact(conn, to, data)
            except smtplib.SMTPRecipientsRefused as exc:
                code, answer = exc.recipients.get(to, (550, b""))
                return conn, _refused(key, code, answer, "recipient")
            except smtplib.SMTPSenderRefused as exc:
                _quietly_reset(conn)
                if 400 <= exc.smtp_code < 500:
                    return conn, SendResult(
                        key=key, status="retry", error=f"email: sender deferred: {_smtp_error(exc)}"
                    )
                return conn, SendResult(
                    key=key,
                    status="failed",
                    error=f"email: the server refused the sender {self.sender_address} ({_smtp_error(exc)}); check KEQUN_EMAIL_FROM",
                )
            except smtplib.SMTPDataError as exc:
                _quietly_reset(conn)
                return conn, _refused(key, exc.smtp_code, exc.smtp_error, "message")
            except smtplib.SMTPResponseException as exc:
                _quietly_close(conn)
                conn = None
                if exc.smtp_code == 421 and attempt == 1:
                    continue
                return None, SendResult(key=key, status="retry", error=f"email: {_smtp_error(exc)}")
            except (
                OSError
            ):  # SMTPServerDisconnected, resets, timeouts (SMTPException is an OSError)
                _quietly_close(conn)
                conn = None
                continue
            return conn, SendResult(key=key, status="sent", provider_id=f"<{key}@{self.domain}>")
        return conn, SendResult(
            key=key, status="retry", error="email: the SMTP server went away; retry later"
        )


def _refused(key: str, code: int, answer: bytes | str, what: str) -> SendResult:
    text = answer.decode("utf-8", "replace") if isinstance(answer, bytes) else str(answer)
    error = f"email: {what} refused: {code} {one_line(text, 200)}"
    if 400 <= code < 500:
        return SendResult(key=key, status="retry", error=error)
    # A permanent refusal at RCPT or DATA is a hard bounce: the address is suppressed.
    return SendResult(key=key, status="failed", error=error, hard_bounce=True)


def _smtp_error(exc: BaseException) -> str:
    code = getattr(exc, "smtp_code", None)
    answer = getattr(exc, "smtp_error", b"")
    if isinstance(answer, bytes):
        answer = answer.decode("utf-8", "replace")
    return one_line(f"{code} {answer}" if code else str(exc), 200)


def _quietly_reset(conn: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError, smtplib.SMTPException):
        conn.rset()


def _quietly_close(conn: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError, smtplib.SMTPException):
        conn.quit()
    with contextlib.suppress(OSError):
        conn.close()


def load_dkim_key(path: str, selector: str, domain: str) -> DKIMSigner:
    """Return the DKIM signer of the key in ``path``; raise ChannelNotConfiguredError naming the setting."""
    if not selector:
        raise ChannelNotConfiguredError(
            "KEQUN_DKIM_KEY_FILE is set: set KEQUN_DKIM_SELECTOR too (the DNS selector)"
        )
    try:
        pem = Path(path).read_bytes()
    except OSError as exc:
        raise ChannelNotConfiguredError(
            f"KEQUN_DKIM_KEY_FILE {path}: cannot read it ({exc.strerror or exc})"
        ) from None
    try:
        return DKIMSigner.from_pem(pem, selector=selector, domain=domain)
    except (ValueError, TypeError) as exc:
        raise ChannelNotConfiguredError(
            f"KEQUN_DKIM_KEY_FILE {path}: not an unencrypted PEM RSA private key ({one_line(exc, 80)})"
        ) from None


def build_email_channel() -> EmailChannel:
    """Return the email channel from KEQUN_EMAIL_URL, KEQUN_EMAIL_FROM and friends."""
    if not settings.KEQUN_EMAIL_URL:
        raise ChannelNotConfiguredError(
            "email is not configured: set KEQUN_EMAIL_URL=smtp://user:password@host:587 and KEQUN_EMAIL_FROM"
        )
    if not settings.KEQUN_EMAIL_FROM:
        raise ChannelNotConfiguredError(
            "email is not configured: set KEQUN_EMAIL_FROM (the sender address)"
        )
    server = parse_email_url(settings.KEQUN_EMAIL_URL)
    sender = settings.KEQUN_EMAIL_FROM
    key = None
    if settings.KEQUN_DKIM_KEY_FILE:
        domain = email.utils.parseaddr(sender)[1].rpartition("@")[2]
        key = load_dkim_key(settings.KEQUN_DKIM_KEY_FILE, settings.KEQUN_DKIM_SELECTOR, domain)
    return EmailChannel(
        server,
        sender=sender,
        rate_per_second=float(settings.KEQUN_EMAIL_RATE),
        connections=int(settings.KEQUN_EMAIL_CONNECTIONS),
        dkim_key=key,
    )
