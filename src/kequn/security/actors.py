"""Name who makes a change: a signed-in user, an operator at the command line, or a job.

Every write service takes a keyword-only ``by``. The back office and the API pass the request's
user; CLI commands pass the operator named with ``--by`` (or the system account of the shell
user); jobs pass ``system_actor("job name")``. The audit trail records the name either way.
"""

from __future__ import annotations

import getpass
from argparse import ArgumentParser
from dataclasses import dataclass
from typing import Any, TypeAlias

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.management import CommandError


class UnknownOperatorError(CommandError):
    """The operator named on the command line is not an active user (a one-line CLI error)."""


@dataclass(frozen=True)
class SystemActor:
    """A change made by the system itself: a scheduled job or an unattended command."""

    name: str
    pk: None = None
    is_authenticated: bool = True
    is_active: bool = True
    # Jobs see every customer and hold every permission: scoping is for people.
    is_superuser: bool = True
    is_staff: bool = False

    def get_username(self) -> str:
        """Return the name the audit trail shows, e.g. "system:nightly-refresh"."""
        return self.name

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        """Return True: a job may do whatever its code does."""
        return True

    def has_perms(self, perms: Any, obj: Any = None) -> bool:
        """Return True (see has_perm)."""
        return True

    def __str__(self) -> str:
        return self.name


Actor: TypeAlias = AbstractBaseUser | SystemActor


def system_actor(job: str) -> SystemActor:
    """Return the actor of a job, named "system:<job>" on the audit trail."""
    return SystemActor(f"system:{job}")


def get_user_or_none(by: Actor | None) -> AbstractBaseUser | None:
    """Return the user behind an actor for a foreign key (None for the system)."""
    return by if isinstance(by, AbstractBaseUser) and by.pk is not None else None


def add_operator_argument(parser: ArgumentParser) -> None:
    """Add --by USERNAME to a management command: the operator the audit trail names."""
    parser.add_argument(
        "--by",
        metavar="USERNAME",
        default="",
        help="the user this change is made as, named on the audit trail "
        "[default: the system, as cli:<shell user>]",
    )


def get_operator(username: str | None) -> Actor:
    """Return the active user named on the command line, or the shell user's system actor."""
    if not username:
        try:
            shell_user = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (some containers)
            shell_user = "unknown"
        return SystemActor(f"cli:{shell_user}")
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise UnknownOperatorError(
            f"--by {username}: no active user has that name; "
            "list users with `kequn user list` or leave --by out"
        )
    return user
