"""Shared verdict of a benchmark: targets, agreement checks, conditions and the exit status.

Every benchmark ends with ``sys.exit(verdict.finish())``: exit 0 when every check held,
1 when a target was missed or the outputs disagree. With ``--smoke`` (a small size that runs
in seconds, for CI) the agreement checks still decide the exit status but the speed targets
are printed as "not judged", since a few thousand rows say nothing about speed at scale.
"""

from __future__ import annotations

import os
import sys


class Verdict:
    """Collect the checks of one benchmark run and turn them into an exit status."""

    def __init__(self, name: str, *, smoke: bool = False) -> None:
        self.name = name
        self.smoke = smoke
        self.failures: list[str] = []
        self.lines: list[str] = []
        if smoke:
            print(
                f"{name}: SMOKE run at a small size: outputs are checked, "
                "speed targets are printed but not judged",
                flush=True,
            )

    def conditions(self, text: str) -> None:
        """Say how Kequn and its reference ran (cold in fresh processes, or warm)."""
        print(f"conditions: {text}", flush=True)

    def target(self, label: str, ok: bool, detail: str) -> None:
        """Judge a speed or memory target (informational in a smoke run)."""
        if self.smoke:
            state = "not judged (smoke)"
        elif ok:
            state = "met"
        else:
            state = "MISSED"
            self.failures.append(f"target {label}: {detail}")
        self.lines.append(f"  target  {label}: {detail} -> {state}")

    def check(self, label: str, ok: bool, detail: str) -> None:
        """Judge an agreement check: outputs that must match, always judged."""
        if not ok:
            self.failures.append(f"check {label}: {detail}")
        self.lines.append(f"  check   {label}: {detail} -> {'ok' if ok else 'FAILED'}")

    def fail(self, message: str) -> None:
        """Record a failure that has no number (a missing reference, a crashed child)."""
        self.failures.append(message)
        self.lines.append(f"  FAILED  {message}")

    def finish(self) -> int:
        """Print the verdict; return the exit status (0 all held, 1 otherwise)."""
        print(f"\n== verdict of {self.name}{' (smoke)' if self.smoke else ''} ==")
        for line in self.lines:
            print(line)
        if self.failures:
            print(f"FAIL: {len(self.failures)} of {len(self.lines)} checks failed", flush=True)
            for failure in self.failures:
                print(f"  {failure}", file=sys.stderr)
            return 1
        print(f"PASS: {len(self.lines)} checks held", flush=True)
        return 0


def bench_tag() -> str:
    """Return a suffix for scratch database names, so concurrent smoke runs do not collide."""
    tag = os.environ.get("KEQUN_BENCH_TAG", "")
    return f"_{tag}" if tag else ""


def set_smoke_tag() -> None:
    """Give this run (and its child processes) scratch names of their own."""
    os.environ.setdefault("KEQUN_BENCH_TAG", f"smoke{os.getpid()}")
