from django_tasks import task

from kequn.security.backups.schedule import run_scheduled_backup


@task()
def nightly_backup_task() -> dict:
    """Back up the database and prune old backups (scheduled daily by `kequn worker`)."""
    return run_scheduled_backup()
