"""Email over real SMTP (an aiosmtpd server on an ephemeral port): the message, the pool, errors."""

from __future__ import annotations

import base64
import email.header
import os
import smtplib
import ssl
import subprocess
import sys
import time

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kequn.engage.channels import (
    ChannelNotConfiguredError,
    ChannelUnavailableError,
    OutgoingMessage,
    get_channel,
)
from kequn.engage.channels import email as email_channel
from kequn.engage.channels.email import EmailChannel, parse_email_url
from tests.engage.peers import SMTPSink, closed_port, make_certificate

HTML = """<html><head><style>.btn { color: #ffffff; background-color: #e4393c }</style></head>
<body><h1>你好，张三</h1>
<p onclick="steal()">专属优惠：<a class="btn" href="https://shop.example/c/1">立即领取</a></p>
<script>alert("x")</script><img src="javascript:alert(1)">
<table width="600"><tr><td style="position: fixed; color: #333">¥3,999</td></tr></table>
</body></html>"""


@pytest.fixture(params=[False, True], ids=["lockstep", "pipelining"])
def sink(request):
    with SMTPSink(pipelining=request.param) as server:
        yield server


@pytest.fixture
def configure(settings):
    """Return configure(url, **overrides): point the email settings at a server."""

    def apply(url: str, **overrides):
        settings.KEQUN_EMAIL_URL = url
        settings.KEQUN_EMAIL_FROM = "客群商城 <news@shop.example>"
        settings.KEQUN_EMAIL_CONNECTIONS = 1
        settings.KEQUN_EMAIL_RATE = 0
        settings.KEQUN_DKIM_KEY_FILE = ""
        settings.KEQUN_DKIM_SELECTOR = ""
        for name, value in overrides.items():
            setattr(settings, f"KEQUN_{name.upper()}", value)
        return get_channel("email")

    return apply


def marketing(key: str, to: str, **fields) -> OutgoingMessage:
    return OutgoingMessage(
        key=key,
        to=to,
        subject="张三，您的专属优惠",
        html=HTML,
        unsubscribe_url=f"https://shop.example/u/{key}",
        **fields,
    )


def test_marketing_email_has_text_html_one_click_unsubscribe_and_safe_inlined_html(sink, configure):
    channel = configure(sink.url())
    [result] = channel.send_batch([marketing("m-1", "zhang@example.com")])
    channel.close()
    assert result.status == "sent" and result.provider_id == "<m-1@shop.example>"
    [mail] = sink.messages
    assert mail.mail_from == "news@shop.example" and mail.rcpt_tos == ["zhang@example.com"]
    msg = mail.message
    assert msg["Message-ID"] == "<m-1@shop.example>"
    assert msg["List-Unsubscribe"] == "<https://shop.example/u/m-1>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert (
        str(email.header.make_header(email.header.decode_header(msg["Subject"])))
        == "张三，您的专属优惠"
    )
    assert "客群商城" in str(msg["From"]) and "news@shop.example" in str(msg["From"])
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "专属优惠：立即领取 (https://shop.example/c/1)" in text and "<" not in text
    # CSS moved into the element; scripts, handlers, javascript: URLs and fixed positions gone.
    assert (
        'style="color: #ffffff;background-color: #e4393c"' in html
        or "color:#ffffff" in html.replace(" ", "")
    )
    assert "<style" not in html and "<script" not in html and "alert" not in html
    assert "onclick" not in html and "javascript:" not in html and "position" not in html
    assert "color:#333" in html.replace(" ", "")


def test_transactional_email_has_no_unsubscribe_headers_and_custom_headers_are_single_lines(
    sink, configure
):
    channel = configure(sink.url())
    message = OutgoingMessage(
        key="t-1",
        to="li@example.com",
        subject="Order shipped",
        text="Your order is on its way.",
        headers={"X-Campaign": "c1\r\nBcc: victim@example.com", "Message-ID": "<forged@x>"},
    )
    assert channel.send_batch([message])[0].status == "sent"
    msg = sink.messages[0].message
    assert "List-Unsubscribe" not in msg and "Bcc" not in msg
    assert msg["X-Campaign"] == "c1 Bcc: victim@example.com"
    assert msg["Message-ID"] == "<t-1@shop.example>"
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content().strip() == "Your order is on its way."


def test_login_with_the_right_password_sends_and_a_wrong_one_is_one_clear_line(configure):
    with SMTPSink(users={"mailer": "p@ss:word"}) as server:
        channel = configure(server.url("mailer", "p@ss:word"))
        assert channel.send_batch([marketing("a-1", "a@example.com")])[0].status == "sent"
        channel.close()
        channel = configure(server.url("mailer", "wrong-secret"))
        with pytest.raises(ChannelUnavailableError) as caught:
            channel.send_batch([marketing("a-2", "b@example.com")])
        assert server.count == 1
    message = str(caught.value)
    assert "refused the login of 'mailer'" in message and "KEQUN_EMAIL_URL" in message
    assert "wrong-secret" not in message and "\n" not in message


