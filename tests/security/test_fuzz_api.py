"""Fuzz the REST API with schemathesis: every operation, as every role and as a superuser.

The schema is the one the server publishes at /api/openapi.json; requests go through the
Django WSGI application in process, so each test's database transaction holds the data and
is rolled back afterwards. Hypothesis runs derandomised (the same cases on every run) with a
small example budget per operation, which keeps the whole module to a couple of minutes.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.contrib.auth.models import Group, User
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from kequn.recommend.models import Recommendation
from kequn.security.actors import system_actor
from kequn.security.roles import ROLES
from kequn.security.services import create_api_token
from kequn.segments import services as segment_services
from tests.factories import make_customer, make_event, make_order

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]
SUPERUSER = "superuser"
# Examples per operation and generation mode: the superuser reaches every code path, the
# roles mostly differ in which operations answer 403, so they get a smaller budget.
EXAMPLES = {SUPERUSER: 30}
ROLE_EXAMPLES = 8


@pytest.fixture
def api_schema(settings, db):
    """Load the schema the server publishes; send the fuzzed requests through its WSGI app."""
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "localhost"]
    # The fuzzer sends thousands of requests with one token; the limits have their own tests.
    settings.KEQUN_API_RATE = settings.KEQUN_API_IP_RATE = "off"
    # Lockout bookkeeping is not under test here (force_login has no client address).
    settings.AXES_ENABLED = False
    staff = User.objects.create_user("schema-reader", password="x", is_staff=True)
    client = Client()
    client.force_login(staff)  # the docs and the schema need a staff login
    response = client.get("/api/openapi.json")
    assert response.status_code == 200, response.content[:200]
    schema = schemathesis.openapi.from_dict(response.json())
    # Like django.test.Client (which reconnects these after each of its requests): closing
    # "old" connections at request boundaries would end the transaction holding the data.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    schema.app = WSGIHandler()
    yield schema
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def real_ids(db) -> dict[str, list[int]]:
    """Create a little data of every kind; return real ids per path parameter name."""
    customers = [
        make_customer(email=f"fuzz{n}@example.com", phone=f"1380013800{n}") for n in range(3)
    ]
    orders = [make_order(customer) for customer in customers]
    events = [make_event(customers[0]), make_event()]
    segment = segment_services.create_segment(
        "fuzz city",
        {"match": "all", "conditions": [{"field": "city", "operator": "eq", "value": "上海"}]},
        by=system_actor("test"),
    )
    products = [line.product for order in orders for line in order.lines.all()]
    recommendations = [
        Recommendation.objects.create(
            customer=customers[0], product=product, rank=rank, score=1.0 / rank, source="als"
        )
        for rank, product in enumerate(products, start=1)
    ]
    return {
        "customer_id": [c.pk for c in customers],
        "order_id": [o.pk for o in orders],
        "product_id": [p.pk for p in products],
        "event_id": [e.pk for e in events],
        "segment_id": [segment.pk],
        "recommendation_id": [r.pk for r in recommendations],
    }


def make_role_headers(role: str) -> dict[str, str]:
    """Create a user holding the role (or a superuser); return its bearer-token header."""
    if role == SUPERUSER:
        user = User.objects.create_superuser("fuzz-superuser", password="x")
    else:
        user = User.objects.create_user(f"fuzz-{role}", password="x")
        group, _ = Group.objects.get_or_create(name=role)
        user.groups.add(group)
    _, token = create_api_token(user.username, by=system_actor("tests"))
    return {"Authorization": f"Bearer {token}"}


def case_strategy(operation, real_ids: dict[str, list[int]]):
    """Generated cases, valid and invalid, plus valid ones aimed at existing objects."""
    strategies = [
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    ]
    names = [parameter.name for parameter in operation.path_parameters]
    if names and all(name in real_ids for name in names):
        existing = st.fixed_dictionaries({name: st.sampled_from(real_ids[name]) for name in names})
        aimed = existing.flatmap(lambda values: operation.as_strategy(path_parameters=values))
        strategies += [aimed, aimed]  # weigh towards real objects
    return st.one_of(strategies)


def fuzz_operation(operation, headers: dict[str, str], real_ids, max_examples: int) -> None:
    """Run the checks on generated cases of one operation; raise on the first failure."""

    @settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=case_strategy(operation, real_ids))
    def run(case):
        response = case.call(headers=headers)
        case.validate_response(response, checks=CHECKS, headers=headers)

    run()


@pytest.mark.slow
@pytest.mark.parametrize("role", [*ROLES, SUPERUSER])
def test_fuzz_api_as_role(role, api_schema, real_ids):
    headers = make_role_headers(role)
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 25, "the schema lost operations"
    failures = []
    for operation in operations:
        try:
            fuzz_operation(operation, headers, real_ids, EXAMPLES.get(role, ROLE_EXAMPLES))
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{operation.label}: {exc}")
    assert not failures, f"{len(failures)} operation(s) failed as {role}:\n\n" + "\n\n".join(
        failures
    )
