"""Benchmark: Segment /v1/batch ingestion into PostgreSQL through a real gunicorn server.

    python benchmarks/events_batch.py [--events 100000] [--batch 250] [--workers 2] [--smoke]

Starts gunicorn on 127.0.0.1 only, sends a bounded number of pre-built batches from a few
client threads, and prints events/s (target >= 10,000 on 2 cores) and the ratio against a
direct bulk insert of the same events measured in the same run (the database's own speed).
Both run warm: the direct insert in this process after migrate has loaded Django and opened
the connection, the HTTP path after a few warm-up batches have done the same in every
gunicorn worker. Exit status 1 when the rate misses the target, a request fails, or the
events stored differ from the events sent. --smoke: 2,000 events, checked, rate not judged.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from _verdict import Verdict, bench_tag, set_smoke_tag

PG_SERVER = "postgresql://postgres@127.0.0.1:5432"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_batches(n_events: int, size: int) -> list[bytes]:
    batches = []
    for start in range(0, n_events, size):
        messages = [
            {"type": "track", "event": "Product Viewed", "anonymousId": f"anon-{(start + i) % 5000}",
             "messageId": str(uuid.uuid4()), "timestamp": "2026-11-20T10:00:00Z",
             "properties": {"sku": f"SKU-{i % 300}", "price": 19.9, "page": "/p/123"},
             "context": {"library": {"name": "analytics-python"}}}
            for i in range(min(size, n_events - start))
        ]  # fmt: skip
        batches.append(json.dumps({"batch": messages}).encode())
    return batches


def send_all(port: int, key: str, batches: list[bytes], threads: int) -> float:
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    queue = list(reversed(batches))
    lock = threading.Lock()
    errors: list[str] = []

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                if not queue:
                    break
                body = queue.pop()
            conn.request(
                "POST",
                "/v1/batch",
                body,
                {"Authorization": auth, "Content-Type": "application/json"},
            )
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                errors.append(f"{response.status}")
        conn.close()

    start = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise SystemExit(f"FAIL: {len(errors)} requests failed, e.g. HTTP {errors[0]}")
    return elapsed


def direct_insert(batches: list[bytes]) -> float:
    """Insert the same events with bulk_create in this process: the database's own speed."""
    from django.utils import timezone

    from kequn.events.models import Event

    start = time.perf_counter()
    for body in batches:
        now = timezone.now()
        Event.objects.bulk_create(
            [Event(type="track", name=m["event"], anonymous_id=m["anonymousId"], message_id="direct-" + m["messageId"],
                   properties=m["properties"], occurred_at=now, received_at=now) for m in json.loads(body)["batch"]],
            ignore_conflicts=True,
        )  # fmt: skip
    return time.perf_counter() - start


def psql(statement: str) -> None:
    """Run one statement on the PostgreSQL maintenance database."""
    command = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc", statement]
    subprocess.run(command, check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=None, help="default 100,000 (smoke: 2,000)")
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--smoke", action="store_true", help="a small run for CI")
    args = parser.parse_args()
    if args.smoke:
        set_smoke_tag()
    events = args.events if args.events is not None else (2_000 if args.smoke else 100_000)
    if events < 2 * args.batch or args.batch <= 0 or args.workers <= 0 or args.threads <= 0:
        parser.error("--events must be at least two batches; the other options positive")
    verdict = Verdict("events_batch", smoke=args.smoke)
    verdict.conditions(
        "both warm: the direct insert runs in this process after migrate, the HTTP path "
        "after warm-up batches have loaded every gunicorn worker"
    )
    name = f"kequn_bench_events{bench_tag()}"
    psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    psql(f"CREATE DATABASE {name}")
    tmp = tempfile.mkdtemp()
    os.environ.update(
        {
            "KEQUN_DATABASE_URL": f"{PG_SERVER}/{name}",
            "KEQUN_DATA_DIR": tmp,
            "DJANGO_SETTINGS_MODULE": "kequn.settings",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    try:
        call_command("migrate", verbosity=0, skip_checks=True)
        measure(args, events, verdict)
    finally:
        connections.close_all()
        psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    return verdict.finish()


def measure(args: argparse.Namespace, events: int, verdict: Verdict) -> None:
    """Time the direct insert and the HTTP path; check every event was stored once."""
    from kequn.events.models import Event
    from kequn.events.services import create_source
    from kequn.security.actors import system_actor

    _source, key = create_source(name="bench", by=system_actor("benchmark"))
    batches = make_batches(events, args.batch)
    warm = min(4, len(batches) // 2)
    reference = direct_insert(batches)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "kequn.wsgi:application", "-b", f"127.0.0.1:{port}",
         "-w", str(args.workers), "--log-level", "warning"],
        env=os.environ.copy(),
    )  # fmt: skip
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        send_all(port, key, batches[:warm], 2)  # warm up the workers (imports, connections)
        elapsed = send_all(port, key, batches[warm:], args.threads)
    finally:
        server.terminate()
        # A loaded machine can take more than a few seconds to stop the workers.
        server.wait(timeout=60)
    sent = sum(len(json.loads(b)["batch"]) for b in batches[warm:])
    stored = Event.objects.exclude(message_id__startswith="direct-").count()
    direct = Event.objects.filter(message_id__startswith="direct-").count()
    rate = sent / elapsed
    direct_rate = events / reference
    print(f"/v1/batch over HTTP (gunicorn -w {args.workers}, PostgreSQL): {sent} events in "
          f"{elapsed:.2f} s = {rate:,.0f} events/s (target >= 10,000)")  # fmt: skip
    print(f"direct bulk insert of the same events: {direct_rate:,.0f} events/s; "
          f"HTTP path / direct = {rate / direct_rate:.2f}")  # fmt: skip
    verdict.check("events stored over HTTP = sent", stored == events,
                  f"stored {stored:,} of {events:,} sent (warm-up included)")  # fmt: skip
    verdict.check("direct insert stored every event", direct == events,
                  f"{direct:,} of {events:,}")  # fmt: skip
    verdict.target("/v1/batch >= 10,000 events/s", rate >= 10_000, f"{rate:,.0f} events/s")


if __name__ == "__main__":
    sys.exit(main())
