"""Benchmark: event to queued send through a real `kequn worker` (journey with an event trigger).

Run: python benchmarks/journey_latency.py [--events 20] [--poll-seconds 1] [--smoke]
Migrates a scratch SQLite database in a temporary data directory, creates customers with an
email address and marketing consent, an email template and an active journey (trigger: the
event "Product Viewed"; step: send the template), then starts `kequn worker` as a separate
process. Each event is collected like the event API stores it (kequn.events.services.
collect_events) and the clock runs until its customer's message is in the outbox. The
reference is the same path without the worker: collect, then one runner pass in this process
(the floor the worker's polling adds to). Cold for the worker (a fresh process), warm for the
reference.
Target: median event-to-queued-send under 5 s. Exit 1 when it misses the target, when an
event did not lead to exactly one queued message, or when the worker dies.
--smoke: 3 events.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from _verdict import Verdict, set_smoke_tag

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
TIMEOUT = float(os.environ.get("KEQUN_BENCH_TIMEOUT", "60"))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--poll-seconds", type=float, default=1.0)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the data dir and worker log")
    args = parser.parse_args()
    if args.smoke:
        args.events = 3
        set_smoke_tag()
    if args.events < 1:
        parser.error("--events: at least 1")
    return args


def main(args: argparse.Namespace, verdict: Verdict) -> int:
    os.environ["KEQUN_DATA_DIR"] = tempfile.mkdtemp(prefix="kequn-journey-latency-")
    os.environ.pop("KEQUN_DATABASE_URL", None)
    os.environ["KEQUN_JOURNEY_POLL_SECONDS"] = str(args.poll_seconds)
    os.environ["KEQUN_CONTROL_GROUP_PERCENT"] = "0"  # every customer may be sent marketing
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kequn.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    from kequn.customers.services import IdentityInput, create_customer, record_consent
    from kequn.engage.models import Message
    from kequn.engage.services import create_template
    from kequn.events.services import collect_events, create_source
    from kequn.journeys.models import RunnerCursor
    from kequn.journeys.runner import CHAIN, run_pass
    from kequn.journeys.services import create_journey
    from kequn.security.actors import system_actor

    by = system_actor("benchmark")
    total = args.events * 2
    customers = []
    for i in range(total):
        customer = create_customer(
            {"name": f"客户{i}"},
            [
                IdentityInput("email", f"c{i}@example.com"),
                IdentityInput("external", f"user-{i}", system="segment"),
            ],
            by=by,
        )
        record_consent(customer, "email", "marketing", True, "benchmark", by=by)
        customers.append(customer)
    source, _key = create_source(name="bench", by=by)
    template = create_template(
        name="viewed", channel="email", subject_zh="看看", body_zh="<p>您看过的商品</p>", by=by
    )
    create_journey(
        name="viewed a product",
        trigger_kind="event",
        trigger_config={"event": "Product Viewed"},
        steps=[
            {"id": "s", "kind": "send", "config": {"template": template.pk, "channel": "email"}}
        ],
        activate=True,
        by=by,
    )

    def send_event(index: int) -> None:
        collect_events(
            source=source,
            messages=[
                {
                    "type": "track",
                    "event": "Product Viewed",
                    "userId": f"user-{index}",
                    "messageId": uuid.uuid4().hex,
                    "properties": {"sku": "SKU-1"},
                }
            ],
        )

    def wait_for_message(customer_id: int, deadline: float) -> bool:
        while time.perf_counter() < deadline:
            if Message.objects.filter(customer_id=customer_id).exists():
                return True
            time.sleep(0.05)
        return False

    # The reference: the same path without the worker (collect, then one pass in-process).
    reference = []
    for index in range(args.events):
        started = time.perf_counter()
        send_event(index)
        run_pass(by=by)
        if wait_for_message(customers[index].pk, started + TIMEOUT):
            reference.append(time.perf_counter() - started)

    log = open(Path(os.environ["KEQUN_DATA_DIR"]) / "worker.log", "w")  # noqa: SIM115 -- the worker's lifetime
    worker = subprocess.Popen(
        [sys.executable, "-m", "kequn.cli", "worker"],
        env={**os.environ},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    latencies = []
    try:
        deadline = time.perf_counter() + TIMEOUT
        while (
            time.perf_counter() < deadline
            and not RunnerCursor.objects.filter(name=CHAIN, token__gt="").exists()
        ):
            if worker.poll() is not None:
                break
            time.sleep(0.2)
        if worker.poll() is not None:
            verdict.fail(f"the worker exited with status {worker.returncode}")
        for index in range(args.events, total):
            started = time.perf_counter()
            send_event(index)
            if wait_for_message(customers[index].pk, started + TIMEOUT):
                latencies.append(time.perf_counter() - started)
            time.sleep(0.3 * (index % 4))  # events arrive at varied moments of the cycle
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()

    verdict.conditions(
        f"sqlite, {args.events} events; the worker cold (a fresh `kequn worker` process, "
        f"quick passes every {args.poll_seconds:g} s), the reference warm (in this process)"
    )
    per_customer = dict(
        Message.objects.values_list("customer_id").annotate(n=django.db.models.Count("id"))
    )
    verdict.check(
        "one message per event",
        len(per_customer) == total and set(per_customer.values()) == {1},
        f"{sum(per_customer.values())} messages for {total} events ({len(per_customer)} customers)",
    )
    verdict.check(
        "every event reached the outbox",
        len(latencies) == args.events and len(reference) == args.events,
        f"worker {len(latencies)}/{args.events}, reference {len(reference)}/{args.events}",
    )
    if latencies and reference:
        median = statistics.median(latencies)
        floor = statistics.median(reference)
        print(
            f"worker: median {median:.2f} s, max {max(latencies):.2f} s; reference (no worker): "
            f"median {floor:.3f} s; ratio {median / floor:.0f}x",
            flush=True,
        )
        verdict.target("median event to queued send < 5 s", median < 5, f"{median:.2f} s")
    return verdict.finish()


if __name__ == "__main__":
    arguments = parse_args()
    result = Verdict("journey_latency", smoke=arguments.smoke)
    try:
        status = main(arguments, result)
    finally:
        data_dir = os.environ.get("KEQUN_DATA_DIR", "")
        if "kequn-journey-latency-" in data_dir and not arguments.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    sys.exit(status)
