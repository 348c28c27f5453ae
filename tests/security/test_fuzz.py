"""Hypothesis at every door: whatever arrives, the answer is a 2xx or a clear 4xx.

One property per entry point (segment rules, customers, /v1/* events, privacy requests,
JSON-lines imports), fed the values that once ended in a 500 — NaN, Infinity, 1e400, 10^8
days, years 1 and 9999, ids above 2^63, NUL characters, lone surrogates, control
characters, JSON nested hundreds deep — mixed with arbitrary JSON. No answer may be a 5xx
and nothing may log a traceback. Examples are few and derandomised, so the file stays fast.
"""

from __future__ import annotations

import base64
import io
import json
import logging

import pytest
from django.core.management import CommandError, call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kequn.customers.services import PROFILE_FIELDS
from kequn.events.services import create_source
from kequn.security.actors import system_actor
from kequn.segments.rules import FIELDS
from tests.factories import make_customer

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

NASTY_TEXT = [
    "",
    "a\x00b",
    "\ud800",
    "x\udfffy",
    "\x01\x1f\x7f\x85\x9f",
    "0001-01-01",
    "9999-12-31",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "2024-02-30",
    "=1+1",
    "' OR 1=1 --",
    "^(a+)+$",
    "上海",
    "9" * 400,
]
NASTY_NUMBERS = [0, -1, 1, 2**63, 2**64, -(2**63) - 1, 10**8, 10**400, 1e308, 1e-320]
# Python's json writes these as the bare NaN / Infinity tokens, as the probe sent them.
NON_FINITE = [float("nan"), float("inf"), float("-inf")]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(NASTY_NUMBERS + NON_FINITE),
    st.integers(),
    st.floats(),
    st.sampled_from(NASTY_TEXT),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "name", "\x00", "x"]), children, max_size=3)
    ),
    max_leaves=8,
)


def nested(depth: int, leaf: object) -> object:
    """Wrap a value in `depth` lists, the shape of the probe's nested-JSON attack."""
    for _ in range(depth):
        leaf = [leaf]
    return leaf


deep_values = st.builds(nested, st.sampled_from([40, 500, 5000]), scalars)
values = st.one_of(json_values, json_values, deep_values)


def dumps(payload: object) -> str:
    """Encode like a careless client: NaN as NaN, lone surrogates as \\ud800 escapes."""
    try:
        return json.dumps(payload)
    except RecursionError:
        return "[" * 5000 + "]" * 5000


def group(conditions: list, depth: int = 0) -> dict:
    rule: dict = {"match": "all", "conditions": conditions}
    for _ in range(depth):
        rule = {"match": "any", "conditions": [rule]}
    return rule


conditions = st.fixed_dictionaries(
    {
        "field": st.sampled_from([*FIELDS, "birthday", "citty"]),
        "operator": st.sampled_from(
            ["eq", "in", "gt", "between", "before", "after", "within_days", "any_of", "is"]
        ),
        "value": values,
    },
    optional={"days": st.sampled_from(NASTY_NUMBERS) | values, "channel": st.just("sms")},
)
rules = st.builds(group, st.lists(conditions, min_size=1, max_size=3), st.integers(0, 12))


@pytest.fixture
def quiet_errors(caplog):
    """Capture errors; the test asserts nothing was logged with a traceback."""
    caplog.set_level(logging.ERROR)
    return caplog


@pytest.fixture(autouse=True)
def no_limits(settings):
    """Fuzzing sends many requests from one token; the limits have their own tests."""
    settings.KEQUN_API_RATE = settings.KEQUN_API_IP_RATE = "off"
    settings.AXES_ENABLED = False


def assert_clean(response, caplog, payload) -> None:
    """No 5xx, a JSON answer, and no traceback in the log."""
    assert response.status_code < 500, (response.status_code, str(payload)[:300])
    assert response["Content-Type"].startswith("application/json"), str(payload)[:300]
    tracebacks = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not tracebacks, (tracebacks[0].getMessage(), str(payload)[:300])


@pytest.fixture
def api(make_api_client):
    client = make_api_client(superuser=True)
    client.raise_request_exception = False
    return client


def post(client, path: str, payload: object):
    return client.generic("POST", path, dumps(payload), content_type="application/json")


def test_segment_rules_never_answer_5xx(api, quiet_errors):
    @FUZZ
    @given(rule=rules, name=st.sampled_from(NASTY_TEXT))
    def run(rule, name):
        for path, payload in (
            ("/api/v1/segments/count", {"rules": rule}),
            ("/api/v1/segments", {"name": name or "s", "rules": rule}),
        ):
            assert_clean(post(api, path, payload), quiet_errors, payload)

    run()


