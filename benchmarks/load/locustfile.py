"""Locust users for `kequn serve`: marketers in the back office, API clients, event senders.

Run by benchmarks/load/run.py, which prepares the accounts and passes them in the
environment (LOAD_MARKETING_USER/PASSWORD, LOAD_API_TOKENS, LOAD_MARKETING_TOKEN,
LOAD_WRITE_KEY, LOAD_CUSTOMER_IDS). Request names start with the group the targets judge:
"page " (back office, p95 < 800 ms), "api " (REST API, p95 < 300 ms), "collect " (/v1/batch).
"""

from __future__ import annotations

import base64
import itertools
import os
import random
import re
import uuid
from datetime import UTC, datetime

from locust import HttpUser, between, task

IDS = [int(i) for i in os.environ.get("LOAD_CUSTOMER_IDS", "1").split(",") if i]
TOKENS = itertools.cycle(os.environ.get("LOAD_API_TOKENS", "").split(",") or [""])
CITIES = ["深圳", "上海", "北京", "广州", "杭州", "成都"]
STAGES = ["at_risk", "loyal", "new", "churned", "active"]
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class Marketer(HttpUser):
    """A marketing user: customer lists and searches, the 360 page, segment counts."""

    weight = 5
    # A person reads the list or the profile before the next click.
    wait_time = between(5, 15)

    def on_start(self) -> None:
        login = self.client.get("/admin/login/", name="page login")
        token = CSRF.search(login.text)
        self.client.post(
            "/admin/login/?next=/admin/",
            data={
                "username": os.environ["LOAD_MARKETING_USER"],
                "password": os.environ["LOAD_MARKETING_PASSWORD"],
                "csrfmiddlewaretoken": token.group(1) if token else "",
                "next": "/admin/",
            },
            headers={"Referer": f"{self.host}/admin/login/"},
            name="page login",
        )
        self.api_headers = {"Authorization": f"Bearer {os.environ['LOAD_MARKETING_TOKEN']}"}

    @task(4)
    def customer_list(self) -> None:
        page = random.randint(1, 20)
        self.client.get(f"/admin/customers/customer/?p={page}", name="page customer list")

    @task(2)
    def customer_filter(self) -> None:
        city = random.choice(CITIES)
        self.client.get(
            f"/admin/customers/customer/?city={city}", name="page customer list filtered"
        )

    @task(4)
    def customer_360(self) -> None:
        customer = random.choice(IDS)
        self.client.get(f"/admin/customers/customer/{customer}/360/", name="page customer 360")

    @task(2)
    def segment_count(self) -> None:
        rule = {
            "match": "all",
            "conditions": [
                {"field": "city", "operator": "eq", "value": random.choice(CITIES)},
                {"field": "lifecycle_stage", "operator": "eq", "value": random.choice(STAGES)},
            ],
        }
        self.client.post(
            "/api/v1/segments/count",
            json={"rules": rule},
            headers=self.api_headers,
            name="api segment count",
        )

    @task(1)
    def dashboard(self) -> None:
        self.client.get("/admin/", name="page dashboard")


class ApiClient(HttpUser):
    """An integration paging through customers and reading single ones."""

    weight = 3
    # An integration's sync loop, with its own work on each record between calls.
    wait_time = between(1, 5)

    def on_start(self) -> None:
        self.headers = {"Authorization": f"Bearer {next(TOKENS)}"}

    @task(3)
    def page_through(self) -> None:
        answer = self.client.get(
            "/api/v1/customers?limit=50", headers=self.headers, name="api customers page"
        )
        if answer.ok:
            cursor = answer.json().get("next_cursor") or answer.json().get("next")
            if cursor and isinstance(cursor, str) and not cursor.startswith("http"):
                self.client.get(
                    f"/api/v1/customers?limit=50&cursor={cursor}",
                    headers=self.headers,
                    name="api customers next page",
                )

    @task(5)
    def read_one(self) -> None:
        customer = random.choice(IDS)
        self.client.get(
            f"/api/v1/customers/{customer}", headers=self.headers, name="api customer read"
        )


class EventSender(HttpUser):
    """A website's server sending Segment batches of 20 events."""

    weight = 2
    # A web server flushing its queue of events every few seconds.
    wait_time = between(1, 5)

    def on_start(self) -> None:
        key = os.environ["LOAD_WRITE_KEY"]
        self.auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()

    @task
    def batch(self) -> None:
        now = datetime.now(UTC).isoformat()
        events = [
            {
                "type": "track",
                "event": random.choice(["Product Viewed", "Product Added", "Checkout Started"]),
                "anonymousId": str(uuid.uuid4()),
                "properties": {"sku": f"SKU-{random.randint(1, 500)}", "price": 99.0},
                "timestamp": now,
                "messageId": str(uuid.uuid4()),
            }
            for _ in range(20)
        ]
        self.client.post(
            "/v1/batch",
            json={"batch": events},
            headers={"Authorization": self.auth},
            name="collect batch of 20",
        )
