"""Errors raised by the analytics package."""

from __future__ import annotations


class AnalyticsInputError(ValueError):
    """Report bad analytics input in one line: file, row, column and the fix."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ):
        parts = []
        if source:
            parts.append(str(source))
        if row is not None:
            parts.append(f"row {row}")
        if column:
            parts.append(f"column {column!r}")
        prefix = ", ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.source = source
        self.row = row
        self.column = column


class InsufficientDataError(ValueError):
    """Signal that there is too little data to fit a model (callers fall back to RFM only)."""
