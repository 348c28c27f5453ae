"""Logging filters that keep the server log to one line per routine client error."""

from __future__ import annotations

import logging


class RoutineClientErrorFilter(logging.Filter):
    """Drop the traceback Django attaches to a 4xx it logs (PermissionDenied, Http404, ...).

    A user opening a page their role may not see is routine, not a server fault; the one
    line "Forbidden (Permission denied): /path" says all there is to say. 5xx keep theirs.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
