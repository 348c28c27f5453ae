"""The recommendation job for `kequn worker`: retrain nightly (scheduled by kequn.jobs)."""

from __future__ import annotations

from django_tasks import task

from kequn.recommend.services import train_recommendations
from kequn.security.actors import system_actor


@task()
def train_recommendations_task() -> str:
    """Retrain recommendations on all purchases and store them."""
    return train_recommendations(progress=False, by=system_actor("recommend-training")).model
