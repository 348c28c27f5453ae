"""Panels of the customer 360 page that other apps contribute (orders, events, scores...).

Customers sits below the apps that know what a customer bought, did or is worth, so it cannot
import them. Each of those apps registers its panels here from its ``AppConfig.ready()``: a
template the page includes and a function giving the template's context for one customer.
The page merges every panel's context into its own, so panels may read each other's values
(the header shows the lifecycle stage of the scores panel).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from kequn.customers.models import Customer

# "summary" panels stand above the profile, "timeline" panels below it.
Region = Literal["summary", "timeline"]
PanelContext = Callable[[Customer], dict[str, Any]]


@dataclass(frozen=True)
class ProfilePanel:
    """One panel of the 360 page."""

    key: str
    order: int
    template: str
    get_context: PanelContext
    region: Region = "summary"


_panels: dict[str, ProfilePanel] = {}
_totals: list[Callable[[Customer], Any]] = []


def register_profile_panel(
    key: str,
    *,
    order: int,
    template: str,
    get_context: PanelContext,
    region: Region = "summary",
) -> None:
    """Add a panel to the 360 page (registering a key again replaces it)."""
    _panels[key] = ProfilePanel(key, order, template, get_context, region)


def get_profile_panels(region: Region) -> list[ProfilePanel]:
    """Return the panels of one region in their order."""
    return sorted((p for p in _panels.values() if p.region == region), key=lambda p: p.order)


def build_panel_context(customer: Customer) -> dict[str, Any]:
    """Return the context of every registered panel, merged, with the panels of each region."""
    context: dict[str, Any] = {}
    for panel in sorted(_panels.values(), key=lambda p: p.order):
        context.update(panel.get_context(customer))
    context["summary_panels"] = get_profile_panels("summary")
    context["timeline_panels"] = get_profile_panels("timeline")
    return context


def register_customer_totals(get_totals: Callable[[Customer], Any]) -> None:
    """Name the function giving a customer's purchase totals (commerce registers it)."""
    _totals[:] = [get_totals]


def get_customer_totals(customer: Customer) -> Any:
    """Return the customer's purchase totals from the registered function."""
    if not _totals:
        raise LookupError("no app has registered customer totals (is kequn.commerce installed?)")
    return _totals[0](customer)
