"""The webhook step against a local HTTP server: signed delivery, 5xx retried later, then given up."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from kequn.journeys.models import Enrollment, EnrollmentEvent
from kequn.journeys.services import fire_trigger, run_due
from tests.factories import make_customer
from tests.journeys.conftest import BY

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    """A local endpoint recording each POST; `status` sets what it answers."""
    calls: list[dict] = []
    state = {"status": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            calls.append({"headers": dict(self.headers), "body": json.loads(body)})
            self.send_response(state["status"])
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", calls, state
    server.shutdown()
    server.server_close()


def test_webhook_posts_signed_then_retries_5xx_later(make_journey, receiver, settings):
    settings.KEQUN_WEBHOOK_SECRET = "s3cret"
    url, calls, state = receiver
    journey = make_journey(
        [{"id": "hook", "kind": "webhook", "config": {"url": url, "data": {"offer": "A"}}}],
        trigger_kind="first_purchase",
    )
    ok, flaky = make_customer(), make_customer()
    fire_trigger(kind="first_purchase", customer_ids=[ok.pk], by=BY)
    run_due(by=BY)
    [call] = calls
    assert call["body"]["customer_id"] == ok.pk and call["body"]["data"] == {"offer": "A"}
    assert call["headers"]["X-Kequn-Signature"].startswith("sha256=")
    assert Enrollment.objects.get(customer=ok).state == "completed"

    state["status"] = 503
    fire_trigger(kind="first_purchase", customer_ids=[flaky.pk], by=BY)
    now = timezone.now()
    run_due(now=now, by=BY)
    enrollment = Enrollment.objects.get(journey=journey, customer=flaky)
    assert enrollment.state == "waiting" and enrollment.attempts == 1
    assert enrollment.wake_at >= now + timedelta(seconds=30)
    state["status"] = 200
    run_due(now=enrollment.wake_at, by=BY)
    enrollment.refresh_from_db()
    assert enrollment.state == "completed"
    keys = {c["headers"]["X-Kequn-Delivery"] for c in calls if c["body"]["customer_id"] == flaky.pk}
    assert keys == {f"journey:{enrollment.pk}:hook"}  # the same key on every try
    assert EnrollmentEvent.objects.filter(enrollment=enrollment, kind="wait").count() == 1
