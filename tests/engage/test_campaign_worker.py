"""`kequn worker` sending a campaign, killed with SIGKILL mid-send and started again: exactly once.

The worker is a real process on a copy of the test database (SQLite: the in-memory test
database backed up to a file; PostgreSQL: the test database itself), the SMTP server a real
aiosmtpd sink in this process that kills the worker while it is in the middle of a message.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from django.db import connection

from kequn.customers.services import record_consent
from kequn.engage import services
from kequn.engage.models import Message
from kequn.security.actors import system_actor
from kequn.security.keys import get_key_file
from kequn.segments.models import Segment
from kequn.segments.services import set_static_members
from tests.factories import make_customer

BY = system_actor("tests")
RECIPIENTS = 30
KILL_AT = 10  # the worker dies during the SMTP conversation of this message


class KillingSink:
    """Count accepted messages per recipient; SIGKILL the worker at the KILL_AT-th recipient."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()
        self.rcpts = 0
        self.victim: subprocess.Popen | None = None
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 -- aiosmtpd hook name
        with self.lock:
            self.rcpts += 1
            if self.rcpts == KILL_AT and self.victim is not None:
                os.kill(self.victim.pid, signal.SIGKILL)
                self.victim.wait()
                return "421 4.3.0 going away"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 -- aiosmtpd hook name
        with self.lock:
            self.received.update(envelope.rcpt_tos)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _database_env(tmp_path: Path) -> tuple[dict[str, str], Path | None]:
    """Point a child process at this test's data (a file copy of an SQLite database)."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        path = tmp_path / "worker.sqlite3"
        target = sqlite3.connect(path)
        connection.ensure_connection()
        connection.connection.backup(target)
        target.close()
        return {"KEQUN_DATABASE_URL": f"sqlite:///{path}"}, path
    user, host, port = settings["USER"], settings["HOST"] or "127.0.0.1", settings["PORT"] or 5432
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    url = f"postgresql://{user}{password}@{host}:{port}/{settings['NAME']}"
    return {"KEQUN_DATABASE_URL": url}, None


def _statuses(sqlite_path: Path | None) -> Counter[str]:
    if sqlite_path is None:
        return Counter(Message.objects.values_list("status", flat=True))
    with sqlite3.connect(sqlite_path) as db:
        return Counter(row[0] for row in db.execute("SELECT status FROM engage_message"))


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "kequn.cli", "worker", "--interval", "0.2"],
        env=env,
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_campaign_and_restarted_sends_each_message_once(tmp_path, settings):
    settings.KEQUN_QUIET_HOURS = "off"
    settings.KEQUN_MARKETING_CAPS = "off"
    settings.KEQUN_CONTROL_GROUP_PERCENT = 0
    sink = KillingSink()
    controller = Controller(sink, hostname="127.0.0.1", port=_free_port())
    controller.start()
    settings.KEQUN_EMAIL_URL = f"smtp://127.0.0.1:{controller.port}"
    settings.KEQUN_EMAIL_FROM = "Kequn Shop <news@shop.example>"
    workers: list[subprocess.Popen] = []
    try:
        people = [make_customer(email=f"buyer{i}@example.com") for i in range(RECIPIENTS)]
        for person in people:
            record_consent(person, "email", "marketing", True, "tests", by=BY)
        segment = Segment.objects.create(name="Everyone", kind=Segment.Kind.STATIC)
        set_static_members(segment, [p.pk for p in people], by=BY)
        template = services.create_template(
            name="Hello", channel="email", subject_zh="你好", body_zh="<p>{{ name }}</p>", by=BY
        )
        campaign = services.create_campaign(
            name="Kill test", segment=segment, template=template, holdout_percent=0, by=BY
        )
        services.start_run(campaign, by=BY)  # queues 30 messages and the worker's task

        db_env, sqlite_path = _database_env(tmp_path)
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEQUN_")}
        env.update(db_env)
        env.update(
            KEQUN_DATA_DIR=str(tmp_path / "data"),
            KEQUN_MASTER_KEY_FILE=str(get_key_file()),
            KEQUN_AUDIT_HEAD_FILE=str(tmp_path / "audit-head"),
            KEQUN_EMAIL_URL=settings.KEQUN_EMAIL_URL,
            KEQUN_EMAIL_FROM=settings.KEQUN_EMAIL_FROM,
            KEQUN_EMAIL_CONNECTIONS="1",
            KEQUN_QUIET_HOURS="off",
            KEQUN_MARKETING_CAPS="off",
            KEQUN_CONTROL_GROUP_PERCENT="0",
            KEQUN_SEND_LEASE_SECONDS="2",
        )
        log = tmp_path / "worker.log"
        first = _start_worker(env, log)
        sink.victim = first
        workers.append(first)
        deadline = time.monotonic() + 300  # two worker start-ups on a busy machine
        while first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert first.returncode == -signal.SIGKILL, log.read_text()
        assert 0 < sum(sink.received.values()) < RECIPIENTS  # killed mid-campaign
        sink.victim = None

        second = _start_worker(env, log)
        workers.append(second)
        while time.monotonic() < deadline:
            if _statuses(sqlite_path)["sent"] == RECIPIENTS:
                break
            assert second.poll() is None, log.read_text()
            time.sleep(0.3)
        time.sleep(0.5)  # anything sent twice would arrive now
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
                worker.wait(timeout=30)
        controller.stop()

    assert _statuses(sqlite_path) == Counter({"sent": RECIPIENTS}), log.read_text()
    assert sink.received == Counter({f"buyer{i}@example.com": 1 for i in range(RECIPIENTS)})
