"""Prepare a ready-to-use installation: tables, an admin account, demo data."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management import call_command


def migrate_database(verbosity: int = 0) -> None:
    """Create or update all tables."""
    call_command("migrate", interactive=False, verbosity=verbosity)


def ensure_admin(username: str = "admin") -> str | None:
    """Create the administrator with a random password; return it, or None if one exists."""
    user_model = get_user_model()
    if user_model.objects.filter(is_superuser=True).exists():
        return None
    password = secrets.token_urlsafe(12)
    user_model.objects.create_superuser(username=username, email="", password=password)
    return password
