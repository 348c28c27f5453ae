"""Alerts reach administrators (mail, webhook), show in the back office and on the command line."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.auth.models import Group, User
from django.core import mail
from django.core.management import CommandError, call_command
from django.test import Client, RequestFactory
from django.utils import translation

from kequn.monitoring.admin import open_alerts_badge
from kequn.monitoring.config import AlertConfig
from kequn.monitoring.models import Alert
from kequn.monitoring.rules import Finding
from kequn.monitoring.services import (
    AlertError,
    acknowledge_alert,
    notify_alert,
    raise_alert,
    resolve_alert,
)
from kequn.security import roles
from kequn.security.actors import system_actor
from kequn.security.audit.models import AuditEntry
from kequn.security.permissions import sync_roles

BY = system_actor("tests")


class WebhookPeer:
    """A local HTTP server answering like an alert receiver (or failing, when told to)."""

    def __init__(self, status: int = 200):
        self.received: list[dict] = []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                peer.received.append(json.loads(self.rfile.read(length)))
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/kequn"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook():
    peer = WebhookPeer()
    yield peer
    peer.close()


def make_alert(n: int = 1, severity: str = "critical") -> Alert:
    alert = raise_alert(
        Finding(
            rule="login_spray",
            severity=severity,
            title=f"Failed logins for 12 user names from 203.0.113.{n}",
            fingerprint=f"login_spray:203.0.113.{n}:test",
            subject_ip=f"203.0.113.{n}",
            details={"usernames": 12},
            audit_entries=[],
        ),
        by=BY,
    )
    assert alert is not None
    return alert


def make_admin(name: str = "chief", email: str = "chief@corp.example") -> User:
    sync_roles()
    user = User.objects.create_user(name, password="x", email=email, is_staff=True)
    user.groups.add(Group.objects.get(name=roles.ADMINISTRATOR))
    return user


@pytest.mark.django_db
def test_alert_is_mailed_to_administrators_and_posted_to_the_webhook(webhook):
    make_admin()
    User.objects.create_user("rep", password="x", email="rep@corp.example")
    alert = make_alert()
    config = AlertConfig(emails=("soc@corp.example",), webhook_url=webhook.url)
    notify_alert(alert, config)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert sorted(message.to) == ["chief@corp.example", "soc@corp.example"]
    assert "203.0.113.1" in message.subject and "kequn alerts ack" in message.body
    assert webhook.received == [
        {**webhook.received[0], "id": alert.pk, "rule": "login_spray", "severity": "critical"}
    ]
    alert.refresh_from_db()
    assert alert.notified_at is not None and alert.notify_error == ""
    # Raising an alert is itself on the audit trail.
    assert AuditEntry.objects.filter(
        target_type="monitoring.alert", target_id=str(alert.pk)
    ).exists()


@pytest.mark.django_db
def test_a_failing_webhook_is_noted_on_the_alert_and_mail_still_goes():
    make_admin()
    peer = WebhookPeer(status=500)
    try:
        alert = make_alert()
        notify_alert(alert, AlertConfig(webhook_url=peer.url))
    finally:
        peer.close()
    alert.refresh_from_db()
    assert "webhook" in alert.notify_error and "500" in alert.notify_error
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_acknowledge_then_resolve_and_refusals():
    alert = make_alert()
    operator = make_admin()
    acknowledge_alert(alert.pk, by=operator, note="looking")
    alert.refresh_from_db()
    assert (alert.status, alert.acknowledged_by, alert.note) == ("acknowledged", "chief", "looking")
    resolve_alert(alert.pk, by=operator)
    alert.refresh_from_db()
    assert alert.status == "resolved" and alert.resolved_by == "chief"
    with translation.override("en"), pytest.raises(AlertError, match="already resolved"):
        acknowledge_alert(alert.pk, by=operator)
    with translation.override("zh-hans"), pytest.raises(AlertError, match="没有编号为 #999 的告警"):
        resolve_alert(999, by=operator)


@pytest.mark.django_db
def test_command_line_lists_and_acknowledges(capsys):
    first, second = make_alert(1), make_alert(2, severity="warning")
    make_admin()
    call_command("alerts", "list")
    out = capsys.readouterr().out
    assert f"{first.pk}\t" in out and f"{second.pk}\t" in out and "open" in out
    call_command("alerts", "ack", str(first.pk), "--by", "chief")
    assert f"alert #{first.pk} acknowledged" in capsys.readouterr().out
    call_command("alerts", "list", "--status", "open", "--json")
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in rows] == [second.pk]
    with translation.override("en"), pytest.raises(CommandError, match="no alert #4242"):
        call_command("alerts", "ack", "4242")
    call_command("alerts", "resolve", str(first.pk), str(second.pk))
    assert Alert.objects.filter(status="resolved").count() == 2


@pytest.mark.django_db
def test_alert_settings_error_is_one_line_on_the_command_line(tmp_path, settings):
    path = tmp_path / "alerts.toml"
    path.write_text("treshold = 3\n")
    settings.KEQUN_ALERTS_CONFIG = str(path)
    with pytest.raises(CommandError, match="unknown setting 'treshold'"):
        call_command("alerts", "evaluate")


@pytest.mark.django_db
def test_back_office_list_badge_and_actions():
    alerts = [make_alert(1), make_alert(2)]
    admin = make_admin()
    client = Client()
    client.force_login(admin)
    page = client.get("/admin/monitoring/alert/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "203.0.113.1" in html and "203.0.113.2" in html
    request = RequestFactory().get("/admin/")
    request.user = admin
    assert open_alerts_badge(request) == "2"
    answer = client.post(
        "/admin/monitoring/alert/",
        {"action": "acknowledge_selected", "_selected_action": [alerts[0].pk]},
        follow=True,
    )
    assert answer.status_code == 200
    assert Alert.objects.get(pk=alerts[0].pk).status == "acknowledged"
    client.post(
        "/admin/monitoring/alert/",
        {"action": "resolve_selected", "_selected_action": [a.pk for a in alerts]},
    )
    assert set(Alert.objects.values_list("status", flat=True)) == {"resolved"}
    assert open_alerts_badge(request) == ""  # changes clear the cached count


@pytest.mark.django_db
def test_only_administrators_and_auditors_see_alerts():
    sync_roles()
    make_alert()
    for role, status in ((roles.AUDITOR, 200), (roles.MARKETING, 403), (roles.SALES, 403)):
        user = User.objects.create_user(f"u-{role}", password="x", is_staff=True)
        user.groups.add(Group.objects.get(name=role))
        client = Client()
        client.force_login(user)
        assert client.get("/admin/monitoring/alert/").status_code == status, role
    auditor = User.objects.get(username=f"u-{roles.AUDITOR}")
    assert not auditor.has_perm("monitoring.change_alert")
