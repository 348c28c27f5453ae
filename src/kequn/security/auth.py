"""Authentication for the REST API: bearer tokens, or the back-office session."""

from __future__ import annotations

from django.http import HttpRequest
from ninja.security import HttpBearer, SessionAuth

from kequn.security.services import authenticate_api_token


class TokenAuth(HttpBearer):
    """Accept `Authorization: Bearer kq_...` tokens created with `kequn token create`."""

    def authenticate(self, request: HttpRequest, token: str):
        user = authenticate_api_token(token)
        if user is not None:
            request.user = user
        return user


api_auth = [TokenAuth(), SessionAuth()]
