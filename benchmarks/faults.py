"""Fault checks of `kequn serve` and `kequn worker`: the database going away, a killed worker,
a full disk. Each prints what happened and judges it.

    python benchmarks/faults.py database --database-url postgresql://postgres@127.0.0.1:5432/postgres
    python benchmarks/faults.py worker
    python benchmarks/faults.py disk          # as root: a small tmpfs is mounted and filled
    python benchmarks/faults.py all --database-url ...

database: the server reaches PostgreSQL through a TCP proxy this script runs, and the proxy is
cut (every connection dropped, new ones refused) for --down-seconds, as a PostgreSQL restart
does to clients, without restarting a PostgreSQL that other programs on the machine use.
While it is cut every request must get 503 (never 500 or a dropped connection); after, 200
again by itself. worker: a job is killed with kill -9 while it runs; the next worker must
run it once more, and it must complete exactly once. disk: backups and imports into a full
file system must fail with a one-line message and leave nothing that looks complete.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import selectors
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse, urlunparse

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _verdict import Verdict, bench_tag, set_smoke_tag  # noqa: E402 -- benchmarks/ is not a package


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def kequn(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "kequn.cli", *args], env=env, capture_output=True, text=True
    )
    if check and done.returncode != 0:
        raise SystemExit(
            f"kequn {' '.join(args)} failed:\n{done.stdout[-1500:]}{done.stderr[-1500:]}"
        )
    return done


class CuttableProxy:
    """A TCP proxy to the database that can be cut (all connections dropped) and restored."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = free_port()
        self.lock = threading.Lock()
        self.sockets: set[socket.socket] = set()
        self.listener: socket.socket | None = None
        self.open()

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self.accept, args=(listener,), daemon=True).start()

    def accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets |= {client, upstream}
            threading.Thread(target=self.pipe, args=(client, upstream), daemon=True).start()

    def pipe(self, a: socket.socket, b: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(a, selectors.EVENT_READ, b)
        selector.register(b, selectors.EVENT_READ, a)
        try:
            while True:
                for key, _ in selector.select(timeout=1):
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            for s in (a, b):
                with self.lock:
                    self.sockets.discard(s)
                s.close()

    def cut(self) -> None:
        if self.listener is not None:
            # shutdown wakes the thread blocked in accept(); close alone may not.
            with contextlib.suppress(OSError):
                self.listener.shutdown(socket.SHUT_RDWR)
            self.listener.close()
            self.listener = None
        with self.lock:
            for s in list(self.sockets):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self.sockets.clear()

    def restore(self) -> None:
        self.open()


def status_of(url: str, token: str) -> str:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310 -- local
    try:
        with urllib.request.urlopen(request, timeout=15) as answer:  # noqa: S310 -- local server
            return str(answer.status)
    except urllib.error.HTTPError as exc:
        return str(exc.code)
    except OSError as exc:
        return f"conn:{type(exc).__name__}"


def check_database_outage(args, verdict: Verdict, base_env: dict) -> None:
    """Cut the database under a serving server: 503 while cut, 200 by itself after."""
    if not args.database_url.startswith("postgres"):
        verdict.fail("database: give --database-url postgresql://… (the fault is a PostgreSQL one)")
        return
    server_url = urlparse(args.database_url)
    name = f"kequn_faults{bench_tag()}"
    data_dir = Path(tempfile.mkdtemp(prefix="kequn-faults-db-"))
    admin_env = {
        **base_env,
        "KEQUN_DATABASE_URL": args.database_url,
        "KEQUN_DATA_DIR": str(data_dir),
    }
    subprocess.run(["psql", args.database_url, "-qc", f"DROP DATABASE IF EXISTS {name}"],
                   capture_output=True, check=False)  # fmt: skip
    subprocess.run(["psql", args.database_url, "-qc", f"CREATE DATABASE {name}"], check=True,
                   capture_output=True)  # fmt: skip
    proxy = CuttableProxy((server_url.hostname or "127.0.0.1", server_url.port or 5432))
    netloc = f"{server_url.username or 'postgres'}@127.0.0.1:{proxy.port}"
    env = {
        **admin_env,
        "KEQUN_DATABASE_URL": urlunparse(server_url._replace(netloc=netloc, path=f"/{name}")),
    }
    env["KEQUN_API_RATE"] = env["KEQUN_API_IP_RATE"] = "off"
    kequn(env, "migrate", "--verbosity", "0")
    kequn(env, "user", "add", "faults", "--role", "analyst")
    token = kequn(env, "token", "create", "--user", "faults").stdout.strip()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "kequn.cli", "serve", "--port", str(port), "--workers", "2"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(data_dir / "server.log", "w"),  # noqa: SIM115
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    timeline: list[tuple[float, str, str, str]] = []
    try:
        deadline = time.monotonic() + 120
        while status_of(f"{url}/healthz", token) != "200":
            if time.monotonic() > deadline or server.poll() is not None:
                verdict.fail("database: kequn serve did not start")
                return
            time.sleep(0.5)
        start = time.monotonic()

        def probe(phase: str) -> None:
            api = status_of(f"{url}/api/v1/customers?limit=5", token)
            ready = status_of(f"{url}/readyz", token)
            timeline.append((time.monotonic() - start, phase, api, ready))

        for _ in range(3):
            probe("up")
            time.sleep(0.5)
        proxy.cut()
        print(f"database cut at {time.monotonic() - start:.1f} s", flush=True)
        cut_until = time.monotonic() + args.down_seconds
        while time.monotonic() < cut_until:
            probe("down")
            time.sleep(0.5)
        proxy.restore()
        print(f"database back at {time.monotonic() - start:.1f} s", flush=True)
        back = time.monotonic()
        recovered_after = None
        while time.monotonic() - back < 30:
            probe("back")
            if timeline[-1][2] == "200" and timeline[-1][3] == "200":
                recovered_after = time.monotonic() - back
                for _ in range(3):
                    probe("back")
                break
            time.sleep(0.5)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
        proxy.cut()
        subprocess.run(["psql", args.database_url, "-qc", f"DROP DATABASE IF EXISTS {name}"],
                       capture_output=True, check=False)  # fmt: skip
    errors = [
        line for line in (data_dir / "server.log").read_text().splitlines()
        if '"level": "ERROR"' in line and "Service Unavailable" not in line
    ]  # fmt: skip
    print(f"server errors other than 503s: {len(errors)}", *errors[:3], sep="\n  ")
    print("\n   time  phase  /api/v1/customers  /readyz")
    for at, phase, api, ready in timeline:
        print(f"  {at:5.1f}s  {phase:5}  {api:17}  {ready}")
    down = [t for t in timeline if t[1] == "down"]
    bad = [t for t in down if t[2] != "503" or t[3] != "503"]
    verdict.check("database: 503 while PostgreSQL is away", bool(down) and not bad,
                  f"{len(down) - len(bad)} of {len(down)} probes answered 503"
                  + (f"; others: {sorted({(t[2], t[3]) for t in bad})}" if bad else ""))  # fmt: skip
    verdict.check("database: recovers by itself", recovered_after is not None,
                  f"200 again {recovered_after:.1f} s after PostgreSQL came back"
                  if recovered_after is not None else "still failing 30 s later")  # fmt: skip
    after = [t for t in timeline if t[1] == "back"][-3:]
    verdict.check("database: stays up after", all(t[2] == "200" for t in after),
                  f"last probes {[t[2] for t in after]}")  # fmt: skip


def check_worker_kill(args, verdict: Verdict, base_env: dict) -> None:
    """kill -9 a worker in the middle of a job: the job runs once more and completes once."""
    data_dir = Path(tempfile.mkdtemp(prefix="kequn-faults-worker-"))
    env = {**base_env, "KEQUN_DATA_DIR": str(data_dir)}
    env.pop("KEQUN_DATABASE_URL", None)
    kequn(env, "migrate", "--verbosity", "0")
    marker = f"kill{os.getpid()}"
    code = (
        "from kequn.monitoring.tasks import probe_task; "
        f"print(probe_task.enqueue(seconds={args.job_seconds}, marker={marker!r}).id)"
    )
    job_id = kequn(env, "shell", "-c", code).stdout.strip().splitlines()[-1]
    database = data_dir / "kequn.sqlite3"

    def state() -> tuple[str, list, int]:
        """Read the job and the count of its completed runs straight from the database file."""
        with sqlite3.connect(database, timeout=30) as conn:
            status, workers = conn.execute(
                "SELECT status, worker_ids FROM django_tasks_database_dbtaskresult WHERE id = ?",
                [job_id.replace("-", "")],
            ).fetchone()
            row = conn.execute(
                "SELECT data FROM monitoring_rulestate WHERE rule = ?", [f"probe:{marker}"]
            ).fetchone()
        return status, json.loads(workers), json.loads(row[0]).get("runs", 0) if row else 0

    def start_worker() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "kequn.cli", "worker"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)  # fmt: skip

    first = start_worker()
    deadline = time.monotonic() + 120
    status = ""
    while time.monotonic() < deadline:
        status, workers, runs = state()
        if status == "RUNNING":
            break
        time.sleep(0.2)
    print(f"job {job_id}: {status} on {workers}", flush=True)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    print("worker killed with SIGKILL while the job ran", flush=True)
    status, workers, runs = state()
    print(f"after the kill: {status}, runs completed {runs}", flush=True)
    second = start_worker()
    deadline = time.monotonic() + 120 + args.job_seconds
    try:
        while time.monotonic() < deadline:
            status, workers, runs = state()
            if status in ("SUCCESSFUL", "FAILED"):
                break
            time.sleep(2)
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(timeout=60)
    print(f"after a new worker: {status} after {len(workers)} attempts, runs completed {runs}")
    verdict.check("worker: the killed job is retried and succeeds", status == "SUCCESSFUL",
                  f"status {status}")  # fmt: skip
    verdict.check("worker: retried once", len(workers) == 2, f"{len(workers)} attempts")
    verdict.check("worker: not duplicated", runs == 1, f"the job's effect applied {runs} time(s)")
    shutil.rmtree(data_dir, ignore_errors=True)


