"""`kequn serve` as a real process: quiet log, clean shutdown, several servers on one machine."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

KEQUN = [sys.executable, "-m", "kequn.cli"]
# What a worker killed on its way out leaves in gunicorn's log.
CRASH_SIGNS = ("SIGSEGV", "SIGABRT", "terminate called", "Traceback", "was sent SIG")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """Return this process's environment without its KEQUN_* settings, plus these."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEQUN_")}
    env.update(settings, KEQUN_DATA_DIR=str(data_dir))
    return env


def fetch(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


class Server:
    """One `kequn serve` subprocess with its own data directory and port."""

    def __init__(
        self, data_dir: Path, options: tuple[str, ...] = ("--workers", "2"), **settings: str
    ) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Each server on the embedded database of its own data directory: what is tested is
        # the process (log, signals, control socket), the same on either database.
        self.process = subprocess.Popen(
            [*KEQUN, "serve", "--port", str(self.port), *options],
            env=make_env(data_dir, **settings),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_until_up(self, seconds: float = 90) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"kequn serve exited early:\n{self.process.stdout.read()}")
            try:
                if fetch(f"{self.url}/healthz") == 200:
                    return
            except OSError:
                time.sleep(0.3)
        pytest.fail(f"kequn serve did not answer on {self.url} in {seconds} s")

    def stop(self) -> tuple[int, str]:
        """Send SIGTERM; return the exit code and everything the server printed."""
        self.process.send_signal(signal.SIGTERM)
        output, _ = self.process.communicate(timeout=60)
        return self.process.returncode, output


@pytest.mark.slow
def test_two_servers_serve_quietly_and_stop_cleanly(tmp_path):
    first, second = Server(tmp_path / "one"), Server(tmp_path / "two")
    try:
        first.wait_until_up()
        second.wait_until_up()
        # Each server's control socket sits in its own data directory, not in $HOME.
        assert (first.data_dir / f"gunicorn-{first.port}.ctl").is_socket()
        assert (second.data_dir / f"gunicorn-{second.port}.ctl").is_socket()
        for server in (first, second):
            assert fetch(f"{server.url}/admin/login/") == 200
            assert fetch(f"{server.url}/static/kequn/kequn.css") == 200
            assert fetch(f"{server.url}/no-such-page/") == 404

        code, output = first.stop()
        # Stopping one leaves the other serving, its control socket in place.
        assert fetch(f"{second.url}/healthz") == 200
        assert (second.data_dir / f"gunicorn-{second.port}.ctl").is_socket()
        second_code, second_output = second.stop()
    finally:
        for server in (first, second):
            if server.process.poll() is None:
                server.process.kill()
                server.process.wait()

    for exit_code, log in ((code, output), (second_code, second_output)):
        assert exit_code == 0, log
        assert not [sign for sign in CRASH_SIGNS if sign in log], log
        assert "Handling signal: term" in log and "Shutting down: Master" in log
        assert '"GET /admin/login/ HTTP/1.1" 200' in log
        # Static files are not logged one line per request; a 404 is one line.
        assert "/static/" not in log
        assert log.count("Not Found: /no-such-page/") == 1
    assert not (first.data_dir / f"gunicorn-{first.port}.ctl").exists()


def test_server_size_comes_from_the_settings(tmp_path):
    server = Server(tmp_path, (), KEQUN_SERVE_WORKERS="3", KEQUN_SERVE_THREADS="1")
    try:
        server.wait_until_up()
        assert fetch(f"{server.url}/admin/login/") == 200
        code, output = server.stop()
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
    assert code == 0, output
    assert output.count("Booting worker with pid") == 3, output


@pytest.mark.parametrize(
    ("arguments", "settings", "message"),
    [
        (
            (),
            {"KEQUN_SERVE_THREADS": "many"},
            "KEQUN_SERVE_THREADS='many' must be a whole number from 1 to 64",
        ),
        (
            (),
            {"KEQUN_SERVE_WORKERS": "0"},
            "KEQUN_SERVE_WORKERS='0' must be a whole number from 1 to 64",
        ),
        (("--threads", "0"), {}, "--threads must be at least 1"),
    ],
)
def test_a_bad_server_size_is_refused_in_one_line(tmp_path, arguments, settings, message):
    result = subprocess.run(
        [*KEQUN, "serve", "--port", str(free_port()), *arguments],
        env=make_env(tmp_path, **settings),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
