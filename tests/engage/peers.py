"""Local peers the engagement tests talk to: a real SMTP server and HTTP servers that answer
like the SMS, WeChat and webhook providers, including their error answers.

Every peer listens on 127.0.0.1 on an ephemeral port, records what it received, and is a
context manager (or a pytest fixture below). Failure modes are plain attributes a test sets:

    with SMTPSink(users={"u": "p"}) as smtp:
        smtp.rcpt_answers["gone@example.com"] = "550 5.1.1 No such user"
        ... settings.KEQUN_EMAIL_URL = smtp.url ...
        assert len(smtp.messages) == 3

Used by tests/engage (channels, campaigns) and tests/journeys.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import email
import email.policy
import hashlib
import hmac
import ipaddress
import itertools
import json
import socket
import ssl
import threading
import urllib.parse
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

# Made-up credentials the peers accept.
SMS_TOKEN = "sms-token"
ALIYUN_SECRET = "test-secret"
WECHAT_SECRET = "wx-test-secret"
WEBHOOK_SECRET = "hook-secret"

# --------------------------------------------------------------------------- SMTP


@dataclass
class ReceivedMail:
    """One message the SMTP sink accepted."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        """Return the parsed message."""
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]


class _SinkHandler:
    def __init__(self, sink: SMTPSink) -> None:
        self.sink = sink

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802 -- aiosmtpd hook name
        session.host_name = hostname
        if self.sink.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 -- aiosmtpd hook name
        answer = self.sink.rcpt_answers.get(address.lower())
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 -- aiosmtpd hook name
        sink = self.sink
        if sink.data_answer:
            return sink.data_answer
        with sink.lock:
            sink.count += 1
            n = sink.count
            if sink.keep_messages:
                sink.messages.append(
                    ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
                )
        if sink.drop_every and n % sink.drop_every == 0:
            # Accept this one, then hang up as a server restarting or timing out would.
            asyncio.get_running_loop().call_soon(server.transport.close)
        return f"250 2.0.0 Ok: queued as {n}"


class _EphemeralController(Controller):
    """An aiosmtpd controller that listens on a port the system picks."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()

    def factory(self):
        with warnings.catch_warnings():
            # AUTH without TLS is what the tests want: the peer is on 127.0.0.1.
            warnings.simplefilter("ignore", UserWarning)
            return super().factory()


class SMTPSink:
    """An aiosmtpd server in a thread that keeps (or only counts) what it is sent.

    users: require AUTH (PLAIN/LOGIN over the plain connection) with these names/passwords.
    rcpt_answers: address -> SMTP answer at RCPT ("550 5.1.1 ...", "452 4.2.2 ...").
    data_answer: an answer for every DATA (e.g. "451 4.3.0 Try later").
    drop_every: hang up the connection after every Nth accepted message.
    keep_messages: False to count only (benchmarks).
    pipelining: offer PIPELINING (RFC 2920) in the EHLO answer.
    tls: "starttls" (required before MAIL) or "implicit" (TLS from the first byte, smtps),
    with the certificate and key files in cert (see make_certificate).
    """

    def __init__(
        self,
        *,
        users: dict[str, str] | None = None,
        keep_messages: bool = True,
        drop_every: int = 0,
        tls: str = "",
        cert: tuple[str, str] | None = None,
        pipelining: bool = False,
    ) -> None:
        self.users = users
        self.pipelining = pipelining
        self.keep_messages = keep_messages
        self.drop_every = drop_every
        self.rcpt_answers: dict[str, str] = {}
        self.data_answer = ""
        self.messages: list[ReceivedMail] = []
        self.count = 0
        self.lock = threading.Lock()
        self.auth_failures = 0
        kwargs: dict[str, Any] = {}
        if users is not None:
            kwargs = {
                "authenticator": self._authenticate,
                "auth_require_tls": False,
                "auth_required": True,
            }
        if tls:
            assert cert, "tls needs cert=(certfile, keyfile)"
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*cert)
            if tls == "starttls":
                kwargs.update(tls_context=context, require_starttls=True)
            else:
                kwargs.update(ssl_context=context)
        self.controller = _EphemeralController(
            _SinkHandler(self), hostname="127.0.0.1", port=0, **kwargs
        )

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        if (
            isinstance(auth_data, LoginPassword)
            and self.users is not None
            and self.users.get(auth_data.login.decode()) == auth_data.password.decode()
        ):
            return AuthResult(success=True)
        self.auth_failures += 1
        return AuthResult(success=False, handled=False)

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def url(self, user: str = "", password: str = "", scheme: str = "smtp") -> str:
        """Return a KEQUN_EMAIL_URL pointing here."""
        cred = ""
        if user:
            cred = f"{urllib.parse.quote(user, safe='')}:{urllib.parse.quote(password, safe='')}@"
        return f"{scheme}://{cred}127.0.0.1:{self.port}"

    def start(self) -> SMTPSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def __enter__(self) -> SMTPSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def recipients(self) -> list[str]:
        """Return every accepted recipient, one entry per accepted message and address."""
        with self.lock:
            return [to for m in self.messages for to in m.rcpt_tos]


