"""Who may do what with journeys: marketing manages them, analysts read them."""

from __future__ import annotations

from kequn.security.permissions import register_role_permissions

# Pausing and resuming is a change of the journey; enrolments are the runner's work alone.
ROLE_GRANTS = {
    "marketing": [
        "journeys.view_journey",
        "journeys.add_journey",
        "journeys.change_journey",
        "journeys.delete_journey",
        "journeys.view_enrollment",
        "journeys.view_enrollmentevent",
    ],
    "analyst": [
        "journeys.view_journey",
        "journeys.view_enrollment",
        "journeys.view_enrollmentevent",
    ],
    "service": ["journeys.view_enrollment", "journeys.view_enrollmentevent"],
    "sales": ["journeys.view_enrollment", "journeys.view_enrollmentevent"],
}


def register_journey_permissions() -> None:
    """Add the journeys permissions to the roles."""
    register_role_permissions(ROLE_GRANTS)
