"""Run the WSGI app under gunicorn, in process (used by `kequn serve` and `kequn demo`)."""

from __future__ import annotations

import socket
import sys

from django.core.management.base import CommandError


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


def serve(host: str, port: int, workers: int = 2) -> None:
    """Serve kequn.wsgi on host:port until interrupted."""
    from gunicorn.app.base import BaseApplication

    class KequnServer(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", 4)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("timeout", 120)
            self.cfg.set("accesslog", "-")
            self.cfg.set("proc_name", "kequn")

        def load(self):
            from kequn.wsgi import application

            return application

    print(f"Kequn is serving on http://{host}:{port}/ (Ctrl+C to stop)", file=sys.stderr)
    KequnServer().run()
