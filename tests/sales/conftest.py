"""Sales tests: the browser fixtures of tests/e2e serve the deal-board test here too."""

from tests.e2e.conftest import browser, page

__all__ = ["browser", "page"]
