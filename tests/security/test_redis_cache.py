"""KEQUN_REDIS_URL: the cache moves to Redis and rate-limit counters add up across processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379

# Run in a fresh interpreter (settings read KEQUN_REDIS_URL once, at start): four /v1/batch
# requests of one write key through the rate limiter; print the backend and the statuses.
CHILD = """
import base64, json, django
django.setup()
from django.conf import settings
from django.http import HttpResponse
from django.test import RequestFactory
from kequn.security.middleware import RateLimitMiddleware
key = base64.b64encode(b"write-key-shared:").decode()
request = RequestFactory().post("/v1/batch", b"{}", content_type="application/json",
                                HTTP_AUTHORIZATION=f"Basic {key}")
limiter = RateLimitMiddleware(lambda request: HttpResponse())
statuses = [limiter(request).status_code for _ in range(int(__import__("sys").argv[1]))]
print(json.dumps({"backend": settings.CACHES["default"]["BACKEND"], "statuses": statuses}))
"""


@pytest.fixture
def redis_db():
    """Return an empty Redis database number of this test worker; fail if Redis is down."""
    import redis

    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw")
    number = 9 + int(worker[2:] or 0) % 6  # 9..14: one per worker, away from db 0
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=number, socket_timeout=2)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.fail(
            f"Redis is not answering on {REDIS_HOST}:{REDIS_PORT}: install and start "
            "redis-server (scripts/test.sh does both when run as root)",
            pytrace=False,
        )
    client.flushdb()
    yield number, client
    client.flushdb()


def run_child(tmp_path, name: str, db: int, requests: int) -> dict:
    """Run the limiter in a new process with a data directory (and file cache) of its own,
    as on another host of the same installation."""
    env = {
        **os.environ,
        "KEQUN_REDIS_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{db}",
        "KEQUN_DATA_DIR": str(tmp_path / name),
        # Two hosts of one installation share the secret key (counter names derive from it).
        "KEQUN_SECRET_KEY": "shared-secret-of-the-installation-" + "x" * 30,
        "KEQUN_COLLECT_RATE": "3/24hour",  # one fixed window for the whole test
        "DJANGO_SETTINGS_MODULE": "kequn.settings",
    }
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(requests)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_rate_limit_counters_are_shared_through_redis(tmp_path, redis_db):
    db, client = redis_db
    first = run_child(tmp_path, "worker-a", db, 2)
    assert first == {
        "backend": "django.core.cache.backends.redis.RedisCache",
        "statuses": [200, 200],
    }
    assert client.dbsize() > 0  # the counter lives in Redis, not in a file of worker-a
    # Another process with another data directory (so no shared file cache) sees the count:
    # its second request is the fourth in the window and is refused.
    second = run_child(tmp_path, "worker-b", db, 2)
    assert second["statuses"] == [200, 429]
