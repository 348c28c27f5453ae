from django_tasks import task


@task()
def nightly_backup_task() -> dict:
    """Back up the database and prune old backups (scheduled daily by `kequn worker`)."""
    from kequn.security.backups import run_scheduled_backup

    return run_scheduled_backup()