def test_server_down_raises_unavailable_before_anything_is_sent(configure):
    channel = configure(f"smtp://127.0.0.1:{closed_port()}")
    with pytest.raises(
        ChannelUnavailableError, match=r"cannot connect to the SMTP server 127\.0\.0\.1"
    ):
        channel.send_batch([marketing("d-1", "a@example.com")])


def test_permanent_refusals_are_hard_bounces_and_temporary_ones_retry(sink, configure):
    sink.rcpt_answers["gone@example.com"] = "550 5.1.1 <gone@example.com>: No such user"
    sink.rcpt_answers["full@example.com"] = "452 4.2.2 Mailbox full"
    channel = configure(sink.url())
    results = channel.send_batch(
        [
            marketing("r-1", "ok1@example.com"),
            marketing("r-2", "gone@example.com"),
            marketing("r-3", "full@example.com"),
            marketing("r-4", "not-an-address"),
            marketing("r-5", "ok2@example.com"),
        ]
    )
    assert [(r.key, r.status, r.hard_bounce) for r in results] == [
        ("r-1", "sent", False),
        ("r-2", "failed", True),
        ("r-3", "retry", False),
        ("r-4", "failed", True),
        ("r-5", "sent", False),
    ]
    # The server's answer is kept, without the address it quoted.
    assert results[1].error == "email: recipient refused: 550 5.1.1 <<address>>: No such user"
    assert sink.recipients() == ["ok1@example.com", "ok2@example.com"]


def test_answers_at_data_time(sink, configure):
    channel = configure(sink.url())
    sink.data_answer = "451 4.3.0 Try again later"
    assert channel.send_batch([marketing("x-1", "a@example.com")])[0].status == "retry"
    sink.data_answer = "554 5.7.1 Message rejected"
    [result] = channel.send_batch([marketing("x-2", "a@example.com")])
    assert (result.status, result.hard_bounce) == ("failed", True)
    sink.data_answer = ""
    assert channel.send_batch([marketing("x-3", "a@example.com")])[0].status == "sent"
    assert sink.count == 1


@pytest.mark.parametrize("pipelining", [False, True])
def test_pool_sends_each_message_exactly_once_and_reconnects_when_the_server_hangs_up(
    configure, pipelining
):
    with SMTPSink(drop_every=4, pipelining=pipelining) as server:
        channel = configure(server.url(), email_connections=3)
        messages = [marketing(f"p-{i}", f"c{i}@example.com") for i in range(40)]
        results = channel.send_batch(messages)
        channel.close()
    assert [r.key for r in results] == [m.key for m in messages]
    assert {r.status for r in results} == {"sent"}
    assert sorted(server.recipients()) == sorted(m.to for m in messages)
    message_ids = [mail.message["Message-ID"] for mail in server.messages]
    assert len(set(message_ids)) == 40


def test_rate_limit_paces_the_batch(sink, configure):
    channel = configure(sink.url(), email_rate=40, email_connections=2)
    started = time.monotonic()
    results = channel.send_batch([marketing(f"s-{i}", f"c{i}@example.com") for i in range(9)])
    elapsed = time.monotonic() - started
    channel.close()
    assert all(r.status == "sent" for r in results)
    assert elapsed >= 8 / 40 * 0.95  # nine messages at 40/s span eight intervals


