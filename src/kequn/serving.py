"""Run the WSGI app under gunicorn (used by `kequn serve` and `kequn demo`).

The server runs in a fresh interpreter (exec): the command that starts it has already loaded
Django, the URL conf and, through them, numpy, DuckDB and their native thread pools. Workers
forked from such a process inherit those libraries' state but not their threads, and die
with SIGABRT/SIGSEGV on the way out when the libraries try to join threads that are not
there. A master that never imports the app forks clean workers, which load it themselves.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError
from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from kequn.conf import get_serve_threads, get_serve_workers

# Unix socket paths are limited to 108 bytes (sun_path) on Linux.
MAX_SOCKET_PATH = 100


def check_port_free(host: str, port: int) -> None:
    """Raise CommandError if the port is out of range or the address is already taken."""
    if not 0 < port < 65536:
        raise CommandError(f"--port must be between 1 and 65535, got {port}")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise CommandError(
                f"cannot listen on {host}:{port} ({exc.strerror}); choose another with --port"
            ) from None


def get_control_socket(data_dir: Path, port: int) -> str | None:
    """Return this server's gunicorn control socket path, in its data dir (None: too long).

    gunicorn's default, ~/.gunicorn/gunicorn.ctl, is one path per user: a second server
    removed the first one's socket.
    """
    path = str(Path(data_dir).resolve() / f"gunicorn-{port}.ctl")
    return path if len(path.encode()) <= MAX_SOCKET_PATH else None


def serve(host: str, port: int, workers: int | None = None, threads: int | None = None) -> None:
    """Serve kequn.wsgi on host:port until interrupted, replacing the current process.

    workers and threads default to KEQUN_SERVE_WORKERS and KEQUN_SERVE_THREADS.
    """
    workers, threads = workers or get_serve_workers(), threads or get_serve_threads()
    options = {
        "host": host,
        "port": port,
        "workers": workers,
        "threads": threads,
        "control_socket": get_control_socket(settings.DATA_DIR, port),
        "static_prefix": "/" + settings.STATIC_URL.lstrip("/"),
        # Each worker writes its metrics here; /metrics adds them up (kequn.monitoring).
        "metrics_dir": str(Path(settings.DATA_DIR).resolve() / f"metrics-{port}"),
    }
    print(f"Kequn is serving on http://{host}:{port}/ (Ctrl+C to stop)", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    # A fixed module of this package in a fresh interpreter: no shell, nothing from input.
    os.execv(sys.executable, [sys.executable, "-m", "kequn.serving", json.dumps(options)])  # noqa: S606


def run_gunicorn(options: dict) -> None:
    """Run the gunicorn master; its workers import kequn.wsgi after they are forked."""
    host, port = options["host"], options["port"]
    static_prefix = options["static_prefix"]
    metrics_dir = Path(options["metrics_dir"])
    # Counters of an earlier run of this server would otherwise be added to this one's.
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True, exist_ok=True)

    class KequnLogger(Logger):
        """gunicorn's logger without an access line for every static file."""

        def access(self, resp, req, environ, request_time) -> None:
            if environ.get("PATH_INFO", "").startswith(static_prefix):
                return
            super().access(resp, req, environ, request_time)

        def atoms(self, resp, req, environ, request_time) -> dict:
            """The access line's fields without query strings: searches carry phones and emails."""
            atoms = super().atoms(resp, req, environ, request_time)
            uri = environ.get("RAW_URI", "").split("?", 1)[0]
            atoms["r"] = f"{environ['REQUEST_METHOD']} {uri} {environ['SERVER_PROTOCOL']}"
            atoms["q"] = ""
            atoms["f"] = str(atoms.get("f", "-")).split("?", 1)[0]
            return atoms

    class KequnServer(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
            self.cfg.set("workers", options["workers"])
            self.cfg.set("threads", options["threads"])
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("timeout", 120)
            # Longer than clients' pauses between requests: a connection closed while a client
            # sends on it is a reset error for that client (seen under load at the default 2 s).
            self.cfg.set("keepalive", 30)
            self.cfg.set("accesslog", "-")
            self.cfg.set("logger_class", KequnLogger)
            self.cfg.set("proc_name", "kequn")
            # prometheus_client's multiprocess mode, set before a worker imports it.
            self.cfg.set("raw_env", [f"PROMETHEUS_MULTIPROC_DIR={metrics_dir}"])
            if options["control_socket"]:
                self.cfg.set("control_socket", options["control_socket"])
            else:
                self.cfg.set("control_socket_disable", True)

        def load(self):
            from kequn.wsgi import application  # noqa: PLC0415 -- only a forked worker loads the app (module docstring)

            return application

    KequnServer().run()


if __name__ == "__main__":
    run_gunicorn(json.loads(sys.argv[1]))
