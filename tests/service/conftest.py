"""Fixtures of the service tests."""

from __future__ import annotations

import pytest
from django.utils import translation


@pytest.fixture(autouse=True)
def english(settings):
    """Messages in English (the default language is Chinese): most tests read them."""
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield
