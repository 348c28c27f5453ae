import logging
import threading
import time

from django.db import close_old_connections
from django_tasks_db.management.commands.db_worker import Command as DBWorkerCommand

from kequn.jobs.recovery import make_worker_id, recover_abandoned_jobs
from kequn.jobs.services import fire_due_schedules, install_default_schedules

logger = logging.getLogger(__name__)


class Command(DBWorkerCommand):
    help = "Run background jobs and fire the schedules (such as the daily analytics refresh)."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        # host:pid:random, so a job whose worker died can be told from one still running.
        parser.set_defaults(worker_id=make_worker_id())

    def handle(self, *args, **options):
        install_default_schedules()
        recover_abandoned_jobs()
        if not options.get("batch"):
            threading.Thread(target=self.run_scheduler, daemon=True, name="scheduler").start()
        else:
            fire_due_schedules()
        super().handle(*args, **options)

    def run_scheduler(self, every_seconds: float = 30.0) -> None:
        while True:
            try:
                recover_abandoned_jobs()
                fire_due_schedules()
            except Exception:  # one bad schedule must not stop the scheduler
                logger.exception("firing schedules failed")
            finally:
                close_old_connections()
            time.sleep(every_seconds)
