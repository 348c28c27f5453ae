"""Load test of `kequn serve`: demo data, accounts, the server, locust, and the verdict.

Full run (the issue's target; about an hour to prepare a million customers first):

    python benchmarks/load/run.py --database-url postgresql://postgres@127.0.0.1:5432/kequn_load \
        --customers 1000000 --users 200 --minutes 10

The users start --spawn-rate a second (200 users: 100 s, the marketers signing in); the
--minutes measured begin once all of them run (locust's --reset-stats), so the table is the
steady state of that many concurrent users, not the sign-in burst before it.

Targets: no failed request, API p95 < 300 ms, back-office pages p95 < 800 ms, and the server
processes' memory (RSS of the gunicorn master and workers) flat within 10 % from minute 2 to
the end of the measured minutes. `--smoke` runs a few users for seconds on SQLite (checks only that everything
answers). `--skip-demo` reuses the data already in the database. Prints the table of
p50/p95 per request kind and group, the errors, and the server's RSS over time.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from _verdict import Verdict, set_smoke_tag  # noqa: E402 -- benchmarks/ is not a package

PAGE_P95_MS = 800
API_P95_MS = 300
RSS_GROWTH = 0.10


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def kequn(env: dict, *args: str, check: bool = True) -> str:
    """Run a kequn command and return its standard output."""
    done = subprocess.run(
        [sys.executable, "-m", "kequn.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if check and done.returncode != 0:
        raise SystemExit(
            f"kequn {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    return done.stdout


def process_tree_rss(pid: int) -> int:
    """Return the resident memory (bytes) of a process and all its children."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


class RssSampler(threading.Thread):
    """Sample the server's RSS every few seconds while the load runs."""

    def __init__(self, pid: int, every: float):
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, int]] = []
        self.stopped = threading.Event()
        self.started_at = time.monotonic()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.samples.append((time.monotonic() - self.started_at, process_tree_rss(self.pid)))
            self.stopped.wait(self.every)


def fetch_json(url: str, token: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310 -- local
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 -- our own local server
        return json.loads(answer.read())


def wait_until_up(url: str, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"kequn serve exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=5) as answer:  # noqa: S310 -- local
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"kequn serve did not answer on {url} in {seconds:.0f} s")


def read_stats(prefix: str) -> list[dict]:
    with open(f"{prefix}_stats.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def group_of(name: str) -> str:
    return name.split(" ", 1)[0] if name != "Aggregated" else "all"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default="", help="default: SQLite in the data dir")
    parser.add_argument("--data-dir", default="", help="default: a scratch directory")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument(
        "--spawn-rate",
        type=float,
        default=2,
        help="users started per second [2: 200 users sign in over 100 s, not in one burst of "
        "password hashing]",
    )
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument(
        "--workers", type=int, help="kequn serve --workers [its default, KEQUN_SERVE_WORKERS]"
    )
    parser.add_argument(
        "--threads", type=int, help="kequn serve --threads [its default, KEQUN_SERVE_THREADS]"
    )
    parser.add_argument("--skip-demo", action="store_true", help="reuse the data already loaded")
    parser.add_argument("--smoke", action="store_true", help="a few users for seconds on SQLite")
    args = parser.parse_args()
    if args.smoke:
        set_smoke_tag()
        args.customers, args.users, args.spawn_rate, args.minutes = 300, 6, 6, 0.25
        args.workers = 1
    for name in ("customers", "users", "workers", "threads"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    verdict = Verdict("load", smoke=args.smoke)
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="kequn-load-"))
    env = {
        **os.environ,
        "KEQUN_DATA_DIR": str(data_dir),
        # One machine sends everything from 127.0.0.1 with a few keys: the per-address and
        # per-token limits would turn the test into a rate-limit test.
        "KEQUN_API_RATE": "off",
        "KEQUN_API_IP_RATE": "off",
        "KEQUN_LOGIN_RATE": "off",
        "KEQUN_COLLECT_RATE": "off",
        "KEQUN_LOG_LEVEL": "ERROR",
    }
    if args.database_url:
        env["KEQUN_DATABASE_URL"] = args.database_url
    else:
        env.pop("KEQUN_DATABASE_URL", None)
    database = "PostgreSQL" if args.database_url.startswith("postgres") else "SQLite"
    sizes = {"workers": args.workers, "threads": args.threads}
    serve_options = [o for k, v in sizes.items() if v is not None for o in (f"--{k}", str(v))]
    verdict.conditions(
        f"kequn serve {' '.join(serve_options) or '(default workers and threads)'} on {database}, "
        f"{args.customers:,} demo customers, {args.users} locust users for {args.minutes:g} min "
        f"on the same machine ({os.cpu_count()} cores)"
    )
    started = time.monotonic()
    if not args.skip_demo:
        kequn(env, "demo", "--customers", str(args.customers), "--no-serve", "--seed", "7")
        print(f"demo data loaded in {time.monotonic() - started:.0f} s", flush=True)
    else:
        kequn(env, "migrate", "--verbosity", "0")
    tag = str(os.getpid())
    marketer = f"load-mkt-{tag}"
    password = kequn(env, "user", "add", marketer, "--role", "marketing").strip()
    marketing_token = kequn(env, "token", "create", "--user", marketer).strip()
    integrator = f"load-api-{tag}"
    kequn(env, "user", "add", integrator, "--role", "analyst")
    tokens = [kequn(env, "token", "create", "--user", integrator).strip() for _ in range(4)]
    write_key = kequn(env, "source", "create", f"load-{tag}", "--server").strip().splitlines()[-1]

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "kequn.cli", "serve", "--port", str(port),
         *serve_options],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(data_dir / "server.log", "w"),  # noqa: SIM115 -- lives as long as the server
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_until_up(url, server)
        ids: list[int] = []
        cursor = ""
        for _ in range(10):
            page = fetch_json(f"{url}/api/v1/customers?limit=200{cursor}", tokens[0])
            ids.extend(item["id"] for item in page["items"])
            if not page.get("next_cursor"):
                break
            cursor = f"&cursor={page['next_cursor']}"
        verdict.check("customers to read", bool(ids), f"{len(ids)} ids from the API")
        prefix = str(data_dir / "locust")
        sampler = RssSampler(server.pid, every=2 if args.smoke else 10)
        sampler.start()
        load_env = {
            **env,
            "LOAD_MARKETING_USER": marketer,
            "LOAD_MARKETING_PASSWORD": password,
            "LOAD_MARKETING_TOKEN": marketing_token,
            "LOAD_API_TOKENS": ",".join(tokens),
            "LOAD_WRITE_KEY": write_key,
            "LOAD_CUSTOMER_IDS": ",".join(str(i) for i in ids),
        }
        seconds = max(int(args.minutes * 60), 5)
        ramp = int(args.users / args.spawn_rate + 0.999)
        print(f"starting {args.users} users over {ramp} s, then measuring {seconds} s", flush=True)
        locust = subprocess.run(
            ["locust", "-f", str(HERE / "locustfile.py"), "--headless", "--only-summary",
             "-u", str(args.users), "-r", str(args.spawn_rate), "-t", f"{ramp + seconds}s",
             "--reset-stats",
             "--host", url, "--csv", prefix, "--exit-code-on-error", "0"],
            env=load_env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        sampler.stopped.set()
        sampler.join()
        if locust.returncode != 0:
            verdict.fail(f"locust exited with {locust.returncode}: {locust.stderr[-1500:]}")
            return verdict.finish()
        rows = read_stats(prefix)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)

    print(f"\n{'group':8} {'request':32} {'count':>8} {'fails':>6} {'p50 ms':>7} {'p95 ms':>7} "
          f"{'p99 ms':>7} {'req/s':>7}")  # fmt: skip
    worst: dict[str, float] = {}
    failures = 0
    for row in sorted(rows, key=lambda r: (r["Name"] == "Aggregated", r["Name"])):
        group = group_of(row["Name"])
        p95 = float(row["95%"] or 0)
        if row["Name"] != "Aggregated":
            worst[group] = max(worst.get(group, 0.0), p95)
        else:
            failures = int(row["Failure Count"])
        print(
            f"{group:8} {(row['Type'] + ' ' + row['Name'])[:32]:32} {int(row['Request Count']):>8} "
            f"{int(row['Failure Count']):>6} {float(row['50%'] or 0):>7.0f} {p95:>7.0f} "
            f"{float(row['99%'] or 0):>7.0f} {float(row['Requests/s'] or 0):>7.1f}"
        )
    print("\nserver RSS (master + workers), MB:")
    for at, rss in sampler.samples[:: max(1, len(sampler.samples) // 20)]:
        print(f"  {at:6.0f} s  {rss / 2**20:8.1f}")
    print(f"\nwall time {time.monotonic() - started:.0f} s; data dir {data_dir}", flush=True)

    verdict.check("no failed requests", failures == 0, f"{failures} failed")
    verdict.target(
        "back-office pages p95",
        worst.get("page", 0) < PAGE_P95_MS,
        f"worst page kind p95 {worst.get('page', 0):.0f} ms (target < {PAGE_P95_MS})",
    )
    verdict.target(
        "API p95",
        worst.get("api", 0) < API_P95_MS,
        f"worst API kind p95 {worst.get('api', 0):.0f} ms (target < {API_P95_MS})",
    )
    after_two = [rss for at, rss in sampler.samples if at >= ramp + min(120, seconds / 5)]
    if len(after_two) >= 2:
        growth = (after_two[-1] - after_two[0]) / after_two[0]
        verdict.target(
            "server memory flat",
            growth <= RSS_GROWTH,
            f"RSS {after_two[0] / 2**20:.0f} → {after_two[-1] / 2**20:.0f} MB "
            f"({growth:+.1%}; target within {RSS_GROWTH:.0%})",
        )
    return verdict.finish()


if __name__ == "__main__":
    sys.exit(main())
