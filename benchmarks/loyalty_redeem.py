"""Benchmark: the redemption API under 20 concurrent clients, against a read of the same API.

    python benchmarks/loyalty_redeem.py [--clients 20] [--requests 50] [--members 1000]
        [--workers 2] [--think SECONDS] [--smoke]

Builds a scratch PostgreSQL database (members with enough points, a coupon reward without a
stock limit, an API token of a marketing user), starts a real `kequn serve`, and has
--clients threads each send --requests `POST /api/v1/loyalty/rewards/{code}/redeem` with a
random member and a fresh idempotency key (each thread its own keep-alive connection). The
reference, measured the same way just before: `GET /api/v1/loyalty/members/{customer_id}`
(authentication, permission, one member read). A warm-up round of each is not counted.
--think: mean pause of each client between its requests (exponential; 0, the default, sends
them back to back, so latency includes the queue of 20 clients on 2 cores; a till pausing
about a second between redemptions is --think 1).
Prints p50/p95 of both and their ratio. Target: redemption p95 under 50 ms. Checks: every
redemption answered 201, as many redemptions and coupons as requests, every stored balance
equals its ledger. --smoke: 4 clients × 10 requests, target not judged.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from _verdict import Verdict, bench_tag, set_smoke_tag

PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
TARGET_P95_MS = 50.0
REWARD = "bench-coupon"


def psql(statement: str) -> None:
    subprocess.run(
        ["psql", f"{PG_SERVER}/postgres", "-qc", statement], check=True, capture_output=True
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def kequn(env: dict, *args: str) -> str:
    """Run a kequn command; return its standard output (stop the benchmark on a failure)."""
    done = subprocess.run(
        [sys.executable, "-m", "kequn.cli", *args], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"kequn {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr}")
    return done.stdout


def load_members(count: int) -> list[int]:
    """Create members holding plenty of points and the reward; return the member ids."""
    import django

    django.setup()
    from kequn.customers.models import Customer
    from kequn.loyalty import services
    from kequn.loyalty.models import Member, Reward
    from kequn.loyalty.services.base import new_member
    from kequn.security.actors import system_actor

    by = system_actor("benchmark")
    customers = Customer.objects.bulk_create([Customer(name=f"r{i}") for i in range(count)])
    Member.objects.bulk_create([new_member(c.pk, None) for c in customers])
    for customer in customers:
        services.grant_points(
            customer_id=customer.pk, points=1_000_000, key=f"b{customer.pk}", by=by
        )
    Reward.objects.create(code=REWARD, name="10 off", kind="amount", points_cost=10, amount=10)
    return [c.pk for c in customers]


def wait_until_up(port: int, server: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"kequn serve exited with {server.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"kequn serve did not answer on port {port} in {seconds:.0f} s")


def hammer(
    port: int,
    token: str,
    clients: int,
    per_client: int,
    members: list[int],
    redeem: bool,
    think: float = 0.0,
) -> tuple[list[float], list[int]]:
    """Send the requests from `clients` threads at once; return latencies (ms) and statuses."""
    latencies: list[float] = []
    statuses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def client(seed: int) -> None:
        rng = random.Random(seed)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        start.wait()
        for _ in range(per_client):
            if think:
                time.sleep(rng.expovariate(1 / think))
            member = rng.choice(members)
            began = time.perf_counter()
            if redeem:
                body = json.dumps({"customer_id": member, "idempotency_key": uuid.uuid4().hex})
                path = f"/api/v1/loyalty/rewards/{REWARD}/redeem"
                connection.request("POST", path, body=body, headers=headers)
            else:
                connection.request("GET", f"/api/v1/loyalty/members/{member}", headers=headers)
            answer = connection.getresponse()
            answer.read()
            took = (time.perf_counter() - began) * 1000
            with lock:
                latencies.append(took)
                statuses.append(answer.status)
        connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, statuses


def percentile(values: list[float], share: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=50, help="per client")
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="kequn serve --workers")
    parser.add_argument("--think", type=float, default=0.0, help="mean pause per client (s)")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        set_smoke_tag()
        args.clients, args.requests, args.members, args.workers = 4, 10, 50, 1
    verdict = Verdict("loyalty_redeem", smoke=args.smoke)
    name = f"kequn_bench_loyalty_redeem{bench_tag()}".lower()
    psql(f"DROP DATABASE IF EXISTS {name}")
    psql(f"CREATE DATABASE {name}")
    tmp = tempfile.mkdtemp(prefix="kequn-redeem-")
    env = {
        **os.environ,
        "KEQUN_DATA_DIR": tmp,
        "KEQUN_DATABASE_URL": f"{PG_SERVER}/{name}",
        "DJANGO_SETTINGS_MODULE": "kequn.settings",
        # One client address and one token: the rate limits would measure themselves.
        "KEQUN_API_RATE": "off",
        "KEQUN_API_IP_RATE": "off",
        "KEQUN_LOG_LEVEL": "ERROR",
    }
    os.environ.update(env)
    server = None
    try:
        kequn(env, "migrate", "--verbosity", "0")
        members = load_members(args.members)
        user = f"bench-{os.getpid()}"
        kequn(env, "user", "add", user, "--role", "marketing")
        token = kequn(env, "token", "create", "--user", user).strip()
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "kequn.cli", "serve", "--port", str(port),
             "--workers", str(args.workers)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        wait_until_up(port, server)
        verdict.conditions(
            f"kequn serve --workers {args.workers} on PostgreSQL, {args.clients} client threads "
            f"× {args.requests} requests on the same machine ({os.cpu_count()} cores), "
            f"{args.members:,} members; think time {args.think:g} s; warm-up rounds not counted"
        )
        hammer(port, token, args.clients, 3, members, redeem=False)
        reads, read_statuses = hammer(
            port, token, args.clients, args.requests, members, False, args.think
        )
        hammer(port, token, args.clients, 3, members, redeem=True)
        spends, spend_statuses = hammer(
            port, token, args.clients, args.requests, members, True, args.think
        )
        report(args, verdict, reads, read_statuses, spends, spend_statuses)
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
        from django.db import connections

        connections.close_all()
        psql(f"DROP DATABASE IF EXISTS {name}")
    return verdict.finish()


def report(args, verdict, reads, read_statuses, spends, spend_statuses) -> None:
    from kequn.loyalty import selectors
    from kequn.loyalty.models import Coupon, Redemption

    read_p50, read_p95 = statistics.median(reads), percentile(reads, 0.95)
    p50, p95 = statistics.median(spends), percentile(spends, 0.95)
    print(f"read  GET members/{{id}}:    p50 {read_p50:6.1f} ms, p95 {read_p95:6.1f} ms")
    print(
        f"redeem POST rewards/…/redeem: p50 {p50:6.1f} ms, p95 {p95:6.1f} ms "
        f"(×{p50 / read_p50:.1f} and ×{p95 / read_p95:.1f} the read)"
        # Back to back, the clients keep the server busy: its rate is its capacity.
        + ("" if args.think else f"; {len(spends) / (sum(spends) / 1000 / args.clients):.0f}/s"),
        flush=True,
    )
    verdict.target(
        f"redemption p95 < {TARGET_P95_MS:.0f} ms at {args.clients} clients",
        p95 < TARGET_P95_MS,
        f"p95 {p95:.1f} ms (p50 {p50:.1f} ms; the read's p95 {read_p95:.1f} ms)",
    )
    verdict.check(
        "every read answered 200", set(read_statuses) == {200}, str(sorted(set(read_statuses)))
    )
    verdict.check(
        "every redemption answered 201",
        set(spend_statuses) == {201},
        str(sorted(set(spend_statuses))),
    )
    expected = args.clients * (args.requests + 3)
    made = (Redemption.objects.count(), Coupon.objects.count())
    verdict.check("one redemption and coupon a request", made == (expected,) * 2, f"{made}")
    differences = list(selectors.find_differences())
    verdict.check("balances equal the ledger", not differences, f"{len(differences)} differ")


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
    sys.exit(main())
