"""Email in (IMAP polling, SMTP receipt) and out: threading, unknown senders, attachments."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import smtplib
import socket
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from django.test import TestCase

from kequn.customers.services import find_customer_by_identity
from kequn.service import services
from kequn.service.delivery import retry_pending_deliveries
from kequn.service.mailbox import MailboxError, SmtpInboundHandler, fetch_mail
from kequn.service.models import InboundEmail, Status, Ticket, TicketMessage
from tests.factories import make_customer
from tests.service.helpers import BY
from tests.service.imap_server import IMAPServer, Mailbox


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\x00" * 200


def make_email(
    sender: str = "王芳 <wang.fang@example.cn>",
    subject: str = "订单 A100 的耳机坏了",
    body: str = "右耳没有声音，请帮忙。",
    **headers: str,
) -> EmailMessage:
    message = EmailMessage()
    if sender:
        message["From"] = sender
    message["To"] = "support@shop.example"
    message["Subject"] = subject
    message["Message-ID"] = headers.pop(
        "message_id", f"<{abs(hash((sender, subject, body)))}@example.cn>"
    )
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


@pytest.fixture
def imap():
    server = IMAPServer(Mailbox()).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.django_db
class TestImapPolling:
    def test_new_message_becomes_a_ticket_of_the_known_customer(self, imap):
        customer = make_customer("王芳", email="wang.fang@example.cn")
        imap.mailbox.add(make_email().as_bytes())
        counts = fetch_mail(by=BY, url=imap.url)
        assert counts["ticket"] == 1
        ticket = Ticket.objects.get()
        assert ticket.customer == customer and ticket.source == "email"
        assert ticket.subject == "订单 A100 的耳机坏了"
        assert ticket.messages.get().body == "右耳没有声音，请帮忙。"
        assert imap.mailbox.seen == {1}
        # A second poll finds nothing new.
        assert sum(fetch_mail(by=BY, url=imap.url).values()) == 0

    def test_reply_threads_by_subject_tag_and_by_references(self, imap):
        make_customer("王芳", email="wang.fang@example.cn")
        imap.mailbox.add(make_email().as_bytes())
        fetch_mail(by=BY, url=imap.url)
        ticket = Ticket.objects.get()
        services.change_status(ticket=ticket, status="resolved", by=BY)
        imap.mailbox.add(make_email(subject=f"Re: 耳机 [#{ticket.pk}]", body="还是不行").as_bytes())
        reply = services.add_reply(ticket=ticket, body="请寄回", by=BY)
        assert reply.message_id.startswith(f"<ticket-{ticket.pk}.")
        imap.mailbox.add(
            make_email(subject="Re: 换新", body="已寄回", In_Reply_To=reply.message_id).as_bytes()
        )
        counts = fetch_mail(by=BY, url=imap.url)
        assert counts["reply"] == 2 and Ticket.objects.count() == 1
        ticket.refresh_from_db()
        assert ticket.status == Status.REOPENED  # a reply on a resolved ticket reopens it
        assert ticket.messages.filter(kind="customer").count() == 3

    def test_unknown_sender_becomes_a_new_contact(self, imap):
        imap.mailbox.add(make_email(sender="Li Lei <li.lei@example.org>").as_bytes())
        fetch_mail(by=BY, url=imap.url)
        customer = find_customer_by_identity("email", "li.lei@example.org")
        assert customer is not None and customer.name == "Li Lei"
        assert Ticket.objects.get().customer == customer

    def test_unknown_sender_quarantined_when_configured_and_retry_files_it(self, imap, settings):
        settings.KEQUN_SERVICE_UNKNOWN_SENDER = "quarantine"
        imap.mailbox.add(make_email(sender="stranger@example.org").as_bytes())
        counts = fetch_mail(by=BY, url=imap.url)
        assert counts["quarantined"] == 1 and not Ticket.objects.exists()
        record = InboundEmail.objects.get()
        assert "unknown sender stranger@example.org" in record.reason
        assert bytes(record.raw).startswith(b"From: stranger@example.org")  # nothing lost
        make_customer("陌生人", email="stranger@example.org")
        filed = services.retry_inbound(record=record, by=BY)
        assert filed.outcome == "ticket" and Ticket.objects.count() == 1

    def test_no_sender_and_auto_replies_are_quarantined_with_a_reason(self, imap):
        imap.mailbox.add(make_email(sender="").as_bytes())
        imap.mailbox.add(
            make_email(subject="Out of office", Auto_Submitted="auto-replied").as_bytes()
        )
        imap.mailbox.add(b"\xff\xfe not an email at all")
        fetch_mail(by=BY, url=imap.url)
        reasons = sorted(InboundEmail.objects.values_list("reason", flat=True))
        assert any("no sender address" in r for r in reasons)
        assert any("automatic reply" in r for r in reasons)
        assert InboundEmail.objects.count() == 3 and not Ticket.objects.exists()

    def test_a_message_filed_before_a_crash_is_not_filed_twice(self, imap):
        make_customer("王芳", email="wang.fang@example.cn")
        raw = make_email().as_bytes()
        imap.mailbox.add(raw)
        services.receive_email(raw, by=BY)  # filed, then killed before flagging it \\Seen
        fetch_mail(by=BY, url=imap.url)
        assert Ticket.objects.count() == 1 and InboundEmail.objects.count() == 1
        assert imap.mailbox.seen == {1}

    def test_wrong_password_and_bad_url_are_one_line_errors(self, imap):
        with pytest.raises(MailboxError, match="login refused"):
            fetch_mail(by=BY, url=imap.url.replace("s3cret", "wrong"))
        with pytest.raises(MailboxError, match="must look like imaps://"):
            fetch_mail(by=BY, url="pop3://x@y/INBOX")

    def test_disguised_attachment_is_refused_the_rest_is_kept(self, imap):
        make_customer("王芳", email="wang.fang@example.cn")
        message = make_email()
        message.add_attachment(PDF, maintype="application", subtype="pdf", filename="发票.pdf")
        message.add_attachment(EXE, maintype="application", subtype="pdf", filename="invoice.pdf")
        imap.mailbox.add(message.as_bytes())
        fetch_mail(by=BY, url=imap.url)
        first = Ticket.objects.get().messages.get()
        assert [a.file_name for a in first.attachments.all()] == ["发票.pdf"]
        assert "invoice.pdf: the content is a program" in first.body
        assert "invoice.pdf" in InboundEmail.objects.get().reason


@pytest.mark.django_db(transaction=True)
def test_smtp_receipt_files_the_message():
    make_customer("王芳", email="wang.fang@example.cn")
    port = free_port()
    controller = Controller(SmtpInboundHandler(BY), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.send_message(make_email(subject="门店维修进度"))
    finally:
        controller.stop()
    ticket = Ticket.objects.get()
    assert ticket.subject == "门店维修进度"
    assert InboundEmail.objects.get().via == "smtp"


class Sink:
    def __init__(self):
        self.received: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 -- aiosmtpd's name
        self.received.append(envelope.original_content or envelope.content)
        return "250 OK"


@pytest.fixture
def smtp_sink():
    sink = Sink()
    sink.port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    yield sink
    controller.stop()


@pytest.mark.django_db
@pytest.mark.parametrize("through", ["engage", "django"])
def test_reply_is_emailed_threaded_and_lands_in_the_thread(smtp_sink, settings, through):
    settings.KEQUN_SERVICE_ADDRESS = "support@shop.example"
    if through == "engage":
        settings.KEQUN_EMAIL_URL = f"smtp://127.0.0.1:{smtp_sink.port}"
        settings.KEQUN_EMAIL_FROM = "客服 <service@shop.example>"
    else:
        settings.KEQUN_EMAIL_URL = ""
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp_sink.port
    make_customer("王芳", email="wang.fang@example.cn")
    services.receive_email(make_email(message_id="<first@example.cn>").as_bytes(), by=BY)
    ticket = Ticket.objects.get()
    with TestCase.captureOnCommitCallbacks(execute=False) as callbacks:
        reply = services.add_reply(ticket=ticket, body="您好，已为您安排换新。", by=BY)
    assert callbacks  # the delivery is queued after the commit
    assert services.deliver_reply(reply.pk) == "sent"
    assert services.deliver_reply(reply.pk) == "sent"  # idempotent: not sent twice
    assert len(smtp_sink.received) == 1
    sent = email.message_from_bytes(smtp_sink.received[0], policy=email.policy.default)
    assert sent["To"] == "wang.fang@example.cn"
    assert f"[#{ticket.pk}]" in sent["Subject"]
    assert sent["In-Reply-To"] == "<first@example.cn>"
    assert sent["Reply-To"] == "support@shop.example"
    assert sent.get_content().strip() == "您好，已为您安排换新。"
    reply.refresh_from_db()
    assert reply.delivery == TicketMessage.Delivery.SENT
    assert sent["Message-ID"] == reply.message_id
    # The customer's answer to it threads back to the same ticket.
    answer = make_email(subject="Re: thanks", body="好的", In_Reply_To=reply.message_id)
    assert services.receive_email(answer.as_bytes(), by=BY).ticket == ticket


@pytest.mark.django_db
def test_a_reply_to_a_down_mail_server_stays_pending_and_goes_out_later(smtp_sink, settings):
    settings.KEQUN_EMAIL_URL = ""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nothing listens
    make_customer("王芳", email="wang.fang@example.cn")
    services.receive_email(make_email().as_bytes(), by=BY)
    reply = services.add_reply(ticket=Ticket.objects.get(), body="稍等", by=BY)
    assert services.deliver_reply(reply.pk) == "pending"
    reply.refresh_from_db()
    assert "ConnectionRefusedError" in reply.delivery_error
    TicketMessage.objects.filter(pk=reply.pk).update(
        created_at=reply.created_at - dt.timedelta(hours=1)
    )
    assert retry_pending_deliveries() == 1
    settings.EMAIL_PORT = smtp_sink.port  # the server is back
    assert services.deliver_reply(reply.pk) == "sent" and len(smtp_sink.received) == 1
