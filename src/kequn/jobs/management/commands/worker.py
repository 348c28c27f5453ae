import logging
import threading
import time

from django.db import close_old_connections
from django_tasks_db.management.commands.db_worker import Command as DBWorkerCommand

from kequn.jobs.services import fire_due_schedules, install_default_schedules

logger = logging.getLogger(__name__)


class Command(DBWorkerCommand):
    help = "Run background jobs and fire the schedules (such as the daily analytics refresh)."

    def handle(self, *args, **options):
        install_default_schedules()
        if not options.get("batch"):
            threading.Thread(target=self.run_scheduler, daemon=True, name="scheduler").start()
        else:
            fire_due_schedules()
        super().handle(*args, **options)

    def run_scheduler(self, every_seconds: float = 30.0) -> None:
        while True:
            try:
                fire_due_schedules()
            except Exception:  # one bad schedule must not stop the scheduler
                logger.exception("firing schedules failed")
            finally:
                close_old_connections()
            time.sleep(every_seconds)