def test_customers_api_never_answers_5xx(api, quiet_errors):
    customer = make_customer(name="fuzz target")
    fields = st.dictionaries(st.sampled_from([*PROFILE_FIELDS, "identities", "x"]), values)

    # A URL carries UTF-8, which cannot hold a lone surrogate: those go in bodies only.
    queries = [t for t in NASTY_TEXT if "\ud800" not in t and "\udfff" not in t]

    @FUZZ
    @given(payload=fields, query=st.sampled_from(queries + [str(n) for n in NASTY_NUMBERS]))
    def run(payload, query):
        assert_clean(post(api, "/api/v1/customers", payload), quiet_errors, payload)
        response = api.generic(
            "PATCH", f"/api/v1/customers/{customer.pk}", dumps(payload), "application/json"
        )
        assert_clean(response, quiet_errors, payload)
        for url in (f"/api/v1/customers/{query}", "/api/v1/customers", "/api/v1/orders"):
            response = api.get(url, {"q": query, "since": query, "customer_id": query})
            assert response.status_code < 500, (url, query)

    run()


def test_event_collection_never_answers_5xx(db, quiet_errors):
    from django.test import Client

    _source, key = create_source(name="fuzz", by=system_actor("tests"))
    client = Client(raise_request_exception=False)
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    message = st.fixed_dictionaries(
        {"userId": st.sampled_from(["u1", "\ud800", "a\x00", "\x01u"])},
        optional={
            "event": st.sampled_from(NASTY_TEXT) | values,
            "timestamp": st.sampled_from(NASTY_TEXT) | values,
            "properties": values,
            "traits": st.dictionaries(st.sampled_from(["email", "name", "city"]), values),
            "anonymousId": st.sampled_from(NASTY_TEXT),
        },
    )

    @FUZZ
    @given(
        kind=st.sampled_from(["track", "identify", "page", "batch"]),
        messages=st.lists(message, min_size=1, max_size=3),
    )
    def run(kind, messages):
        body = (
            {"batch": [{**m, "type": "track"} for m in messages]}
            if kind == "batch"
            else (messages[0])
        )
        response = client.generic(
            "POST", f"/v1/{kind}", dumps(body), "application/json", HTTP_AUTHORIZATION=auth
        )
        assert_clean(response, quiet_errors, body)

    run()


def test_privacy_requests_never_answer_5xx(api, quiet_errors):
    customer = make_customer(name="subject")
    requests = st.fixed_dictionaries(
        {
            "type": st.sampled_from(["correction", "export", "withdraw_consent", "erasure"]),
            "customer_id": st.sampled_from([customer.pk, *NASTY_NUMBERS]),
        },
        optional={
            "parameters": st.one_of(
                st.fixed_dictionaries(
                    {"fields": st.dictionaries(st.sampled_from(PROFILE_FIELDS), values)}
                ),
                values,
            ),
            "received_at": st.sampled_from(NASTY_TEXT) | values,
            "notes": st.sampled_from(NASTY_TEXT),
        },
    )

    @FUZZ
    @given(payload=requests)
    def run(payload):
        response = post(api, "/api/v1/privacy-requests", payload)
        assert_clean(response, quiet_errors, payload)
        if response.status_code == 201 and payload["type"] == "correction":
            request_id = response.json()["id"]
            for action in ("verify", "execute"):
                body = {"method": "in_person"} if action == "verify" else {}
                response = post(api, f"/api/v1/privacy-requests/{request_id}/{action}", body)
                assert_clean(response, quiet_errors, payload)

    run()


def test_json_lines_imports_quarantine_or_store_every_row(tmp_path, quiet_errors):
    row = st.dictionaries(
        st.sampled_from(["email", "name", "phone", "city", "birthday", "note"]), values, min_size=1
    )
    raw_lines = st.sampled_from(
        ["[" * 3000 + "]" * 3000, '{"name": NaN}', '{"email": "\\u0000@x.com"}', "not json"]
    )

    @FUZZ
    @given(rows=st.lists(st.one_of(row.map(dumps), raw_lines), min_size=1, max_size=4))
    def run(rows):
        path = tmp_path / "fuzz.jsonl"
        path.write_text('{"email": "first@example.com"}\n' + "\n".join(rows) + "\n")
        out = io.StringIO()
        try:
            call_command("import", "customers", str(path), "--json", stdout=out)
        except CommandError as exc:  # a file-level refusal is a clear error too
            assert "\n" not in str(exc)
            return
        summary = json.loads(out.getvalue())
        outcomes = ("inserted", "updated", "unchanged", "merged", "review", "quarantined")
        assert summary["rows_read"] == sum(summary[name] for name in outcomes), summary
        assert not [r for r in quiet_errors.records if r.exc_info], rows

    run()
