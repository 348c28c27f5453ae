from django.core.management.base import BaseCommand, CommandError

from kequn.serving import check_port_free, serve


class Command(BaseCommand):
    help = "Serve the back office and the API with a production server (gunicorn)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=2)

    def handle(self, *args, host: str, port: int, workers: int, **options):
        if workers < 1:
            raise CommandError("--workers must be at least 1")
        check_port_free(host, port)
        serve(host, port, workers)