def check_full_disk(args, verdict: Verdict, base_env: dict) -> None:
    """Fill a small file system holding the data dir: backup and import fail cleanly."""
    mount = Path(tempfile.mkdtemp(prefix="kequn-faults-disk-"))
    if os.geteuid() != 0:
        verdict.fail("disk: run as root (a small tmpfs is mounted for the check)")
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount)],
                             capture_output=True, text=True)  # fmt: skip
    if mounted.returncode != 0:
        verdict.fail(f"disk: cannot mount a tmpfs ({mounted.stderr.strip()})")
        return
    try:
        data_dir = mount / "data"
        env = {
            **base_env,
            "KEQUN_DATA_DIR": str(data_dir),
            "KEQUN_BACKUP_DIR": str(mount / "backups"),
        }
        env.pop("KEQUN_DATABASE_URL", None)
        kequn(env, "migrate", "--verbosity", "0")
        rows = ["name,phone,email,city"] + [
            f"客户{i},139{i:08d},c{i}@example.cn,深圳" for i in range(20000)
        ]
        source = Path(tempfile.mkdtemp()) / "customers.csv"
        source.write_text("\n".join(rows) + "\n", encoding="utf-8")
        filler = mount / "filler"
        # Leave a sliver free: commands start (their data-dir check writes a few bytes) and
        # run out of space in the middle of their work.
        spare = shutil.disk_usage(mount).free - 192 * 1024
        with filler.open("wb") as fh:
            while spare > 0:
                spare -= fh.write(b"\0" * min(spare, 1 << 20))
        free = shutil.disk_usage(mount).free
        print(f"file system filled: {free} bytes free", flush=True)
        backup = kequn(env, "backup", "create", check=False)
        message = (backup.stderr or backup.stdout).strip().splitlines()
        print(f"backup: exit {backup.returncode}: {message[-1] if message else ''}", flush=True)
        leftovers = (
            [p.name for p in (mount / "backups").glob("*.kqbackup")]
            if (mount / "backups").exists()
            else []
        )
        verdict.check("disk: backup fails with a message", backup.returncode != 0 and bool(message)
                      and "Traceback" not in backup.stderr, f"exit {backup.returncode}")  # fmt: skip
        verdict.check("disk: no backup left that looks complete", not leftovers, f"{leftovers}")
        imported = kequn(env, "import", "customers", str(source), check=False)
        message = (imported.stderr or imported.stdout).strip().splitlines()
        print(f"import: exit {imported.returncode}: {message[-1] if message else ''}", flush=True)
        verdict.check("disk: import fails with a message", imported.returncode != 0
                      and "Traceback" not in imported.stderr, f"exit {imported.returncode}")  # fmt: skip
        filler.unlink()
        runs = kequn(env, "shell", "-c", "from kequn.ingest.models import ImportRun as R; "
                     "print([(r.status, r.rows_read) for r in R.objects.all()])", check=False)  # fmt: skip
        runs.stdout = runs.stdout.strip().splitlines()[-1] if runs.stdout.strip() else ""
        print(f"import runs after freeing space: {runs.stdout}", flush=True)
        verdict.check("disk: the import is not marked finished", "'finished'" not in runs.stdout,
                      runs.stdout.strip()[:200])  # fmt: skip
    finally:
        subprocess.run(["umount", str(mount)], check=False)
        shutil.rmtree(mount, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("fault", choices=["database", "worker", "disk", "all"])
    parser.add_argument("--database-url", default=os.environ.get("KEQUN_DATABASE_URL", ""),
                        help="a PostgreSQL server (its postgres database) for the database fault")  # fmt: skip
    parser.add_argument("--down-seconds", type=float, default=10)
    parser.add_argument("--job-seconds", type=float, default=20)
    parser.add_argument("--smoke", action="store_true", help="shorter outage and job")
    args = parser.parse_args()
    if args.smoke:
        set_smoke_tag()
        args.down_seconds, args.job_seconds = 4, 15
    verdict = Verdict("faults", smoke=args.smoke)
    verdict.conditions(f"{args.fault}: kequn serve (2 workers) and kequn worker on this machine")
    env = {**os.environ, "KEQUN_LOG_LEVEL": "ERROR"}
    if args.fault in ("database", "all"):
        check_database_outage(args, verdict, env)
    if args.fault in ("worker", "all"):
        check_worker_kill(args, verdict, env)
    if args.fault in ("disk", "all"):
        check_full_disk(args, verdict, env)
    return verdict.finish()


if __name__ == "__main__":
    sys.exit(main())
