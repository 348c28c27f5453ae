"""Recurring jobs fired by `kequn worker`."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Schedule(models.Model):
    """A task enqueued every `interval_minutes`, first at `next_run_at`."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    task_path = models.CharField(
        _("task"), max_length=200, help_text=_("Import path of a django-tasks task.")
    )
    interval_minutes = models.PositiveIntegerField(_("every (minutes)"), default=24 * 60)
    next_run_at = models.DateTimeField(_("next run at"))
    last_enqueued_at = models.DateTimeField(_("last enqueued at"), null=True, blank=True)
    enabled = models.BooleanField(_("enabled"), default=True)

    class Meta:
        verbose_name = _("schedule")
        verbose_name_plural = _("schedules")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
