"""Logging filters that keep the server log to one line per routine client error; JSON lines."""

from __future__ import annotations

import json
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


# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged.
STANDARD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "request",
    "server_time",
}


class JSONFormatter(logging.Formatter):
    """Format each record as one JSON object per line (time, level, logger, message, extras).

    Values passed with `extra=` (request id, user id, view, status, duration) become keys;
    objects that are not JSON (a Django request, a socket) are left out rather than printed,
    because their repr can carry query strings and with them personal data.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key in STANDARD_ATTRIBUTES or key.startswith("_"):
                continue
            if value is None or isinstance(value, str | int | float | bool):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)
