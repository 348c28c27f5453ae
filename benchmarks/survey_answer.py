"""Benchmark: the public survey answer page under 50 concurrent respondents (p95 < 100 ms).

Run: python benchmarks/survey_answer.py [--respondents 50] [--answers 400] [--think 1.0]
     [--workers 2] [--database-url postgresql://...] [--smoke]
Creates a scratch data directory (SQLite there, or the PostgreSQL database given), one NPS
survey and --answers invitations, starts `kequn serve` (gunicorn, gthread) on a free port,
then runs --respondents threads at once. Each respondent takes the next invitation, opens
its page (GET /s/<token>/), reads for an exponential think time of mean --think seconds,
and posts a score with a comment (POST, which stores the answer, analyses the comment and
opens a follow-up ticket for a detractor). --think 0 sends back to back (a saturation test).
Reference, in the same run and the same threads: GET /healthz, the server's cheapest page,
which shows what the machine and server add to every request.
Target: p95 of the answer page, GET and POST each, under 100 ms; every answer stored once.
--smoke: 8 respondents, 40 answers on SQLite, target not judged.
"""

from __future__ import annotations

import argparse
import os
import queue
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

from _verdict import Verdict, set_smoke_tag

TARGET_MS = 100.0
COMMENTS = [
    "物流太慢，等了两周才到", "客服回复很及时，谢谢", "质量不错，会再买", "包装破损，希望改进",
    "The delivery was late again", "Great service, thank you", "", "价格有点贵",
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare(n: int) -> list[str]:
    """Migrate, create a survey and n invited customers; return their answer-page tokens."""
    import django

    django.setup()
    from django.core.management import call_command

    from kequn.customers.models import Customer
    from kequn.feedback.services import build_token, create_survey, invite_customers
    from kequn.security.actors import system_actor

    call_command("migrate", verbosity=0)
    by = system_actor("benchmark")
    Customer.objects.bulk_create(
        [Customer(name=f"答卷人{i}", preferred_language="zh-hans") for i in range(n)],
        batch_size=1000,
    )
    ids = list(Customer.objects.order_by("id").values_list("id", flat=True))
    survey = create_survey(name="bench NPS", by=by)
    invited = invite_customers(survey=survey, customer_ids=ids, by=by)
    from django.db import connections

    connections.close_all()
    return [build_token(invitation) for invitation in invited.created]


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


def timed(request: urllib.request.Request | str) -> tuple[float, int]:
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 -- local
            answer.read()
            status = answer.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    return (time.perf_counter() - start) * 1000, status


def respondent(url: str, tokens: queue.Queue, think: float, seed: int, out: dict) -> None:
    rng = random.Random(seed)
    while True:
        try:
            token = tokens.get_nowait()
        except queue.Empty:
            return
        ms, status = timed(f"{url}/healthz")
        out["healthz"].append(ms)
        ms, status = timed(f"{url}/s/{token}/")
        out["get"].append(ms)
        out["statuses"].append(status)
        if think:
            time.sleep(rng.expovariate(1 / think))
        body = urllib.parse.urlencode(
            {"score": rng.randint(0, 10), "comment": rng.choice(COMMENTS)}
        ).encode()
        post = urllib.request.Request(f"{url}/s/{token}/", data=body, method="POST")  # noqa: S310
        ms, status = timed(post)
        out["post"].append(ms)
        out["statuses"].append(status)
        if think:
            time.sleep(rng.expovariate(1 / think))


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 2 else values[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--respondents", type=int, default=50)
    parser.add_argument("--answers", type=int, default=400)
    parser.add_argument("--think", type=float, default=1.0, help="mean think time (s); 0: none")
    parser.add_argument("--workers", type=int, default=2, help="kequn serve --workers")
    parser.add_argument("--database-url", default="", help="default: SQLite in a scratch dir")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        set_smoke_tag()
        args.respondents, args.answers, args.think, args.workers = 8, 40, 0.05, 1
    scratch = Path(tempfile.mkdtemp(prefix="kequn-bench-survey-"))
    env = {
        "KEQUN_DATA_DIR": str(scratch),
        "DJANGO_SETTINGS_MODULE": "kequn.settings",
        "KEQUN_LOG_LEVEL": "ERROR",
        "KEQUN_API_IP_RATE": "off",
        "KEQUN_LOGIN_RATE": "off",
    }
    os.environ.update(env)
    if args.database_url:
        os.environ["KEQUN_DATABASE_URL"] = args.database_url
    else:
        os.environ.pop("KEQUN_DATABASE_URL", None)
    database = "PostgreSQL" if args.database_url.startswith("postgres") else "SQLite"
    verdict = Verdict("survey_answer", smoke=args.smoke)
    verdict.conditions(
        f"kequn serve --workers {args.workers} on {database}; {args.respondents} respondents at "
        f"once, {args.answers} answers, think time mean {args.think:g} s; "
        f"load average before: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)"
    )
    warm = 4 * args.workers
    tokens_list = prepare(args.answers + warm)
    warm_tokens, tokens_list = tokens_list[:warm], tokens_list[warm:]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "kequn.cli", "serve", "--port", str(port),
         "--workers", str(args.workers)],
        env=dict(os.environ), stdout=subprocess.DEVNULL,
        stderr=open(scratch / "server.log", "w"),  # noqa: SIM115 -- lives as long as the server
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_until_up(url, server)
        # Untimed answers first: each worker loads the word lists of the text analysis once.
        for token in warm_tokens:
            body = urllib.parse.urlencode({"score": 9, "comment": "很好"}).encode()
            timed(urllib.request.Request(f"{url}/s/{token}/", data=body, method="POST"))  # noqa: S310
        tokens: queue.Queue = queue.Queue()
        for token in tokens_list:
            tokens.put(token)
        out: dict[str, list] = {"get": [], "post": [], "healthz": [], "statuses": []}
        threads = [
            threading.Thread(target=respondent, args=(url, tokens, args.think, i, out))
            for i in range(args.respondents)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
    from django.db import connections

    from kequn.feedback.models import Invitation, Response

    connections.close_all()
    answered = Response.objects.count() - warm
    answered_invitations = Invitation.objects.filter(answered_at__isnull=False).count() - warm
    connections.close_all()
    shutil.rmtree(scratch, ignore_errors=True)
    print(f"{len(out['post']):,} answers in {wall:.1f} s ({len(out['post']) / wall:.1f}/s)")
    for name, values in (("answer page GET", out["get"]), ("answer POST", out["post"]),
                         ("reference /healthz", out["healthz"])):  # fmt: skip
        print(
            f"  {name:20s} median {statistics.median(values):7.1f} ms   p95 {p95(values):7.1f} ms"
            f"   max {max(values):7.1f} ms   ({len(values):,} requests)"
        )
    print(f"  load average after: {os.getloadavg()[0]:.1f}")
    bad = [s for s in out["statuses"] if s != 200]
    verdict.check("every request answered 200", not bad, f"{len(bad)} others: {sorted(set(bad))}")
    verdict.check(
        "every answer stored once",
        answered == args.answers and answered_invitations == args.answers,
        f"{answered:,} responses for {args.answers:,} invitations",
    )
    for name, values in (("GET", out["get"]), ("POST", out["post"])):
        verdict.target(
            f"answer page {name} p95 under {TARGET_MS:.0f} ms",
            p95(values) < TARGET_MS,
            f"{p95(values):.1f} ms at {args.respondents} respondents",
        )
    return verdict.finish()


if __name__ == "__main__":
    sys.exit(main())
