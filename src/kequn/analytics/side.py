"""Work handed to a second process while the main one goes on (`kequn analyze` on two cores)."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from typing import Any


class SideWork:
    """Run one function call at a time in a process forked up front; in process without fork.

    A process, not a thread: a thread's Python steps between NumPy calls fight the main
    thread for the GIL (at 500,000 customers a Pareto/NBD fit on a thread made both sides
    several times slower). Fork it early, before Arrow and DuckDB start their threads and
    while memory is small; arguments and results travel pickled through a pipe, so they
    should be arrays and small frames, not connections.
    """

    def __init__(self, name: str = "kequn-side-work"):
        self.process: Any = None
        self.pending: tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]] | None = None
        if "fork" in multiprocessing.get_all_start_methods():
            context = multiprocessing.get_context("fork")
            self.conn, child = context.Pipe()
            self.process = context.Process(target=_serve, args=(child,), daemon=True, name=name)
            self.process.start()
            child.close()

    def __enter__(self) -> SideWork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Start f(*args, **kwargs) (f module-level); one call at a time, read by result()."""
        if self.pending is not None:
            raise RuntimeError("SideWork.submit() before the last result() was read")
        self.pending = (f, args, kwargs)
        if self.process is not None:
            self.conn.send(self.pending)

    def result(self) -> tuple[Any, float]:
        """Return what the call returned and the seconds it took; raise what it raised."""
        if self.pending is None:
            raise RuntimeError("SideWork.result() before submit()")
        f, args, kwargs = self.pending
        self.pending = None
        if self.process is None:
            return timed(f, *args, **kwargs)
        kind, value = self.conn.recv()
        if kind == "error":
            raise value
        return value  # type: ignore[no-any-return]

    def close(self) -> None:
        """Stop the side process (a call still running is abandoned)."""
        if self.process is None:
            return
        if self.pending is None:
            self.conn.send(None)  # idle: it stops when asked
            self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join()
        self.conn.close()
        self.process = None


def _serve(conn: Any) -> None:
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if job is None:
            return
        f, args, kwargs = job
        try:
            conn.send(("ok", timed(f, *args, **kwargs)))
        except Exception as exc:  # handed to the parent, which raises it
            try:
                conn.send(("error", exc))
            except Exception:  # an exception that cannot be pickled
                conn.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))


def timed(f: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """Return f(*args, **kwargs) and the seconds it took."""
    tick = time.perf_counter()
    return f(*args, **kwargs), round(time.perf_counter() - tick, 3)
