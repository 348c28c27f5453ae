"""Response headers that keep personal data out of caches.

API answers carry customers' names, phones and emails: a shared proxy or the browser's disk
cache must not keep them. Every answer under /api/ (errors included, and downloads such as
segment exports and privacy zips) gets `Cache-Control: no-store`. Back-office pages already
get it from the admin's never_cache.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers

API_PREFIX = "/api/"


class NoStoreMiddleware:
    """Mark every API answer as not to be stored by any cache."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith(API_PREFIX):
            # no-cache, no-store, must-revalidate, private, max-age=0 (and Expires now).
            add_never_cache_headers(response)
        return response
