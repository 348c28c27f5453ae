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

def race(customer_id, reward, clients, same_key):
    start = threading.Barrier(clients)
    outcomes = []

    def redeem(n):
        try:
            start.wait()
            key = "same" if same_key else f"race-{n}"
            r = services.redeem_reward(customer_id=customer_id, reward=reward, key=key,
                                       by=system_actor("race"))
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
    return outcomes

print(json.dumps([race(c, r, n, s) for c, r, n, s in json.loads(sys.argv[1])]))
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


def race_in_process(tmp_path, scenarios: list[tuple[int, str, int, bool]]) -> tuple[list, str]:
    """Run each race in one child process on a file copy of the database (one start-up)."""
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
        [sys.executable, "-c", RACE, json.dumps(scenarios)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    races = json.loads(done.stdout.strip().splitlines()[-1])
    return [[tuple(o) for o in race] for race in races], str(path)


def setup_member(name: str, points: int) -> int:
    by = system_actor("tests")
    services.get_programme()
    customer = make_customer(name)
    services.enroll_member(customer_id=customer.pk, by=by)
    services.grant_points(customer_id=customer.pk, points=points, key=f"seed-{name}", by=by)
    return customer.pk


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_concurrent_redemptions_spend_once(tmp_path):
    Reward.objects.create(code="cup", name="Cup", kind="gift", points_cost=100)
    racer = setup_member("抢兑", 150)  # covers one redemption of 100
    repeater = setup_member("重发", 150)  # one request sent again and again with one key
    scenarios = [(racer, "cup", CLIENTS, False), (repeater, "cup", SAME_KEY_CLIENTS, True)]
    if connection.vendor == "postgresql":
        races = [race_in_threads(c, r, s, n) for c, r, n, s in scenarios]
        assert list(selectors.find_differences()) == []
        state = {
            c: (
                Member.objects.get(pk=c).balance,
                LedgerEntry.objects.filter(member_id=c, kind="spend").count(),
                Redemption.objects.filter(member_id=c).count(),
            )
            for c in (racer, repeater)
        }
    else:
        races, path = race_in_process(tmp_path, scenarios)
        with closing(sqlite3.connect(path)) as db:
            state = {
                c: db.execute(
                    "SELECT balance, (SELECT COUNT(*) FROM loyalty_ledgerentry e WHERE "
                    "e.member_id = m.customer_id AND kind = 'spend'), (SELECT COUNT(*) FROM "
                    "loyalty_redemption r WHERE r.member_id = m.customer_id) FROM loyalty_member m "
                    "WHERE customer_id = ?",
                    (c,),
                ).fetchone()
                for c in (racer, repeater)
            }
            ledger = dict(
                db.execute(
                    "SELECT member_id, SUM(points) FROM loyalty_ledgerentry GROUP BY member_id"
                ).fetchall()
            )
        assert ledger == {c: state[c][0] for c in (racer, repeater)}
    results = [o[0] for o in races[0]]
    assert len(results) == CLIENTS and results.count("ok") == 1, results
    assert set(results) <= {"ok", "insufficient_points"}, results
    # Every repeat of the one request gets the one redemption back.
    assert [o[0] for o in races[1]] == ["ok"] * SAME_KEY_CLIENTS
    assert len({o[1] for o in races[1]}) == 1
    assert state == {racer: (50, 1, 1), repeater: (50, 1, 1)}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_last_item_in_stock_goes_to_one_of_many_members():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one write transaction at a time: there is no race to lose")
    Reward.objects.create(code="mug", name="Mug", kind="gift", points_cost=100, stock=1)
    members = [setup_member(f"买家{n}", 150) for n in range(10)]
    start = threading.Barrier(len(members))
    outcomes: list[str] = []

    def redeem(customer_id: int) -> None:
        try:
            start.wait()
            services.redeem_reward(
                customer_id=customer_id,
                reward="mug",
                key=f"k{customer_id}",
                by=system_actor("race"),
            )
            outcomes.append("ok")
        except services.LoyaltyError as exc:
            outcomes.append(exc.code)
        except BaseException as exc:  # reported by the assertion; a thread must not die silently
            outcomes.append(f"{type(exc).__name__}: {exc}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=redeem, args=(m,)) for m in members]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok"] + ["out_of_stock"] * (len(members) - 1), outcomes
    assert Reward.objects.get(code="mug").stock == 0 and Redemption.objects.count() == 1
    # The refused ones spent nothing: their spends rolled back with the stock check.
    assert sorted(Member.objects.values_list("balance", flat=True)) == [50] + [150] * 9
    assert list(selectors.find_differences()) == []


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_one_key_sent_for_many_members_at_once_redeems_once():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one write transaction at a time: there is no race to lose")
    Reward.objects.create(code="cup", name="Cup", kind="gift", points_cost=100)
    members = [setup_member(f"同键{n}", 150) for n in range(10)]
    start = threading.Barrier(len(members))
    outcomes: list[str] = []

    def redeem(customer_id: int) -> None:
        try:
            start.wait()
            services.redeem_reward(
                customer_id=customer_id, reward="cup", key="shared", by=system_actor("race")
            )
            outcomes.append("ok")
        except services.LoyaltyError as exc:
            outcomes.append(exc.code)
        except BaseException as exc:  # reported by the assertion; a thread must not die silently
            outcomes.append(f"{type(exc).__name__}: {exc}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=redeem, args=(m,)) for m in members]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["key_conflict"] * (len(members) - 1) + ["ok"], outcomes
    assert Redemption.objects.count() == 1 and list(selectors.find_differences()) == []
