"""Builders for journey tests."""

from __future__ import annotations

import pytest

from kequn.journeys.services import create_journey
from kequn.security.actors import system_actor

BY = system_actor("tests")


@pytest.fixture
def make_journey(db):
    """Return a factory: make_journey(steps, trigger="...", **options) -> an active Journey."""
    counter = iter(range(1, 10_000))

    def factory(steps, trigger_kind="event", trigger_config=None, **options):
        options.setdefault("activate", True)
        if trigger_config is None and trigger_kind == "event":
            trigger_config = {"event": "Product Viewed"}
        return create_journey(
            name=f"journey {next(counter)}",
            trigger_kind=trigger_kind,
            trigger_config=trigger_config or {},
            steps=steps,
            by=BY,
            **options,
        )

    return factory
