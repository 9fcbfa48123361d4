"""Supervision of the long-lived parts of ``liaisonbot run``.

Every loop and every platform start is a named :class:`Part`. A failure is logged, counted and
retried after an exponential back-off with jitter (``base * 2**(n-1)``, capped, times a random
factor in [0.5, 1)); a success clears it. ``/healthz`` shows each failing part (503, the part
named with its error and how long it has failed). ``/livez`` fails (503) when this process can
no longer do its job although it is up: a supervised task has ended while the process is not
stopping, or a *critical* part (the leader loop, the outbox worker, the follow-up tick) has
failed without a break for longer than ``LIVEZ_FAILING_SECONDS`` (default 600 s) while the
database still answers. Failures that an outside outage explains (the database, a platform's
login or connection) stay on ``/healthz``: restarting the process would not cure them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)
#: How long a critical part may fail without a break before /livez fails.
LIVEZ_FAILING_SECONDS = float(os.environ.get("LIAISONBOT_LIVEZ_FAILING_SECONDS", "600"))


@dataclass
class Part:
    """The state of one supervised part."""

    name: str
    critical: bool = False
    failures: int = 0
    failing_since: float | None = None
    last_error: str | None = None
    retry_at: float | None = None
    restarts: int = 0

    def report(self, now: float) -> dict[str, Any]:
        if self.failing_since is None:
            return {"ok": True}
        return {"ok": False, "error": self.last_error, "failures": self.failures,
                "failing_for_s": round(now - self.failing_since, 1),
                "retry_in_s": None if self.retry_at is None
                else round(max(self.retry_at - now, 0.0), 1)}


@dataclass
class Supervisor:
    """Back-off, health and liveness of the supervised parts. ``clock`` (monotonic seconds)
    and ``rand`` are injected in tests."""

    base_seconds: float = 1.0
    cap_seconds: float = 60.0
    livez_after: float = LIVEZ_FAILING_SECONDS
    clock: Callable[[], float] = time.monotonic
    rand: Callable[[], float] = random.random
    parts: dict[str, Part] = field(default_factory=dict)
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    stopping: bool = False

    def part(self, name: str, *, critical: bool = False) -> Part:
        found = self.parts.get(name)
        if found is None:
            found = self.parts[name] = Part(name, critical=critical)
        return found

    def backoff(self, failures: int) -> float:
        """Seconds before retry number ``failures``: exponential, capped, with jitter."""
        delay = min(self.cap_seconds, self.base_seconds * 2 ** max(failures - 1, 0))
        return delay * (0.5 + self.rand() / 2)

    def failed(self, name: str, error: BaseException, *, critical: bool = False) -> float:
        """Record a failure of ``name`` (logged with its traceback); returns the back-off."""
        part = self.part(name, critical=critical)
        now = self.clock()
        part.failures += 1
        part.last_error = type(error).__name__
        if part.failing_since is None:
            part.failing_since = now
        delay = self.backoff(part.failures)
        part.retry_at = now + delay
        log.error("%s failed; retrying", name, exc_info=error,
                  extra={"part": name, "failures": part.failures, "retry_in_s": round(delay, 2)})
        return delay

    def succeeded(self, name: str) -> None:
        part = self.parts.get(name)
        if part is not None and part.failing_since is not None:
            log.warning("%s recovered", name, extra={"part": name, "failures": part.failures})
            part.failures, part.failing_since, part.last_error, part.retry_at = 0, None, None, None

    def due(self, name: str) -> bool:
        """Whether a failed part's back-off has passed (always true for a healthy one)."""
        part = self.parts.get(name)
        return part is None or part.retry_at is None or self.clock() >= part.retry_at

    def spawn(self, name: str, work: Callable[[], Awaitable[None]], stop: asyncio.Event, *,
              critical: bool = True) -> asyncio.Task[None]:
        """Run ``work()`` until ``stop``; when it raises or returns early, log, back off and
        run it again."""
        self.part(name, critical=critical)

        async def supervise() -> None:
            while not stop.is_set():
                try:
                    await work()
                    if stop.is_set():
                        return
                    raise RuntimeError(f"{name} ended on its own")
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    delay = self.failed(name, error, critical=critical)
                self.parts[name].restarts += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)

        task = asyncio.create_task(supervise(), name=name)
        self.tasks[name] = task
        return task

    def health(self) -> dict[str, dict[str, Any]]:
        """The failing parts, each with its report (healthy parts are left out)."""
        now = self.clock()
        report = {name: part.report(now) for name, part in self.parts.items()
                  if part.failing_since is not None}
        for name, task in self.tasks.items():
            if task.done() and not self.stopping:
                report[name] = {"ok": False, "error": "stopped"}
        return report

    def dead(self) -> list[str]:
        """Supervised tasks that ended while the process is not stopping."""
        return [f"{name}: stopped" for name, task in self.tasks.items()
                if task.done() and not self.stopping]

    def failing_too_long(self) -> list[str]:
        """Critical parts that have failed without a break for longer than ``livez_after``."""
        now = self.clock()
        return [f"{p.name}: failing for {now - p.failing_since:.0f} s ({p.last_error})"
                for p in self.parts.values() if p.critical and p.failing_since is not None
                and now - p.failing_since > self.livez_after]
