"""Loyalty: the back office's sidebar groups (kequn.sidebar adds them before Administration)."""

from __future__ import annotations

from typing import Any

GROUPS: list[dict[str, Any]] = []
