"""The tickets API: roles and own accounts (generic tests), deadlines on POST, replies, masking."""

from __future__ import annotations

import datetime as dt

import pytest

from kequn.security.audit.models import AuditEntry
from kequn.security.audit.services import VIEW_PERSONAL
from kequn.security.roles import ADMINISTRATOR, ANALYST, AUDITOR, MARKETING, SALES, SERVICE
from kequn.service import services
from kequn.service.models import Ticket
from tests.api.base import (
    ALL,
    NONE,
    OWN,
    APIResourceTests,
    make_personal_customer,
    make_role_client,
)
from tests.service.helpers import BY, at, make_policy


def make_ticket(customer, **fields) -> Ticket:
    values = {"subject": "耳机没声音", "body": "买了一周就坏了", "type": "return",
              "priority": "normal", "source": "phone", **fields}  # fmt: skip
    return services.open_ticket(customer_id=customer.pk, by=BY, **values)


class TestTicketsAPI(APIResourceTests):
    url = "/api/v1/tickets"
    app_label = "service"
    model_name = "ticket"
    role_access = {
        ADMINISTRATOR: ALL,
        MARKETING: NONE,
        SALES: OWN,
        SERVICE: ALL,
        ANALYST: ALL,
        AUDITOR: NONE,
    }

    def make_object_for(self, customer):
        return make_ticket(customer)

    def extra_paths(self, obj):
        return [f"{self.detail(obj.pk)}/messages"]


@pytest.mark.django_db
class TestTicketWrites:
    def test_post_with_opened_at_returns_the_computed_deadlines(self):
        make_policy()
        client = make_role_client(SERVICE)
        customer = make_personal_customer()
        response = client.send_json(
            "post",
            "/api/v1/tickets",
            {
                "customer_id": customer.pk,
                "subject": "国庆前的投诉",
                "body": "快递丢了",
                "type": "complaint",
                "priority": "high",
                "opened_at": "2025-09-30T17:00:00+08:00",
            },
        )
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["sla_policy"] == "standard"
        # One working hour: 17:00-18:00 the same day.
        assert dt.datetime.fromisoformat(body["first_response_due"]) == at(2025, 9, 30, 18, 0)
        # 8 working hours: 1 h on 30 Sep, the National Day week skipped, 7 h on 9 Oct.
        assert dt.datetime.fromisoformat(body["resolution_due"]) == at(2025, 10, 9, 17, 0)
        assert body["next_response_due"] is None

    def test_bad_input_is_a_422_naming_the_field(self):
        client = make_role_client(SERVICE)
        customer = make_personal_customer()
        response = client.send_json(
            "post", "/api/v1/tickets", {"customer_id": customer.pk, "subject": "x", "body": "y",
                                        "type": "praise"},
        )  # fmt: skip
        assert response.status_code == 422
        assert "type" in response.content.decode()
        response = client.send_json(
            "post", "/api/v1/tickets", {"customer_id": customer.pk, "subject": "x", "body": "y",
                                        "opened_at": "2999-01-01T00:00:00+08:00"},
        )  # fmt: skip
        assert response.status_code == 422

    def test_sales_opens_tickets_for_own_accounts_only(self):
        client = make_role_client(SALES)
        own = make_personal_customer(client.user)
        other = make_personal_customer()
        payload = {"subject": "发票", "body": "需要开发票"}
        ok = client.send_json("post", "/api/v1/tickets", {**payload, "customer_id": own.pk})
        assert ok.status_code == 201
        refused = client.send_json("post", "/api/v1/tickets", {**payload, "customer_id": other.pk})
        assert refused.status_code == 404
        assert not Ticket.objects.filter(customer=other).exists()

    def test_replies_notes_and_status_changes(self):
        client = make_role_client(SERVICE)
        ticket = make_ticket(make_personal_customer())
        url = f"/api/v1/tickets/{ticket.pk}"
        note = client.send_json("post", f"{url}/replies", {"body": "先查物流", "internal": True})
        assert note.status_code == 201 and note.json()["kind"] == "note"
        ticket.refresh_from_db()
        assert ticket.first_responded_at is None  # a note is not a response
        reply = client.send_json("post", f"{url}/replies", {"body": "已补发", "waiting": True})
        assert reply.status_code == 201 and reply.json()["kind"] == "reply"
        assert client.get(url).json()["status"] == "waiting"
        messages = client.get(f"{url}/messages").json()["items"]
        assert [m["kind"] for m in messages] == ["reply", "note", "customer"]
        patched = client.send_json("patch", url, {"status": "resolved", "priority": "high"})
        assert patched.status_code == 200, patched.content
        assert patched.json()["status"] == "resolved" and patched.json()["priority"] == "high"
        bad = client.send_json("patch", url, {"status": "new"})
        assert bad.status_code == 422 and "cannot become" in bad.content.decode()

    @pytest.mark.parametrize("role", [ANALYST, MARKETING, AUDITOR])
    def test_readers_cannot_write(self, role):
        client = make_role_client(role)
        ticket = make_ticket(make_personal_customer())
        url = f"/api/v1/tickets/{ticket.pk}"
        assert client.send_json("post", f"{url}/replies", {"body": "x"}).status_code == 403
        assert client.send_json("patch", url, {"priority": "low"}).status_code == 403

    def test_sender_address_is_masked_by_role_and_views_audited(self):
        customer = make_personal_customer(email="zhang.wei.mail@example.com")
        ticket = make_ticket(customer, from_address="zhang.wei.mail@example.com")
        analyst = make_role_client(ANALYST)
        shown = analyst.get(f"/api/v1/tickets/{ticket.pk}").json()
        assert shown["from_address"] == "z***@example.com"
        agent = make_role_client(SERVICE)
        assert agent.get(f"/api/v1/tickets/{ticket.pk}").json()["from_address"] == (
            "zhang.wei.mail@example.com"
        )
        views = AuditEntry.objects.filter(actor_id=agent.user.pk, action=VIEW_PERSONAL)
        assert views.filter(target_id=str(customer.pk)).exists()
        assert not AuditEntry.objects.filter(
            actor_id=analyst.user.pk, action=VIEW_PERSONAL
        ).exists()

    def test_filters(self):
        client = make_role_client(SERVICE)
        customer = make_personal_customer()
        urgent = make_ticket(customer, priority="urgent")
        make_ticket(customer, priority="low")
        items = client.get("/api/v1/tickets", {"priority": "urgent"}).json()["items"]
        assert [t["id"] for t in items] == [urgent.pk]
        assert client.get("/api/v1/tickets", {"open": "false"}).json()["items"] == []
        assert client.get("/api/v1/tickets", {"status": "bogus"}).status_code == 422
