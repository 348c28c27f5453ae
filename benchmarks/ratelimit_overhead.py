"""Benchmark: what the rate limiter adds to one request, per cache backend.

    python benchmarks/ratelimit_overhead.py [--requests 5000] [--redis redis://127.0.0.1:6379/15]
        [--smoke]

Runs RateLimitMiddleware in front of an empty view for a /v1/batch call (write-key limit
on, as with KEQUN_COLLECT_RATE) and for an /api/ call (per-address and per-token limits),
with the limiter switched off as the reference, on the file cache (the default), memory and
Redis. Prints microseconds per request and the added share of a 100-event /v1/batch request
at the 10,000 events/s target (10 ms per request). The limiter on and off run warm, in the
same process, alternately on the same prepared requests. Target (set here; no issue sets
one): the limiter adds at most 10 % of that 10 ms /v1/batch request (1,000 µs) on every
backend; the /api/ cost is printed.
Before timing, each backend must actually limit: with 3 requests a minute the fourth gets
429. Exit status 1 when a backend is unreachable (Redis included), does not limit, or
misses the target. --smoke: 200 requests, target not judged.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import tempfile
import time

from _verdict import Verdict


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=None, help="default 5,000 (smoke: 200)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--smoke", action="store_true", help="a small run for CI")
    args = parser.parse_args()
    if args.requests is None:
        args.requests = 200 if args.smoke else 5000
    if args.requests <= 0:
        parser.error("--requests must be positive")
    verdict = Verdict("ratelimit_overhead", smoke=args.smoke)
    verdict.conditions("limiter on and off both warm, in this process, on the same requests")
    tmp = tempfile.mkdtemp(prefix="kequn-bench-rl-")
    os.environ.setdefault("KEQUN_DATA_DIR", tmp)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kequn.settings")
    import django

    django.setup()
    from django.core.cache import caches
    from django.http import HttpResponse
    from django.test import RequestFactory, override_settings

    from kequn.security.middleware import RateLimitMiddleware

    backends = {
        "file": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": os.path.join(tmp, "cache"),
        },
        "memory": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "redis": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": args.redis},
    }
    factory = RequestFactory()
    key = base64.b64encode(b"write-key-1:").decode()
    batch = factory.post(
        "/v1/batch", b"{}", content_type="application/json", HTTP_AUTHORIZATION=f"Basic {key}"
    )
    api = factory.get("/api/v1/customers", HTTP_AUTHORIZATION="Bearer kq_benchmark_token")
    limiter = RateLimitMiddleware(lambda request: HttpResponse())

    def per_request(request) -> float:
        start = time.perf_counter()
        for _ in range(args.requests):
            limiter(request)
        return (time.perf_counter() - start) / args.requests * 1e6

    print(f"{args.requests} requests each; µs per request (reference: limiter off)")
    for name, backend in backends.items():
        with override_settings(
            CACHES={"default": backend},
            KEQUN_COLLECT_RATE="1000000/min",
            KEQUN_API_RATE="1000000/min",
            KEQUN_API_IP_RATE="1000000/min",
        ):
            try:
                caches["default"].clear()
            except Exception as exc:  # an unreachable backend fails the run
                verdict.fail(f"{name}: the cache backend is unreachable: {exc}")
                continue
            with override_settings(KEQUN_COLLECT_RATE="3/min", KEQUN_API_RATE="3/min"):
                statuses = [limiter(batch).status_code for _ in range(4)]
                statuses += [limiter(api).status_code for _ in range(4)]
            caches["default"].clear()
            verdict.check(
                f"{name}: the fourth request in a minute over a 3/min limit gets 429",
                statuses == [200, 200, 200, 429] * 2,
                f"/v1/batch and /api/ statuses {statuses}",
            )
            batch_on, api_on = per_request(batch), per_request(api)
            with override_settings(
                KEQUN_COLLECT_RATE="off", KEQUN_API_RATE="off", KEQUN_API_IP_RATE="off"
            ):
                batch_off, api_off = per_request(batch), per_request(api)
        added = batch_on - batch_off
        print(
            f"{name:7s} /v1/batch {batch_on:7.1f} (off {batch_off:5.1f}, +{added:6.1f} = "
            f"{added / 10_000:.2%} of a 10 ms batch)   /api/ {api_on:7.1f} (off {api_off:5.1f})"
        )
        verdict.target(f"{name}: limiter adds <= 1,000 µs to a /v1/batch request", added <= 1000,
                       f"+{added:.0f} µs")  # fmt: skip
    return verdict.finish()


if __name__ == "__main__":
    sys.exit(main())
