"""Shared fixtures: users with chosen permissions and their API tokens."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from kequn.security.services import create_api_token


def grant(user: User, *perms: str) -> User:
    """Give a user permissions named app_label.codename."""
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return User.objects.get(pk=user.pk)  # drop the permission cache


class TokenClient(Client):
    """A test client that sends a bearer token and JSON bodies."""

    def __init__(self, token: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.token = token

    def request(self, **request):
        if self.token:
            request.setdefault("HTTP_AUTHORIZATION", f"Bearer {self.token}")
        return super().request(**request)

    def send_json(self, method: str, path: str, data=None):
        return getattr(self, method)(path, data=data, content_type="application/json")


@pytest.fixture
def make_api_client(db):
    """Return a factory: make_api_client(*perms, superuser=False) -> TokenClient."""
    counter = iter(range(1, 10_000))

    def factory(*perms: str, superuser: bool = False) -> TokenClient:
        n = next(counter)
        if superuser:
            user = User.objects.create_superuser(f"admin{n}", password="x")
        else:
            user = grant(User.objects.create_user(f"user{n}", password="x"), *perms)
        _, token = create_api_token(user.username)
        client = TokenClient(token)
        client.user = user
        return client

    return factory


@pytest.fixture(autouse=True)
def clear_cache():
    """Start every test with an empty cache (lists cache their filter choices)."""
    from django.core.cache import cache

    cache.clear()
    yield
