"""Supervision of ``liaisonbot run``'s long-lived parts, with injected faults and an injected
monotonic clock: the leader loop, the tick, singleton platform starts, /healthz and /livez."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from conftest import TestBot
from liaisonbot.runner import Replica
from liaisonbot.service.ports import ChatGateway
from liaisonbot.supervision import Supervisor
from liaisonbot.web import build_web, start_web


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FlakyPlatform:
    """A singleton platform (named like Matrix) whose start fails ``failures`` times."""

    def __init__(self, failures: int, name: str = "matrix") -> None:
        self.name = name
        self.failures = failures
        self.starts = 0
        self.running = False

    @property
    def gateway(self) -> ChatGateway:
        raise NotImplementedError

    def mount(self, app: Any) -> None:
        return None

    async def start(self) -> None:
        self.starts += 1
        if self.failures:
            self.failures -= 1
            raise ConnectionRefusedError("homeserver down")
        self.running = True

    async def quiesce(self, timeout: float) -> None:
        return None

    async def stop(self) -> None:
        self.running = False

    async def health(self) -> dict[str, Any]:
        return {"ok": self.running}


def replica(bot: TestBot, platforms: list[Any], clock: Clock) -> Replica:
    supervisor = Supervisor(clock=clock, rand=lambda: 1.0, base_seconds=1, cap_seconds=60,
                            livez_after=600)
    return Replica(bot.core, platforms, supervisor=supervisor, poll_seconds=1.0)


async def get(app: Any, path: str) -> tuple[int, dict[str, Any]]:
    runner = await start_web(app, "127.0.0.1", 0)
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session, \
                session.get(f"http://127.0.0.1:{port}{path}") as response:
            return response.status, json.loads(await response.text())
    finally:
        await runner.cleanup()


async def test_a_failing_tick_never_ends_the_leader_loop(testbot: TestBot) -> None:
    clock = Clock()
    node = replica(testbot, [], clock)
    real = testbot.core.ticker.tick

    async def broken() -> None:
        raise RuntimeError("database is locked")

    testbot.core.ticker.tick = broken  # type: ignore[method-assign]
    assert await node.step() == 1.0  # it leads (SQLite), the tick failed and was recorded
    assert node.leading is True
    app = build_web(testbot.core, node.checks(), supervisor=node.supervisor)
    status, body = await get(app, "/healthz")
    assert status == 503 and body["tick"]["ok"] is False
    assert body["tick"]["error"] == "RuntimeError" and body["leader"]["ok"] is True
    testbot.core.ticker.tick = real  # type: ignore[method-assign]
    await node.tick()
    status, body = await get(app, "/healthz")
    assert status == 200 and body["tick"] == {"ok": True}


async def test_a_failing_lock_check_drops_the_lead_and_backs_off(testbot: TestBot) -> None:
    clock = Clock()
    platform = FlakyPlatform(0)
    node = replica(testbot, [platform], clock)
    assert await node.step() == 1.0 and node.leading and platform.running
    assert "matrix" not in testbot.core.outbox.paused

    async def lost() -> bool:
        raise OSError("connection reset")

    node.leadership.check = lost  # type: ignore[method-assign]
    delays = [await node.step() for _ in range(4)]
    assert node.leading is False and platform.running is False  # never stuck leading
    assert "matrix" in testbot.core.outbox.paused
    assert delays == [1.0, 2.0, 4.0, 8.0]  # exponential (jitter pinned to its top here)
    assert node.supervisor.parts["leader"].failures == 4
    del node.leadership.check  # the instance attribute: the real check again
    assert await node.step() == 1.0 and node.leading and platform.running
    assert node.supervisor.parts["leader"].failing_since is None


async def test_jitter_spreads_the_backoff() -> None:
    supervisor = Supervisor(rand=lambda: 0.0, base_seconds=2, cap_seconds=30)
    assert supervisor.backoff(1) == 1.0 and supervisor.backoff(10) == 15.0
    supervisor.rand = lambda: 0.999
    assert 1.99 < supervisor.backoff(1) < 2.0


async def test_a_singleton_that_fails_to_start_is_retried_with_backoff(testbot: TestBot) -> None:
    clock = Clock()
    platform = FlakyPlatform(2)
    node = replica(testbot, [platform], clock)
    app = build_web(testbot.core, node.checks(), supervisor=node.supervisor)
    await node.step()
    assert platform.starts == 1 and node.leading
    status, body = await get(app, "/healthz")
    assert status == 503 and body["matrix"]["ok"] is False
    assert body["matrix"]["error"] == "ConnectionRefusedError" and body["matrix"]["starting"]
    assert "matrix" in testbot.core.outbox.paused  # its posts wait, nobody loses them
    await node.step()
    assert platform.starts == 1  # still backing off (1 s)
    clock.now += 1.0
    await node.step()
    assert platform.starts == 2  # failed again: now 2 s
    clock.now += 1.5
    await node.step()
    assert platform.starts == 2
    clock.now += 0.5
    await node.step()
    assert platform.starts == 3 and platform.running
    assert "matrix" not in testbot.core.outbox.paused
    status, body = await get(app, "/healthz")
    assert status == 200 and body["matrix"] == {"ok": True}
    assert (await get(app, "/livez"))[0] == 200  # an outside outage never fails liveness


async def test_livez_fails_when_a_critical_part_keeps_failing(testbot: TestBot) -> None:
    clock = Clock()
    node = replica(testbot, [], clock)
    app = build_web(testbot.core, node.checks(), supervisor=node.supervisor)
    node.supervisor.failed("outbox", RuntimeError("wedged"), critical=True)
    clock.now += 599
    node.supervisor.failed("outbox", RuntimeError("wedged"), critical=True)
    assert (await get(app, "/livez"))[0] == 200  # failing, but not for ten minutes yet
    clock.now += 2
    status, body = await get(app, "/livez")
    assert status == 503 and "outbox: failing for 601 s (RuntimeError)" in body["problems"]
    node.supervisor.succeeded("outbox")
    assert (await get(app, "/livez"))[0] == 200


async def test_a_supervised_task_that_dies_is_restarted_and_a_dead_one_fails_livez(
        testbot: TestBot) -> None:
    supervisor = Supervisor(base_seconds=0, rand=lambda: 0.0)
    stop = asyncio.Event()
    runs: list[int] = []

    async def work() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError("boom")
        await stop.wait()

    task = supervisor.spawn("outbox", work, stop)
    for _ in range(100):
        if len(runs) == 3:
            break
        await asyncio.sleep(0)
    assert len(runs) == 3 and supervisor.parts["outbox"].restarts == 2
    assert supervisor.dead() == []
    app = build_web(testbot.core, {}, supervisor=supervisor)
    task.cancel()  # a supervisor that is itself gone
    await asyncio.gather(task, return_exceptions=True)
    status, body = await get(app, "/livez")
    assert status == 503 and body["problems"] == ["outbox: stopped"]
    supervisor.stopping = True  # shutting down: ended tasks are expected
    assert (await get(app, "/livez"))[0] == 200
    stop.set()


async def test_a_platform_whose_loop_died_is_restarted_after_a_backoff(testbot: TestBot) -> None:
    clock = Clock()
    platform = FlakyPlatform(0)
    died: list[BaseException] = []
    platform.crashed = lambda: died[0] if died and platform.running else None  # type: ignore[attr-defined]
    node = replica(testbot, [platform], clock)
    await node.step()
    assert platform.running and platform.starts == 1
    died.append(RuntimeError("sync loop died"))
    await node.step()
    assert not platform.running and "matrix" in testbot.core.outbox.paused
    health = await node.checks()["matrix"]()
    assert health["ok"] is False and health["error"] == "RuntimeError"
    died.clear()
    await node.step()
    assert platform.starts == 1  # backing off
    clock.now += 1.0
    await node.step()
    assert platform.starts == 2 and platform.running
    assert "matrix" not in testbot.core.outbox.paused
