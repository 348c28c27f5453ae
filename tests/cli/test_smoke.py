"""End to end: the real `kequn` command sets up a database, then the server answers."""

from __future__ import annotations

import base64
import http.cookiejar
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import psycopg
import pytest
from django_otp.oath import totp

KEQUN = [sys.executable, "-m", "kequn.cli"]


def run_kequn(
    args: list[str], env: dict[str, str], timeout: float = 180
) -> subprocess.CompletedProcess:
    return subprocess.run(KEQUN + args, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def kequn_env(tmp_path: Path):
    """Environment for a scratch installation on the database kind under test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEQUN_")}
    env["KEQUN_DATA_DIR"] = str(tmp_path / "data")
    url = os.environ.get("KEQUN_DATABASE_URL", "")
    scratch = None
    if url.startswith("postgres"):
        scratch = f"kequn_smoke_{uuid.uuid4().hex[:8]}"
        base = url.rsplit("/", 1)[0]
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{scratch}"')
        env["KEQUN_DATABASE_URL"] = f"{base}/{scratch}"
    yield env
    if scratch:
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {seconds} s")


def test_demo_then_serve_360_page_and_api(kequn_env):
    # How fast the demo loads is measured by benchmarks/demo_generate.py, not here.
    setup = run_kequn(["demo", "--customers", "200", "--no-serve", "--quiet"], kequn_env)
    assert setup.returncode == 0, setup.stderr
    password = re.search(r"password: (\S+)", setup.stdout).group(1)
    assert (Path(kequn_env["KEQUN_DATA_DIR"]) / "secret_key").exists()
    # The demo keeps its master key beside the database, and says how to move it.
    assert "master.key" in setup.stderr and "KEQUN_MASTER_KEY_FILE=" in setup.stderr

    again = run_kequn(["demo", "--customers", "200", "--no-serve", "--quiet"], kequn_env)
    assert again.returncode == 0, again.stderr
    assert "already" in again.stderr and "password" not in again.stdout

    token = run_kequn(["token", "create", "--user", "admin"], kequn_env).stdout.strip()
    assert token.startswith("kq_")

    port = free_port()
    server = subprocess.Popen(
        [*KEQUN, "serve", "--port", str(port), "--workers", "1"],
        env=kequn_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/healthz")
        request = urllib.request.Request(
            f"{base}/api/v1/customers?limit=5", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            page = json.load(response)
        assert len(page["items"]) == 5 and page["next_cursor"]
        customer_id = page["items"][0]["id"]

        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        login_url = f"{base}/admin/login/?next=/admin/"
        html = opener.open(login_url, timeout=10).read().decode()
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
        form = urllib.parse.urlencode(
            {"username": "admin", "password": password, "csrfmiddlewaretoken": csrf}
        ).encode()
        setup = opener.open(
            urllib.request.Request(login_url, data=form, headers={"Referer": login_url})
        )
        # The demo admin is a superuser: the first login sets up the second factor.
        assert "/admin/otp/setup/" in setup.url
        setup_html = setup.read().decode()
        secret = re.search(r'id="otp-secret">\s*([A-Z2-7]+)', setup_html).group(1)
        key = base64.b32decode(secret + "=" * (-len(secret) % 8))
        code = str(totp(key)).zfill(6)
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', setup_html).group(1)
        form = urllib.parse.urlencode({"token": code, "csrfmiddlewaretoken": csrf}).encode()
        opener.open(urllib.request.Request(setup.url, data=form, headers={"Referer": setup.url}))
        page_360 = opener.open(f"{base}/admin/customers/customer/{customer_id}/360/", timeout=10)
        body = page_360.read().decode()
        assert page_360.status == 200
        assert page["items"][0]["name"] in body
        static = opener.open(f"{base}/static/unfold/css/styles.css", timeout=10)
        assert static.status == 200
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_bad_input_gets_one_line_and_exit_2(kequn_env, tmp_path):
    cases = [
        ["demo", "--customers", "-5", "--no-serve"],
        ["demo", "--customers", "many", "--no-serve"],
        ["demo", "--frobnicate"],
        ["demo", "--port", "70000"],
        ["no-such-command"],
    ]
    for args in cases:
        result = run_kequn(args, kequn_env, timeout=60)
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("kequn: error:"), (args, result.stderr)
    # A setting that is not a number, or out of its range, is named with its range.
    for name, value in [("KEQUN_LOGIN_FAILURE_LIMIT", "five"), ("KEQUN_EMAIL_RATE", "-1")]:
        result = run_kequn(["check"], dict(kequn_env, **{name: value}), timeout=60)
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().splitlines() == [
            f"kequn: error: {name}={value!r} must be a "
            + (
                "whole number from 1 to 1000"
                if name.endswith("LIMIT")
                else "number from 0 to 1000000"
            )
        ]
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    env = dict(kequn_env, KEQUN_DATA_DIR=str(blocker / "data"))
    result = run_kequn(["demo", "--no-serve"], env, timeout=60)
    assert result.returncode == 2
    assert "not writable" in result.stderr and "Traceback" not in result.stderr
