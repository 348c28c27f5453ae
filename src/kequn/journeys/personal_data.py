"""The journeys app's personal data: a person's enrollments, their history and yearly dates."""

from __future__ import annotations

from kequn.journeys.models import CustomerDate, Enrollment, EnrollmentEvent
from kequn.security.personal_data import register

register(
    Enrollment,
    path="customer",
    export_as="journeys",
    position=200,
    fields=[
        "id",
        "journey_id",
        "state",
        "current_step",
        "wake_at",
        "entered_at",
        "left_at",
        "exit_reason",
        "entry_key",
    ],
    related=["journey__name"],
    order_by=["entered_at", "id"],
)
register(
    EnrollmentEvent,
    path="enrollment__customer",
    export_as="journey_history",
    position=210,
    fields=["enrollment_id", "journey_id", "kind", "step_id", "branch", "detail", "at"],
    order_by=["at", "id"],
)
# Derived from the birthday and the orders (both exported by their own apps); dropped with
# the person and while their processing is restricted, rebuilt when it is lifted.
register(CustomerDate, path="customer", derived=True)