def make_certificate(directory: Path) -> tuple[str, str]:
    """Write a self-signed certificate for 127.0.0.1 and its key; return their paths."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


def closed_port() -> int:
    """Return a port on 127.0.0.1 where nothing listens (a server that is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- HTTP


@dataclass
class ReceivedRequest:
    """One HTTP request a provider peer received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    @property
    def form(self) -> dict[str, str]:
        """Return the query and the form body merged (the RPC APIs accept either)."""
        merged = dict(self.query)
        if self.body and "json" not in self.headers.get("content-type", ""):
            merged.update(dict(urllib.parse.parse_qsl(self.body.decode(), keep_blank_values=True)))
        return merged


Answer = tuple[int, Any]  # HTTP status and a JSON-serialisable body (or bytes)


class HTTPPeer:
    """A threaded HTTP server on an ephemeral port; subclasses answer in ``answer``."""

    def __init__(self) -> None:
        self.requests: list[ReceivedRequest] = []
        self.lock = threading.Lock()
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                parsed = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = ReceivedRequest(
                    self.command,
                    parsed.path,
                    dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                with peer.lock:
                    peer.requests.append(request)
                status, payload = peer.answer(request)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve  # noqa: N815 -- http.server hook names

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, request: ReceivedRequest) -> Answer:
        raise NotImplementedError

    def start(self) -> HTTPPeer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class GenericSMSServer(HTTPPeer):
    """A JSON SMS API: POST {to, text, template_code, params, id} with a bearer token.

    Answers 200 {"id": ...}; number_answers maps a phone to (status, body) such as
    (400, {"error": "invalid number"}) or (429, {"error": "slow down"}).
    """

    def __init__(self, token: str = SMS_TOKEN) -> None:
        super().__init__()
        self.token = token
        self.number_answers: dict[str, Answer] = {}
        self.ids = itertools.count(1)

    def answer(self, request: ReceivedRequest) -> Answer:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return 401, {"error": "invalid token"}
        to = request.json().get("to", "")
        if to in self.number_answers:
            return self.number_answers[to]
        return 200, {"id": f"sms-{next(self.ids)}"}


def aliyun_signature(params: dict[str, str], secret: str, method: str = "POST") -> str:
    """Return the Alibaba Cloud RPC signature (HMAC-SHA1 over the sorted, encoded parameters)."""

    def enc(value: str) -> str:
        return urllib.parse.quote(value, safe="~")

    canonical = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(params.items()))
    to_sign = f"{method}&{enc('/')}&{enc(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class AliyunSMSServer(HTTPPeer):
    """Answers like dysmsapi SendSms: checks the key, the signature and the parameters.

    number_codes maps a phone to an error Code (isv.MOBILE_NUMBER_ILLEGAL,
    isv.BUSINESS_LIMIT_CONTROL, ...); sent holds the accepted parameter sets.
    """

    def __init__(self, key_id: str = "test-key-id", secret: str = ALIYUN_SECRET) -> None:
        super().__init__()
        self.key_id = key_id
        self.secret = secret
        self.number_codes: dict[str, str] = {}
        self.sent: list[dict[str, str]] = []
        self.ids = itertools.count(100)

    def answer(self, request: ReceivedRequest) -> Answer:
        params = request.form
        signature = params.pop("Signature", "")
        base = {"RequestId": f"req-{next(self.ids)}"}
        if params.get("AccessKeyId") != self.key_id:
            return 404, {
                **base,
                "Code": "InvalidAccessKeyId.NotFound",
                "Message": "Specified access key is not found.",
            }
        if signature != aliyun_signature(params, self.secret, request.method):
            return 400, {
                **base,
                "Code": "SignatureDoesNotMatch",
                "Message": "Specified signature is not matched with our calculation.",
            }
        missing = [
            k
            for k in (
                "Action",
                "PhoneNumbers",
                "SignName",
                "TemplateCode",
                "SignatureNonce",
                "Timestamp",
                "Version",
            )
            if not params.get(k)
        ]
        if missing or params["Action"] != "SendSms":
            return 400, {**base, "Code": "MissingParameter", "Message": f"missing {missing}"}
        code = self.number_codes.get(params["PhoneNumbers"])
        if code:
            return 200, {**base, "Code": code, "Message": code.split(".")[-1].lower()}
        try:
            json.loads(params.get("TemplateParam") or "{}")
        except ValueError:
            return 200, {**base, "Code": "isv.INVALID_JSON_PARAM", "Message": "JSON参数不合法"}
        self.sent.append(params)
        return 200, {**base, "Code": "OK", "Message": "OK", "BizId": f"biz-{len(self.sent)}"}


class WeChatServer(HTTPPeer):
    """Answers like the WeChat Official Account API (token, template and subscribe messages).

    tokens_issued counts /cgi-bin/token calls; expire_token() makes the current token answer
    42001 once. openid_errcodes maps an openid to an errcode (43004 not subscribed, ...);
    subscriptions maps an openid to the subscribe-message consents left (one consent, one send).
    """

    def __init__(self, app_id: str = "wx-test-app", app_secret: str = WECHAT_SECRET) -> None:
        super().__init__()
        self.app_id = app_id
        self.app_secret = app_secret
        self.openid_errcodes: dict[str, int] = {}
        self.subscriptions: dict[str, int] = {}
        self.tokens_issued = 0
        self.token = ""
        self.sent: list[dict[str, Any]] = []
        self.msgids = itertools.count(1000)

    def expire_token(self) -> None:
        """Make the token handed out last invalid, as WeChat does after two hours."""
        self.token = "expired"

    def answer(self, request: ReceivedRequest) -> Answer:
        if request.path == "/cgi-bin/token":
            q = request.query
            if q.get("appid") != self.app_id or q.get("secret") != self.app_secret:
                return 200, {"errcode": 40125, "errmsg": "invalid appsecret"}
            self.tokens_issued += 1
            self.token = f"token-{self.tokens_issued}"
            return 200, {"access_token": self.token, "expires_in": 7200}
        token = request.query.get("access_token", "")
        if not self.token or token != self.token:
            code = 42001 if self.token == "expired" else 40001
            return 200, {
                "errcode": code,
                "errmsg": "access_token expired" if code == 42001 else "invalid credential",
            }
        body = request.json()
        openid = body.get("touser", "")
        if openid in self.openid_errcodes:
            code = self.openid_errcodes[openid]
            return 200, {"errcode": code, "errmsg": f"error {code}"}
        if request.path == "/cgi-bin/message/subscribe/bizsend":
            left = self.subscriptions.get(openid, 0)
            if left <= 0:
                return 200, {"errcode": 43101, "errmsg": "user refuse to accept the msg"}
            self.subscriptions[openid] = left - 1
        elif request.path != "/cgi-bin/message/template/send":
            return 404, b"not found"
        self.sent.append({"path": request.path, **body})
        return 200, {"errcode": 0, "errmsg": "ok", "msgid": next(self.msgids)}


class WebhookReceiver(HTTPPeer):
    """A webhook endpoint that checks the signature and answers the statuses it is given.

    statuses: answers used in turn (then 200), e.g. [500, 500] makes the first two fail.
    """

    def __init__(self, secret: str = WEBHOOK_SECRET, statuses: list[int] | None = None) -> None:
        super().__init__()
        self.secret = secret
        self.statuses = list(statuses or [])
        self.verified: list[Any] = []

    def is_signed(self, request: ReceivedRequest) -> bool:
        """Return whether the request carries a valid X-Kequn-Signature."""
        stamp = request.headers.get("x-kequn-timestamp", "")
        expected = hmac.new(
            self.secret.encode(), stamp.encode() + b"." + request.body, hashlib.sha256
        ).hexdigest()
        return hmac.compare_digest(
            request.headers.get("x-kequn-signature", ""), f"sha256={expected}"
        )

    def answer(self, request: ReceivedRequest) -> Answer:
        if not self.is_signed(request):
            return 401, {"error": "bad signature"}
        with self.lock:
            status = self.statuses.pop(0) if self.statuses else 200
        if status < 300:
            self.verified.append(request.json())
        return status, {"status": status}


# --------------------------------------------------------------------------- fixtures


def _serve(peer: Any) -> Iterator[Any]:
    peer.start()
    try:
        yield peer
    finally:
        peer.stop()


@pytest.fixture
def smtp_sink() -> Iterator[SMTPSink]:
    """An SMTP server without authentication that keeps every message."""
    yield from _serve(SMTPSink())


@pytest.fixture
def email_settings(settings, smtp_sink) -> SMTPSink:
    """Point the email channel at smtp_sink (one connection, no rate limit); return the sink."""
    settings.KEQUN_EMAIL_URL = smtp_sink.url()
    settings.KEQUN_EMAIL_FROM = "Kequn Shop <news@shop.example>"
    settings.KEQUN_EMAIL_CONNECTIONS = 1
    settings.KEQUN_EMAIL_RATE = 0
    settings.KEQUN_DKIM_KEY_FILE = ""
    return smtp_sink


@pytest.fixture
def sms_server(settings) -> Iterator[GenericSMSServer]:
    """A generic SMS API the SMS channel is pointed at."""
    for peer in _serve(GenericSMSServer()):
        settings.KEQUN_SMS_URL = f"{peer.url}/send"
        settings.KEQUN_SMS_TOKEN = peer.token
        settings.KEQUN_SMS_RATE = 0
        yield peer


@pytest.fixture
def wechat_server(settings) -> Iterator[WeChatServer]:
    """A WeChat API the WeChat channel is pointed at."""
    for peer in _serve(WeChatServer()):
        settings.KEQUN_WECHAT_API_URL = peer.url
        settings.KEQUN_WECHAT_APP_ID = peer.app_id
        settings.KEQUN_WECHAT_APP_SECRET = peer.app_secret
        settings.KEQUN_WECHAT_RATE = 0
        yield peer


@pytest.fixture
def webhook_receiver(settings) -> Iterator[WebhookReceiver]:
    """A webhook endpoint sharing the channel's secret; send to webhook_receiver.url."""
    for peer in _serve(WebhookReceiver()):
        settings.KEQUN_WEBHOOK_SECRET = peer.secret
        settings.KEQUN_WEBHOOK_RATE = 0
        yield peer
