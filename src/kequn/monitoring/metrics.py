"""Prometheus metrics: what each process counts, and what a scrape reads from the database.

Request, query and error counts are kept per process. Under `kequn serve` (gunicorn, several
worker processes) prometheus_client's multiprocess mode adds them up: the server gives every
worker PROMETHEUS_MULTIPROC_DIR (a fresh directory per server start), each worker writes its
values to memory-mapped files there, and a scrape sums the files of every worker, those that
exited included (counters only grow). Outside gunicorn (tests, `runserver`) the process's
own registry is served.

Queue depth and age, job failures, imports, events, alerts and the last analytics refresh
and backup are read from the database when /metrics is scraped (DatabaseCollector), so they
are right whichever process did the work (the server, `kequn worker`, a command).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime

from django.db.models import Count, Max, Min, Sum
from django.utils import timezone
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from kequn.events.models import Event
from kequn.ingest.models import ImportRun
from kequn.monitoring.models import Alert
from kequn.scoring.models import ScoreRun
from kequn.security.backups.schedule import list_backups

logger = logging.getLogger(__name__)
# The *_created series double the output and no dashboard reads them.
disable_created_metrics()

# Buckets for page and API latencies (seconds): the targets are 0.3 s (API) and 0.8 s (pages).
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.0, 2.0, 5.0, 10.0, 30.0)

REQUESTS = Counter(
    "kequn_http_requests",
    "HTTP requests answered, by view, method and status code.",
    ["view", "method", "status"],
)
REQUEST_SECONDS = Histogram(
    "kequn_http_request_duration_seconds",
    "Time to answer an HTTP request, by view.",
    ["view"],
    buckets=LATENCY_BUCKETS,
)
EXCEPTIONS = Counter(
    "kequn_http_exceptions",
    "Requests that raised an exception (answered 500, or 503 while the database is down).",
    ["view", "exception"],
)
DB_QUERIES = Counter(
    "kequn_db_queries",
    "Database queries run while answering requests, by view.",
    ["view"],
)
DB_QUERY_SECONDS = Counter(
    "kequn_db_query_seconds",
    "Time spent in database queries while answering requests, by view.",
    ["view"],
)
DB_UNAVAILABLE = Counter(
    "kequn_db_unavailable_responses",
    "Requests answered 503 because the database did not answer.",
)
DECRYPTION_ERRORS = Counter(
    "kequn_decryption_errors",
    "Encrypted values that could not be decrypted, by field.",
    ["field"],
)


def to_timestamp(value: datetime | None) -> float:
    """Return a datetime as Unix seconds (0 when there is none, Prometheus's 'never')."""
    return value.timestamp() if value is not None else 0.0


class DatabaseCollector(Collector):
    """Read the job queue, imports, events, alerts, refreshes and backups when scraped."""

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        try:
            yield from self.collect_jobs()
            yield from self.collect_work()
        except Exception as exc:  # a scrape must answer; the error is itself a metric
            logger.warning("metrics: reading the database failed: %s", type(exc).__name__)
            up = GaugeMetricFamily(
                "kequn_database_up", "1 when the database answered the scrape's queries."
            )
            up.add_metric([], 0)
            yield up
            return
        up = GaugeMetricFamily(
            "kequn_database_up", "1 when the database answered the scrape's queries."
        )
        up.add_metric([], 1)
        yield up

    def collect_jobs(self) -> Iterator[GaugeMetricFamily]:
        now = timezone.now()
        ready = DBTaskResult.objects.ready()
        depth = GaugeMetricFamily(
            "kequn_job_queue_depth", "Jobs waiting for a worker, by queue.", labels=["queue"]
        )
        age = GaugeMetricFamily(
            "kequn_job_queue_oldest_age_seconds",
            "How long the oldest waiting job has waited, by queue.",
            labels=["queue"],
        )
        for row in ready.values("queue_name").annotate(n=Count("id"), oldest=Min("enqueued_at")):
            depth.add_metric([row["queue_name"]], row["n"])
            age.add_metric([row["queue_name"]], (now - row["oldest"]).total_seconds())
        yield depth
        yield age
        finished = GaugeMetricFamily(
            "kequn_jobs",
            "Jobs in the queue table, by task and status (failed ones are job failures).",
            labels=["task", "status"],
        )
        rows = (
            DBTaskResult.objects.exclude(status=TaskResultStatus.READY)
            .values("task_path", "status")
            .annotate(n=Count("id"))
        )
        for job in rows:
            task = job["task_path"].rsplit(".", 1)[-1]
            finished.add_metric([task, job["status"].lower()], job["n"])
        yield finished

    def collect_work(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        imported = CounterMetricFamily(
            "kequn_import_rows", "Rows read by file imports, by kind.", labels=["kind"]
        )
        runs = GaugeMetricFamily(
            "kequn_import_runs", "File imports, by kind and status.", labels=["kind", "status"]
        )
        totals: dict[str, int] = {}
        for row in ImportRun.objects.values("kind", "status").annotate(
            n=Count("id"), rows=Sum("rows_read")
        ):
            runs.add_metric([row["kind"], row["status"]], row["n"])
            if row["status"] != ImportRun.Status.DRY_RUN:
                totals[row["kind"]] = totals.get(row["kind"], 0) + (row["rows"] or 0)
        for kind, rows in sorted(totals.items()):
            imported.add_metric([kind], rows)
        yield imported
        yield runs
        # Events are never updated in place and ids only grow: the highest id counts every
        # event ever stored at the cost of one index lookup (a count(*) would scan millions).
        events = CounterMetricFamily(
            "kequn_events_ingested", "Behavioural events stored (the highest event id)."
        )
        events.add_metric([], Event.objects.aggregate(top=Max("id"))["top"] or 0)
        yield events
        open_alerts = GaugeMetricFamily(
            "kequn_alerts_open",
            "Security alerts not resolved yet, by rule and severity.",
            labels=["rule", "severity"],
        )
        for alert in (
            Alert.objects.exclude(status=Alert.Status.RESOLVED)
            .values("rule", "severity")
            .annotate(n=Count("id"))
        ):
            open_alerts.add_metric([alert["rule"], alert["severity"]], alert["n"])
        yield open_alerts
        refreshed = GaugeMetricFamily(
            "kequn_analytics_last_success_timestamp_seconds",
            "When the last successful analytics refresh finished (Unix time; 0: never).",
        )
        last = ScoreRun.objects.filter(status=ScoreRun.Status.DONE).aggregate(t=Max("finished_at"))
        refreshed.add_metric([], to_timestamp(last["t"]))
        yield refreshed
        backed_up = GaugeMetricFamily(
            "kequn_backup_last_success_timestamp_seconds",
            "When the newest readable backup in the backup directory was made (0: none).",
        )
        backed_up.add_metric([], to_timestamp(get_last_backup_time()))
        yield backed_up


def get_last_backup_time() -> datetime | None:
    """Return when the newest readable backup was written (its file time), or None."""
    for path, header, _error in list_backups():
        if header is not None:
            return datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.get_current_timezone())
    return None


def render_metrics() -> tuple[bytes, str]:
    """Return the exposition text of every metric (all server workers') and its content type."""
    try:
        workers = CollectorRegistry()
        MultiProcessCollector(workers)
        body = generate_latest(workers)
    except ValueError:  # not under `kequn serve`: this process's own metrics
        body = generate_latest(REGISTRY)
    database = CollectorRegistry()
    database.register(DatabaseCollector())
    return body + generate_latest(database), CONTENT_TYPE_LATEST
