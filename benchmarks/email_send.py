"""Benchmark: personalised emails per minute through Kequn's email channel to a local SMTP sink.

    python benchmarks/email_send.py [--messages 100000] [--connections 4] [--runs 3] [--smoke]

An aiosmtpd server in a separate process accepts and counts every message (and its
Message-ID, so duplicates and losses show). Kequn's side renders each message from one
HTML template with merge fields (content.render: name, city, CLV, products, coupon) and
sends it with the email channel: HTML sanitised and CSS-inlined, a text part, one-click
List-Unsubscribe headers, KEQUN_EMAIL_CONNECTIONS connections in parallel, in batches of
1,000 as the campaign sender claims them. The reference, in the same run on the same sink,
is plain smtplib: one connection, sequential, each message built with the standard
library's email package (text and HTML parts, no sanitising or inlining). Each side runs
--runs times on a fresh sink; medians are printed, with the sending process's peak memory.
Target (issue 16): >= 100,000 emails per minute on a 2-core machine (listmonk's maintainers
quote ~50,000/min). Checks: the sink holds exactly --messages distinct Message-IDs each
run, each with the one-click unsubscribe header. --smoke: 500 messages, one run, target
not judged.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import resource
import statistics
import sys
import tempfile
import time
from typing import Any

from _verdict import Verdict

TEMPLATE_SUBJECT = '{{ first_name | default:"朋友" }}，您的专属优惠来了'
TEMPLATE_HTML = """<html><head><style>
  .box { font-family: sans-serif; color: #333333; max-width: 600px }
  .btn { color: #ffffff; background-color: #e4393c; padding: 8px 16px; text-decoration: none }
  td { padding: 4px 8px; border-bottom: 1px solid #eeeeee }
</style></head><body><div class="box">
<h2>{{ salutation }}，您好！</h2>
<p>感谢您一直以来对客群商城的支持。您在{{ city | default:"本地" }}的会员价值已达 {{ clv | money }}。</p>
{% if products %}<p>根据您的喜好，为您推荐：</p>
<table><tr><td>{{ product_1 }}</td></tr><tr><td>{{ product_2 }}</td></tr><tr><td>{{ product_3 }}</td></tr></table>{% endif %}
<p>专属优惠码：<b>{{ coupon_code }}</b>，7 天内有效。</p>
<p><a class="btn" href="https://shop.example/c/{{ coupon_code }}">立即使用</a></p>
<p style="font-size: 12px">不想再收到此类邮件？<a href="{{ unsubscribe_url }}">退订</a></p>
</div></body></html>"""
CITIES = ["上海", "北京", "深圳", "杭州", "成都", "", "广州"]
NAMES = ["张伟", "王芳", "李娜", "欧阳娜娜", "刘洋", "陈静", "John Smith"]
BATCH = 1000
MESSAGE_ID = re.compile(rb"^Message-ID: <([^>]+)>", re.M)
ONE_CLICK = b"List-Unsubscribe-Post: List-Unsubscribe=One-Click"


def run_sink(ready: Any, done: Any, results: Any, pipelining: bool) -> None:
    """Serve SMTP on an ephemeral port; on `done`, report count, distinct ids and one-click headers."""
    from aiosmtpd.controller import Controller

    class Handler:
        def __init__(self) -> None:
            self.count = 0
            self.ids: set[bytes] = set()
            self.one_click = 0

        async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802 -- aiosmtpd hook name
            session.host_name = hostname
            if pipelining:  # as Postfix, Exim and the large providers offer
                responses.insert(-1, "250-PIPELINING")
            return responses

        async def handle_DATA(self, server, session, envelope):  # noqa: N802 -- aiosmtpd hook name
            self.count += 1
            head = envelope.content[:4096]
            found = MESSAGE_ID.search(head)
            if found:
                self.ids.add(found.group(1))
            if ONE_CLICK in head:
                self.one_click += 1
            return "250 2.0.0 Ok"

    class Ephemeral(Controller):
        def _trigger_server(self) -> None:
            self.port = self.server.sockets[0].getsockname()[1]
            super()._trigger_server()

    handler = Handler()
    controller = Ephemeral(handler, hostname="127.0.0.1", port=0)
    controller.start()
    start = os.times()
    ready.put(controller.port)
    done.wait()
    controller.stop()
    end = os.times()
    cpu = end.user + end.system - start.user - start.system  # serving only, not start-up
    results.put((handler.count, len(handler.ids), handler.one_click, cpu))


class Sink:
    """A fresh SMTP sink process for one run."""

    def __init__(self, *, pipelining: bool) -> None:
        ctx = mp.get_context("spawn")
        self.ready, self.results, self.done = ctx.Queue(), ctx.Queue(), ctx.Event()
        self.process = ctx.Process(
            target=run_sink, args=(self.ready, self.done, self.results, pipelining), daemon=True
        )
        self.process.start()
        self.port = int(self.ready.get(timeout=60))

    def finish(self) -> tuple[int, int, int, float]:
        self.done.set()
        stats = self.results.get(timeout=60)
        self.process.join(timeout=10)
        return stats


def contexts(n: int, start: int) -> list[dict[str, Any]]:
    """Return merge contexts for customers start..start+n, varied like real ones."""
    from kequn.engage.content import split_name

    rows = []
    for i in range(start, start + n):
        name = NAMES[i % len(NAMES)]
        surname, given = split_name(name)
        has_products = i % 4 != 0
        rows.append(
            {
                "id": i,
                "name": name,
                "first_name": given,
                "salutation": f"{surname}{'先生' if i % 2 else '女士'}" if i % 7 != 6 else name,
                "city": CITIES[i % len(CITIES)],
                "clv": 1000 + (i * 37) % 20000 + 0.5,
                "products": "有" if has_products else "",
                "product_1": f"Phone X{i % 9}" if has_products else "",
                "product_2": f"Earbuds Pro {i % 5}" if has_products else "",
                "product_3": "快充充电器 65W" if has_products else "",
                "coupon_code": f"CQ{i:07d}",
                "unsubscribe_url": f"https://shop.example/u/{i:07d}-a1b2c3",
            }
        )
    return rows


def make_dkim_signer() -> Any:
    """Return a DKIM signer with a fresh 2048-bit RSA key."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    from kequn.engage.channels.dkimsign import DKIMSigner

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return DKIMSigner("bench", "shop.example", key)


def send_kequn(port: int, n: int, connections: int, dkim: Any = None) -> float:
    """Send n personalised emails through the email channel; return seconds."""
    from kequn.engage.channels import OutgoingMessage
    from kequn.engage.channels.email import EmailChannel, SMTPServer
    from kequn.engage.content import render

    channel = EmailChannel(
        SMTPServer("127.0.0.1", port, "plain"),
        sender="客群商城 <news@shop.example>",
        connections=connections,
        dkim_key=dkim,
    )
    started = time.perf_counter()
    for start in range(0, n, BATCH):
        batch = [
            OutgoingMessage(
                key=f"k{c['id']:07d}",
                to=f"customer{c['id']}@example.com",
                subject=render(TEMPLATE_SUBJECT, c),
                html=render(TEMPLATE_HTML, c),
                unsubscribe_url=c["unsubscribe_url"],
            )
            for c in contexts(min(BATCH, n - start), start)
        ]
        results = channel.send_batch(batch)
        failed = [r for r in results if r.status != "sent"]
        if failed:
            raise SystemExit(f"kequn: {len(failed)} messages not sent, first: {failed[0].error}")
    elapsed = time.perf_counter() - started
    channel.close()
    return elapsed


def send_reference(port: int, n: int) -> float:
    """Send the same emails with plain smtplib, one connection, sequentially; return seconds."""
    import smtplib
    from email.message import EmailMessage

    from kequn.engage.channels.html import html_to_text
    from kequn.engage.content import render

    started = time.perf_counter()
    smtp = smtplib.SMTP("127.0.0.1", port)
    for start in range(0, n, BATCH):
        for c in contexts(min(BATCH, n - start), start):
            html = render(TEMPLATE_HTML, c)
            msg = EmailMessage()
            msg["From"] = "客群商城 <news@shop.example>"
            msg["To"] = f"customer{c['id']}@example.com"
            msg["Subject"] = render(TEMPLATE_SUBJECT, c)
            msg["Message-ID"] = f"<r{c['id']:07d}@shop.example>"
            msg["List-Unsubscribe"] = f"<{c['unsubscribe_url']}>"
            msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
            msg.set_content(html_to_text(html))
            msg.add_alternative(html, subtype="html")
            smtp.send_message(msg)
    smtp.quit()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=None, help="default 100,000 (smoke: 500)")
    parser.add_argument("--connections", type=int, default=4, help="SMTP connections in parallel")
    parser.add_argument(
        "--runs", type=int, default=None, help="runs per side, median reported (smoke: 1)"
    )
    parser.add_argument(
        "--dkim", action="store_true", help="sign every Kequn email with DKIM (RSA 2048)"
    )
    parser.add_argument(
        "--lockstep", action="store_true", help="the sink does not offer PIPELINING"
    )
    parser.add_argument("--smoke", action="store_true", help="a small run for CI")
    args = parser.parse_args()
    n = args.messages if args.messages is not None else (500 if args.smoke else 100_000)
    runs = args.runs if args.runs is not None else (1 if args.smoke else 3)
    if n <= 0 or runs <= 0 or args.connections <= 0:
        parser.error("--messages, --runs and --connections must be positive")
    verdict = Verdict("email_send", smoke=args.smoke)
    verdict.conditions(
        f"{n:,} messages per run, {runs} run(s) per side, warm, in this process; the aiosmtpd sink "
        f"in its own process (fresh each run); Kequn with {args.connections} connections, reference "
        f"plain smtplib with one; sink offers PIPELINING: {'no' if args.lockstep else 'yes'}; DKIM {'on (Kequn side)' if args.dkim else 'off'}; "
        f"{os.cpu_count()} CPUs shared with whatever else runs"
    )
    os.environ.setdefault("KEQUN_DATA_DIR", tempfile.mkdtemp(prefix="kequn-bench-email-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kequn.settings")
    import django

    django.setup()

    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    signer = make_dkim_signer() if args.dkim else None
    sides = {
        "kequn": lambda port: send_kequn(port, n, args.connections, signer),
        "smtplib": lambda port: send_reference(port, n),
    }
    seconds: dict[str, list[float]] = {name: [] for name in sides}
    cpu: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
    peak_kb = 0
    for run in range(runs):
        for name, send in sides.items():
            sink = Sink(pipelining=not args.lockstep)
            before = os.times()
            try:
                elapsed = send(sink.port)
            finally:
                after = os.times()
                count, distinct, one_click, sink_cpu = sink.finish()
            seconds[name].append(elapsed)
            sender_cpu = (after.user + after.system - before.user - before.system) / n * 1e6
            cpu[name].append((sender_cpu, sink_cpu / n * 1e6))
            if name == "kequn":
                peak_kb = max(peak_kb, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
            print(
                f"run {run + 1} {name:8s} {elapsed:7.2f} s  {n / elapsed * 60:>10,.0f}/min   CPU per "
                f"message: sender {cpu[name][-1][0]:5.0f} µs, sink {cpu[name][-1][1]:5.0f} µs",
                flush=True,
            )
            verdict.check(
                f"run {run + 1} {name}: every message arrived exactly once with one-click unsubscribe",
                count == distinct == one_click == n,
                f"{count:,} received, {distinct:,} distinct ids, {one_click:,} one-click, of {n:,}",
            )
    rate = {name: n / statistics.median(values) * 60 for name, values in seconds.items()}
    print(
        f"\nmedian: kequn {rate['kequn']:,.0f}/min, smtplib reference {rate['smtplib']:,.0f}/min, "
        f"ratio {rate['kequn'] / rate['smtplib']:.2f}x; peak memory of the sender "
        f"{peak_kb / 1024:.0f} MB ({baseline_kb / 1024:.0f} MB with Django loaded, before any send)"
    )
    sender_us = statistics.median(c[0] for c in cpu["kequn"])
    sink_us = statistics.median(c[1] for c in cpu["kequn"])
    # The sender and the sink each need their CPU time per message; on two otherwise idle
    # cores each gets one, so the slower of the two sets the pace.
    capacity = 60e6 / max(sender_us, sink_us)
    print(
        f"CPU per message (median): sender {sender_us:.0f} µs, sink {sink_us:.0f} µs -> "
        f"{capacity:,.0f}/min if each had one of two idle cores (the wall-clock rate above is "
        f"what this machine gave while shared; load average {os.getloadavg()[0]:.1f} now)"
    )
    verdict.target(">= 100,000 emails/min", rate["kequn"] >= 100_000, f"{rate['kequn']:,.0f}/min")
    return verdict.finish()


if __name__ == "__main__":
    sys.exit(main())
