"""/metrics: token or local-only access, request and query metrics by view, database gauges."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from kequn.ingest.models import ImportRun
from kequn.jobs.tasks import nightly_refresh_task
from kequn.scoring.models import ScoreRun
from tests.factories import make_event


def sample(text: str, name: str, **labels: str) -> float | None:
    """Return the value of one sample in Prometheus text, or None when it is not there."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, value = line.rsplit(" ", 1)
        metric, _sep, rest = head.partition("{")
        found = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if metric == name and found == labels:
            return float(value)
    return None


@pytest.mark.django_db
def test_metrics_refuse_other_machines_without_a_token(settings):
    settings.KEQUN_METRICS_TOKEN = ""
    response = Client(REMOTE_ADDR="10.1.2.3").get("/metrics")
    assert response.status_code == 403
    assert b"KEQUN_METRICS_TOKEN" in response.content
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 200


@pytest.mark.django_db
def test_metrics_want_the_bearer_token_when_one_is_set(settings):
    settings.KEQUN_METRICS_TOKEN = "s3cret-token"
    local = Client(REMOTE_ADDR="127.0.0.1")
    missing = local.get("/metrics")
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert b"Authorization: Bearer" in missing.content
    assert local.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    remote = Client(REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer s3cret-token")
    answer = remote.get("/metrics")
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/plain")


@pytest.mark.django_db
def test_requests_are_counted_and_timed_by_view_with_their_queries(settings):
    settings.KEQUN_METRICS_TOKEN = ""
    client = Client(REMOTE_ADDR="127.0.0.1")
    before = (
        sample(
            client.get("/metrics").content.decode(),
            "kequn_http_requests_total",
            view="healthz",
            method="GET",
            status="200",
        )
        or 0
    )
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    client.get("/admin/customers/customer/987654/change/")  # redirects to the login
    text = client.get("/metrics").content.decode()
    assert (
        sample(text, "kequn_http_requests_total", view="healthz", method="GET", status="200")
        == before + 3
    )
    assert sample(text, "kequn_http_request_duration_seconds_count", view="healthz") >= 3
    assert sample(text, "kequn_db_queries_total", view="healthz") >= 3
    assert 'view="admin:customers_customer_change"' in text
    # No ids or query strings in labels: one series per view, not per URL.
    assert "987654" not in text


@pytest.mark.django_db
def test_scrape_reads_queue_jobs_imports_events_and_refresh_times(settings):
    settings.KEQUN_METRICS_TOKEN = ""
    result = nightly_refresh_task.enqueue()
    DBTaskResult.objects.filter(pk=result.id).update(
        enqueued_at=timezone.now() - timedelta(minutes=10)
    )
    failed = nightly_refresh_task.enqueue()
    DBTaskResult.objects.filter(pk=failed.id).update(status="FAILED")
    ImportRun.objects.create(
        kind="customers",
        file_name="a.csv",
        checksum="x",
        rows_read=120,
        status=ImportRun.Status.FINISHED,
    )
    ImportRun.objects.create(
        kind="customers",
        file_name="b.csv",
        checksum="y",
        rows_read=30,
        status=ImportRun.Status.DRY_RUN,
    )
    event = make_event()
    finished = timezone.now() - timedelta(hours=2)
    ScoreRun.objects.create(started_at=finished, finished_at=finished, status="done")
    text = Client(REMOTE_ADDR="127.0.0.1").get("/metrics").content.decode()
    assert sample(text, "kequn_job_queue_depth", queue="default") == 1
    assert 590 <= sample(text, "kequn_job_queue_oldest_age_seconds", queue="default") < 3600
    assert sample(text, "kequn_jobs", task="nightly_refresh_task", status="failed") == 1
    assert sample(text, "kequn_import_rows_total", kind="customers") == 120  # dry runs left out
    assert sample(text, "kequn_events_ingested_total") == event.pk
    assert sample(text, "kequn_analytics_last_success_timestamp_seconds") == pytest.approx(
        finished.timestamp()
    )
    assert sample(text, "kequn_backup_last_success_timestamp_seconds") is not None
    assert sample(text, "kequn_database_up") == 1


@pytest.mark.django_db
def test_readyz_reports_database_and_queue():
    response = Client().get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["job_queue"]["waiting"] == 0
    nightly_refresh_task.enqueue()
    DBTaskResult.objects.update(enqueued_at=timezone.now() - timedelta(hours=1))
    stalled = Client().get("/readyz").json()["checks"]["job_queue"]
    assert stalled["waiting"] == 1 and stalled["stalled"] is True


@pytest.mark.django_db
@override_settings(DEBUG_PROPAGATE_EXCEPTIONS=False)
def test_database_down_answers_503_not_500(monkeypatch):
    from django.db import OperationalError
    from django.db.backends.base.base import BaseDatabaseWrapper

    client = Client(raise_request_exception=False)
    client.force_login(User.objects.create_user("rep", password="x"))

    def refuse(self, *args, **kwargs):
        raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")

    monkeypatch.setattr(BaseDatabaseWrapper, "cursor", refuse)
    response = client.get("/admin/customers/customer/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 503
    assert response["Retry-After"]
    assert "database" in response.json()["detail"]
    assert client.get("/readyz").status_code == 503