def test_dkim_signature_verifies_against_the_public_key(sink, configure, tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    (tmp_path / "dkim.pem").write_bytes(pem)
    public = base64.b64encode(
        key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    channel = configure(sink.url(), dkim_key_file=str(tmp_path / "dkim.pem"), dkim_selector="k1")
    assert channel.send_batch([marketing("k-1", "a@example.com")])[0].status == "sent"
    data = sink.messages[0].data

    def dns(name, timeout=5):
        assert name == b"k1._domainkey.shop.example."
        return b"v=DKIM1; k=rsa; p=" + public

    assert data.startswith(b"DKIM-Signature:")
    assert dkim.verify(data, dnsfunc=dns)
    assert not dkim.verify(
        data.replace(b"Subject: =?utf-8?b?", b"Subject: =?UTF-8?B?"), dnsfunc=dns
    )
    tampered = data.replace(b"List-Unsubscribe: <https", b"List-Unsubscribe: <http")
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_settings_errors_name_the_setting(configure, tmp_path):
    with pytest.raises(ChannelNotConfiguredError, match="set KEQUN_EMAIL_URL"):
        configure("")
    with pytest.raises(ChannelNotConfiguredError, match="KEQUN_EMAIL_URL must look like smtp://"):
        configure("http://mail.example")
    with pytest.raises(ChannelNotConfiguredError, match="KEQUN_EMAIL_FROM"):
        configure("smtp://mail.example", email_from="nobody")
    with pytest.raises(ChannelNotConfiguredError, match=r"KEQUN_DKIM_KEY_FILE .*cannot read it"):
        configure(
            "smtp://mail.example", dkim_key_file=str(tmp_path / "none.pem"), dkim_selector="s"
        )
    (tmp_path / "bad.pem").write_text(
        "-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----\n"
    )
    with pytest.raises(ChannelNotConfiguredError, match="not an unencrypted PEM RSA private key"):
        configure("smtp://mail.example", dkim_key_file=str(tmp_path / "bad.pem"), dkim_selector="s")
    with pytest.raises(ChannelNotConfiguredError, match="KEQUN_DKIM_SELECTOR"):
        configure("smtp://mail.example", dkim_key_file=str(tmp_path / "none.pem"))


def test_url_schemes_pick_the_security_and_default_port():
    assert parse_email_url("smtps://u:p%40x@mail.example").port == 465
    server = parse_email_url("smtp+starttls://u%40corp:p%40x@mail.example")
    assert (server.security, server.port, server.user, server.password) == (
        "starttls",
        587,
        "u@corp",
        "p@x",
    )
    assert parse_email_url("smtp://relay:2525").security == "plain"


def test_a_channel_is_reusable_across_batches_on_the_same_connection(sink, configure):
    channel = configure(sink.url())
    assert isinstance(channel, EmailChannel)
    for i in range(3):
        assert channel.send_batch([marketing(f"b-{i}", "a@example.com")])[0].status == "sent"
    channel.close()
    assert sink.count == 3


def test_a_body_without_html_tags_goes_as_plain_text(sink, configure):
    channel = configure(sink.url())
    body = "张三，您好：\n\n您的订单已发货。\n客群商城"
    message = OutgoingMessage(key="p-1", to="a@example.com", subject="发货通知", html=body)
    assert channel.send_batch([message])[0].status == "sent"
    msg = sink.messages[0].message
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content().replace("\r\n", "\n").strip() == body


@pytest.mark.parametrize(("scheme", "tls"), [("smtp+starttls", "starttls"), ("smtps", "implicit")])
def test_tls_connections_verify_the_certificate(configure, tmp_path, monkeypatch, scheme, tls):
    cert = make_certificate(tmp_path)
    with SMTPSink(tls=tls, cert=cert, users={"mailer": "secret"}) as server:
        # Not trusted by the system: refused with one line, nothing sent.
        channel = configure(server.url("mailer", "secret", scheme=scheme))
        with pytest.raises(ChannelUnavailableError, match=r"certificate is not trusted"):
            channel.send_batch([marketing("v-1", "a@example.com")])
        # Trusted (as a company CA would be): the login and the message go over TLS.
        trusting = ssl.create_default_context(cafile=cert[0])
        monkeypatch.setattr(email_channel.ssl, "create_default_context", lambda: trusting)
        channel = configure(server.url("mailer", "secret", scheme=scheme))
        assert channel.send_batch([marketing("v-2", "a@example.com")])[0].status == "sent"
        channel.close()
    assert server.recipients() == ["a@example.com"]


def test_a_pipelining_server_gets_mail_rcpt_and_data_in_one_write(configure, monkeypatch):
    def lockstep(*args, **kwargs):
        raise AssertionError("sendmail (one command per round trip) was used")

    monkeypatch.setattr(smtplib.SMTP, "sendmail", lockstep)
    with SMTPSink(pipelining=True) as server:
        server.rcpt_answers["gone@example.com"] = "550 5.1.1 No such user"
        channel = configure(server.url())
        body = OutgoingMessage(key="d-1", to="a@example.com", subject="x", text=".hidden\n.\nend")
        results = channel.send_batch(
            [body, marketing("d-2", "gone@example.com"), marketing("d-3", "b@example.com")]
        )
        channel.close()
    assert [(r.status, r.hard_bounce) for r in results] == [
        ("sent", False),
        ("failed", True),
        ("sent", False),
    ]
    # Lines that start with "." (the end-of-data marker) arrive intact.
    assert server.messages[0].message.get_content().replace("\r\n", "\n") == ".hidden\n.\nend"
    assert server.recipients() == ["a@example.com", "b@example.com"]


@pytest.mark.slow
def test_djangos_own_mail_goes_through_the_same_server(tmp_path):
    # Settings are read at start-up, so a fresh process shows what KEQUN_EMAIL_URL does.
    with SMTPSink() as sink:
        send_django_mail(sink, tmp_path)
    [mail] = sink.messages
    assert mail.mail_from == "alerts@shop.example" and mail.rcpt_tos == ["ops@shop.example"]
    assert mail.message["Subject"] == "Alert"


def send_django_mail(sink: SMTPSink, tmp_path) -> None:
    env = {
        **os.environ,
        "KEQUN_DATA_DIR": str(tmp_path),
        "KEQUN_EMAIL_URL": sink.url(),
        "KEQUN_EMAIL_FROM": "Kequn <alerts@shop.example>",
        "DJANGO_SETTINGS_MODULE": "kequn.settings",
    }
    code = (
        "import django; django.setup(); from django.core.mail import send_mail; "
        "send_mail('Alert', 'Disk almost full', None, ['ops@shop.example'])"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
