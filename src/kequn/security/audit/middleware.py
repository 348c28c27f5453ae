"""Make the request being served known to audit events raised deep in model code."""

from __future__ import annotations

from kequn.security.audit.services import serving_request


class AuditContextMiddleware:
    """Set the current request for the audit trail (after AuthenticationMiddleware)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with serving_request(request):
            return self.get_response(request)
