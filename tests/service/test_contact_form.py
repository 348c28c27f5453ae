"""The public contact form: no login, CSRF, rate limit, checked attachment, becomes a ticket."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from kequn.customers.models import Customer
from kequn.service.models import Attachment, Ticket
from tests.factories import make_customer, make_order

pytestmark = pytest.mark.django_db
URL = "/contact/"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\n%%EOF\n"
PROGRAM = b"MZ\x90\x00" + b"\x00" * 200


def form(**fields) -> dict:
    data = {
        "name": "刘洋", "email": "liu.yang@example.cn", "phone": "", "type": "return",
        "order_number": "", "subject": "耳机左边没声音", "body": "买了两周，左耳没有声音，想换货。",
    }  # fmt: skip
    data.update(fields)
    return data


def visitor() -> Client:
    """Return a browser that enforces CSRF as a real one meets it, with the form's token."""
    client = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")
    page = client.get(URL)
    assert page.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    client.token = token.group(1)  # type: ignore[attr-defined]
    return client


def post(client: Client, data: dict, **files):
    return client.post(URL, {**data, **files, "csrfmiddlewaretoken": client.token})


def test_a_new_visitor_becomes_a_contact_and_a_ticket_with_the_file():
    response = post(
        visitor(), form(), attachment=SimpleUploadedFile("发票.pdf", PDF, "application/pdf")
    )
    assert response.status_code == 200, response.content.decode()[:3000]
    ticket = Ticket.objects.get()
    assert f"[#{ticket.pk}]" in response.content.decode()
    assert (ticket.source, ticket.type, ticket.subject) == ("web", "return", "耳机左边没声音")
    assert ticket.customer.name == "刘洋"
    assert ticket.customer.identities.get(kind="email").value == "liu.yang@example.cn"
    assert Attachment.objects.get().file_name == "发票.pdf"
    assert ticket.first_response_due is None or ticket.first_response_due > ticket.opened_at


def test_a_known_customer_is_matched_and_their_order_linked():
    customer = make_customer("刘洋", email="liu.yang@example.cn")
    order = make_order(customer)
    response = post(visitor(), form(email="Liu.Yang@Example.cn", order_number=order.number))
    assert response.status_code == 200
    ticket = Ticket.objects.get()
    assert ticket.customer_id == customer.pk and ticket.order_id == order.pk
    assert Customer.objects.count() == 1


def test_someone_elses_order_number_is_not_linked():
    owner = make_customer("王芳", email="wang@example.cn")
    order = make_order(owner)
    assert post(visitor(), form(order_number=order.number)).status_code == 200
    ticket = Ticket.objects.get()
    assert ticket.order_id is None and order.number in ticket.messages.get().body


def test_a_post_without_the_csrf_token_is_refused():
    client = Client(enforce_csrf_checks=True)
    assert client.post(URL, form()).status_code == 403
    assert not Ticket.objects.exists()


def test_a_disguised_program_is_refused_and_nothing_is_stored():
    response = post(
        visitor(), form(), attachment=SimpleUploadedFile("invoice.pdf", PROGRAM, "application/pdf")
    )
    assert response.status_code == 400
    assert "invoice.pdf: the content is a program" in response.content.decode()
    assert not Ticket.objects.exists() and not Customer.objects.exists()


def test_an_oversized_file_is_refused_before_it_is_read(settings):
    settings.KEQUN_SERVICE_ATTACHMENT_MAX_MB = 0.001  # about 1 KB
    big = SimpleUploadedFile("scan.pdf", PDF + b"0" * 4096, "application/pdf")
    response = post(visitor(), form(), attachment=big)
    assert response.status_code == 400
    assert "scan.pdf: 0.0 MB is over the 0 MB limit" in response.content.decode()
    assert not Ticket.objects.exists()


def test_missing_fields_are_named():
    response = post(visitor(), form(email="", subject=""))
    assert response.status_code == 400
    assert response.content.decode().count("This field is required.") == 2
    assert not Ticket.objects.exists()


def test_too_many_messages_from_one_address_wait(settings):
    settings.KEQUN_SERVICE_FORM_RATE = "2/min"
    client = visitor()
    assert [post(client, form(subject=f"问题 {i}")).status_code for i in range(3)] == [
        200,
        200,
        429,
    ]
    assert Ticket.objects.count() == 2
    blocked = post(client, form())
    assert int(blocked["Retry-After"]) >= 1
    assert "Too many messages from your address" in blocked.content.decode()
