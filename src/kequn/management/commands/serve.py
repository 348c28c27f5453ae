from django.core.management.base import BaseCommand, CommandError

from kequn.conf import ConfigError, get_serve_threads, get_serve_workers
from kequn.serving import check_port_free, serve


class Command(BaseCommand):
    help = "Serve the back office and the API with a production server (gunicorn)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--workers", type=int, help="worker processes [KEQUN_SERVE_WORKERS, default 4]"
        )
        parser.add_argument(
            "--threads",
            type=int,
            help="threads (and database connections) per worker [KEQUN_SERVE_THREADS, default 2]",
        )

    def handle(
        self, *args, host: str, port: int, workers: int | None, threads: int | None, **options
    ):
        try:
            workers = get_serve_workers() if workers is None else workers
            threads = get_serve_threads() if threads is None else threads
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        if workers < 1:
            raise CommandError("--workers must be at least 1")
        if threads < 1:
            raise CommandError("--threads must be at least 1")
        check_port_free(host, port)
        serve(host, port, workers, threads)
