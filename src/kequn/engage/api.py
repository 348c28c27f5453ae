"""Engagement API: the routers kequn.api mounts, as (prefix, router) pairs."""

from __future__ import annotations

from ninja import Router

routers: list[tuple[str, Router]] = []
