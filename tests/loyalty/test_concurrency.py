"""50 redemptions at once against a balance that covers one: exactly one succeeds.

On PostgreSQL the requests are threads with their own connections. The SQLite test database
lives in memory, where SQLite's shared cache fails instead of waiting, so there the same 50
threads run in a child process against a file copy of the database, as web workers would.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from contextlib import closing

import pytest
from django.db import connection, connections

from kequn.loyalty import selectors, services
from kequn.loyalty.models import LedgerEntry, Member, Redemption, Reward
from kequn.security.actors import system_actor
from kequn.security.keys import get_key_file
from tests.factories import make_customer

CLIENTS = 50
SAME_KEY_CLIENTS = 10

RACE = """
import json, os, sys, threading, django
os.environ["DJANGO_SETTINGS_MODULE"] = "kequn.settings"
django.setup()
from django.db import connections
from kequn.loyalty import services
from kequn.security.actors import system_actor

customer_id, reward, clients, same_key = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
start = threading.Barrier(clients)
outcomes = []

def redeem(n):
    try:
        start.wait()
        key = "same" if same_key else f"race-{n}"
        r = services.redeem_reward(customer_id=customer_id, reward=reward, key=key, by=system_actor("race"))
        outcomes.append(("ok", r.pk))
    except services.LoyaltyError as exc:
        outcomes.append((exc.code, None))
    except BaseException as exc:
        outcomes.append((type(exc).__name__ + ": " + str(exc), None))
    finally:
        connections.close_all()

threads = [threading.Thread(target=redeem, args=(n,)) for n in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(outcomes))
"""


def race_in_threads(
    customer_id: int, reward: str, same_key: bool, clients: int
) -> list[tuple[str, int | None]]:
    outcomes: list[tuple[str, int | None]] = []
    start = threading.Barrier(clients)

    def redeem(n: int) -> None:
        try:
            start.wait()
            key = "same" if same_key else f"race-{n}"
            r = services.redeem_reward(
                customer_id=customer_id, reward=reward, key=key, by=system_actor("race")
            )
            outcomes.append(("ok", r.pk))
        except services.LoyaltyError as exc:
            outcomes.append((exc.code, None))
        except BaseException as exc:  # reported by the assertion; a thread must not die silently
            outcomes.append((f"{type(exc).__name__}: {exc}", None))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=redeem, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def race_in_process(
    tmp_path, customer_id: int, reward: str, same_key: bool, clients: int
) -> tuple[list, str]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    path = data_dir / "kequn.sqlite3"
    target = sqlite3.connect(path)
    connection.ensure_connection()
    connection.connection.backup(target)
    target.close()
    env = {**os.environ, "KEQUN_DATA_DIR": str(data_dir), "KEQUN_KEY_FILE": str(get_key_file())}
    env.pop("KEQUN_DATABASE_URL", None)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            RACE,
            str(customer_id),
            reward,
            str(clients),
            "1" if same_key else "0",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return [tuple(o) for o in json.loads(done.stdout.strip().splitlines()[-1])], str(path)


def setup_member(points: int) -> tuple[int, str]:
    by = system_actor("tests")
    services.get_programme()
    customer = make_customer("抢兑")
    services.enroll_member(customer_id=customer.pk, by=by)
    services.grant_points(customer_id=customer.pk, points=points, key="seed", by=by)
    Reward.objects.create(code="cup", name="Cup", kind="gift", points_cost=100)
    return customer.pk, "cup"


def check(outcomes, counts) -> None:
    results = [o[0] for o in outcomes]
    assert len(results) == CLIENTS
    assert results.count("ok") == counts["ok"], results
    assert all(r in ("ok", "insufficient_points") for r in results), results


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("same_key", [False, True], ids=["distinct-keys", "one-key"])
def test_concurrent_redemptions_spend_once(tmp_path, same_key):
    customer_id, reward = setup_member(150)  # covers one redemption of 100
    clients = SAME_KEY_CLIENTS if same_key else CLIENTS
    if connection.vendor == "postgresql":
        outcomes = race_in_threads(customer_id, reward, same_key, clients)
        member = Member.objects.get(pk=customer_id)
        spends = LedgerEntry.objects.filter(member_id=customer_id, kind="spend").count()
        redemptions = Redemption.objects.filter(member_id=customer_id).count()
        assert list(selectors.find_differences()) == []
        balance = member.balance
    else:
        outcomes, path = race_in_process(tmp_path, customer_id, reward, same_key, clients)
        with closing(sqlite3.connect(path)) as db:
            balance = db.execute(
                "SELECT balance FROM loyalty_member WHERE customer_id = ?", (customer_id,)
            ).fetchone()[0]
            spends = db.execute(
                "SELECT COUNT(*) FROM loyalty_ledgerentry WHERE kind = 'spend'"
            ).fetchone()[0]
            redemptions = db.execute("SELECT COUNT(*) FROM loyalty_redemption").fetchone()[0]
            ledger = db.execute("SELECT SUM(points) FROM loyalty_ledgerentry").fetchone()[0]
            assert ledger == balance
    if same_key:  # every request is the same one: all get the one redemption back
        assert [o[0] for o in outcomes] == ["ok"] * clients
        assert len({o[1] for o in outcomes}) == 1
    else:
        check(outcomes, {"ok": 1})
    assert (balance, spends, redemptions) == (50, 1, 1)
