"""Create, check and revoke API tokens; check permissions for services and the API."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from kequn.security.actors import Actor
from kequn.security.audit import services as audit
from kequn.security.models import ApiToken
from kequn.security.permissions import require_permission
from kequn.security.roles import ROLES

TOKEN_PREFIX = "kq_"  # noqa: S105 -- the visible prefix of every token, not a secret


def hash_token(token: str) -> str:
    """Return the SHA-256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def create_api_token(
    username: str,
    name: str = "",
    expires_at: datetime | None = None,
    *,
    by: Actor,
) -> tuple[ApiToken, str]:
    """Create a token for a user; return the record and the plain token (shown only once).

    Without an actor the audit entry names the user of the request being served, if any.
    """
    user = get_user_model().objects.get(username=username)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=token[:10],
        digest=hash_token(token),
        expires_at=expires_at,
    )
    audit.record_event(
        audit.TOKEN_CREATE,
        actor=by,
        target=record,
        detail={"user": user.pk, "name": name, "expires_at": expires_at},
    )
    return record, token


def authenticate_api_token(token: str) -> AbstractBaseUser | None:
    """Return the active user owning a usable token, or None."""
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    record = ApiToken.objects.select_related("user").filter(digest=hash_token(token)).first()
    if record is None or not record.is_usable() or not record.user.is_active:
        return None
    now = timezone.now()
    # Writing on every request would serialise API traffic on SQLite; once a minute is enough.
    if record.last_used_at is None or (now - record.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=record.pk).update(last_used_at=now)
    return record.user


@transaction.atomic
def revoke_api_token(token_id: int, *, by: Actor) -> None:
    """Revoke a token so it no longer authenticates."""
    owner = ApiToken.objects.filter(pk=token_id).values_list("user_id", flat=True).first()
    if ApiToken.objects.filter(pk=token_id, revoked=False).update(revoked=True):
        audit.record_event(
            audit.TOKEN_REVOKE,
            actor=by,
            target_type=ApiToken._meta.label_lower,
            target_id=str(token_id),
            detail={"user": owner},
        )


def require_perm(user: AbstractBaseUser | None, perm: str) -> None:
    """Raise PermissionDenied unless the user holds the permission (app_label.codename)."""
    require_permission(user, perm)


def create_user(
    username: str,
    role: str,
    email: str = "",
    password: str | None = None,
    *,
    by: Actor,
) -> tuple[AbstractBaseUser, str]:
    """Create a back-office user in one role; return the user and the password (generated if none).

    Every role works in the back office, so the user is staff; only the administrator role
    holds permissions over users and roles.
    """
    if role not in ROLES:
        raise ValidationError(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
    model = get_user_model()
    if model.objects.filter(username=username).exists():
        raise ValidationError(f"a user named {username!r} already exists")
    password = password or secrets.token_urlsafe(12)
    # The new account and its role are audited by the model signals, naming `by`.
    with transaction.atomic(), audit.acting_as(by):
        user = model.objects.create_user(username, email=email, password=password, is_staff=True)
        user.groups.set([Group.objects.get(name=role)])
    return user, password


@transaction.atomic
def set_user_role(username: str, role: str, *, by: Actor) -> AbstractBaseUser:
    """Put a user in exactly one role (replacing the roles they had)."""
    if role not in ROLES:
        raise ValidationError(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise ValidationError(f"no user named {username!r}; add one with `kequn user add`")
    with audit.acting_as(by):  # the group and flag changes are audited by the model signals
        others = user.groups.exclude(name=role).filter(name__in=ROLES)
        user.groups.remove(*others)
        user.groups.add(Group.objects.get(name=role))
        if not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
    return user


def get_user_roles(user: AbstractBaseUser) -> list[str]:
    """Return the role names a user holds, in the order of ROLES."""
    names = set(user.groups.values_list("name", flat=True))
    return [role for role in ROLES if role in names]
