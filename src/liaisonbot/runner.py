"""``liaisonbot run``: every enabled platform, the outbox worker, the tick and the HTTP server.

Several replicas may share one PostgreSQL: all serve Slack HTTP and deliver Slack posts; the
follow-up tick and the Matrix sync loop (one device can only sync once) run in the replica
that holds the leader lock (``store.leader``), and move to another within seconds when it
dies. SIGTERM closes the HTTP server (no more Slack commands), drains the outbox for up to
``DRAIN_SECONDS`` while the gateways are up, stops the platforms (Matrix stores its sync
state), gives up the lead and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from liaisonbot.bootstrap import Core, build_core
from liaisonbot.chat.platform import Platform
from liaisonbot.config import Settings
from liaisonbot.memory import release_free_memory
from liaisonbot.store.leader import LEADER_POLL_SECONDS, Leadership
from liaisonbot.supervision import Supervisor
from liaisonbot.web import build_web, start_web

log = logging.getLogger(__name__)
TICK_SECONDS = 30
#: How long SIGTERM waits for the outbox to drain ($LIAISONBOT_DRAIN_SECONDS); the rest stays
#: in the outbox for the next start or another replica.
DRAIN_SECONDS = float(os.environ.get("LIAISONBOT_DRAIN_SECONDS", "10"))
#: Platforms that may run in one replica only.
SINGLETONS = {"matrix"}


def _platforms(settings: Settings, core: Core) -> list[Platform]:
    found: list[Platform] = []
    if settings.slack.enabled:
        from liaisonbot.chat.slack.platform import build_slack

        found.append(build_slack(settings, core))
    if settings.matrix.enabled:
        from liaisonbot.chat.matrix.platform import build_matrix

        found.append(build_matrix(settings, core))
    return found


class Replica:
    """This process's share of the work, following the leader lock, under supervision: the
    leader loop, the tick and every platform start retry with back-off (``supervision``)."""

    def __init__(self, core: Core, platforms: list[Platform], *,
                 supervisor: Supervisor | None = None,
                 poll_seconds: float = LEADER_POLL_SECONDS) -> None:
        self.core = core
        self.leadership = Leadership(core.engine)
        self.supervisor = supervisor or Supervisor()
        self.poll_seconds = poll_seconds
        self.everywhere = [p for p in platforms if p.name not in SINGLETONS]
        self.singletons = [p for p in platforms if p.name in SINGLETONS]
        self.leading = False
        self.started: set[str] = set()
        core.outbox.paused = {p.name for p in self.singletons}
        core.outbox.on_failure = lambda error: self.supervisor.failed("outbox", error,
                                                                      critical=True)
        core.outbox.on_success = lambda: self.supervisor.succeeded("outbox")

    async def tick(self) -> None:
        """The follow-up tick (the scheduler's job): a failure is recorded, never raised."""
        if not self.leading:
            return
        try:
            await self.core.ticker.tick()
        except Exception as error:
            self.supervisor.failed("tick", error, critical=True)
        else:
            self.supervisor.succeeded("tick")
        release_free_memory()  # a tick's batches were freed: give the pages back

    async def follow(self, stop: asyncio.Event) -> None:
        """Check the lead every second; start or stop the singletons when it changes hands."""
        while not stop.is_set():
            delay = await self.step()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)

    async def step(self) -> float:
        """One turn of the leader loop; returns the seconds to wait before the next. Whatever
        fails is recorded and retried after a back-off; a replica that cannot confirm its lock
        stops acting as leader at once (``leading`` is never left standing)."""
        try:
            leading = await self.leadership.check()
        except Exception as error:
            delay = self.supervisor.failed("leader", error, critical=True)
            if self.leading:
                await self._resign()
            return delay
        try:
            if leading and not self.leading:
                await self._lead()
            elif not leading and self.leading:
                await self._follow()
            await self._start(self.everywhere)
            if self.leading:
                await self._start(self.singletons)
        except Exception as error:
            delay = self.supervisor.failed("leader", error, critical=True)
            if self.leading:
                await self._resign()
            return delay
        self.supervisor.succeeded("leader")
        return self.poll_seconds

    async def _restart_crashed(self, platforms: list[Platform]) -> None:
        """A started platform whose own loop died (``crashed()``, e.g. Matrix's sync loop) is
        stopped, its posts held, and started again by ``_start`` after a back-off."""
        for platform in platforms:
            crashed = getattr(platform, "crashed", None)
            error = crashed() if platform.name in self.started and crashed else None
            if error is None:
                continue
            self.supervisor.failed(platform.name, error)
            self.started.discard(platform.name)
            if platform.name in SINGLETONS:
                self.core.outbox.paused.add(platform.name)
            with contextlib.suppress(Exception):
                await platform.stop()

    async def _start(self, platforms: list[Platform]) -> None:
        """Start the platforms not running yet whose back-off has passed (one failing to
        start, e.g. Matrix while the homeserver is down, is retried; the rest go on)."""
        await self._restart_crashed(platforms)
        for platform in platforms:
            if platform.name in self.started or not self.supervisor.due(platform.name):
                continue
            try:
                await platform.start()
            except Exception as error:
                self.supervisor.failed(platform.name, error)
                with contextlib.suppress(Exception):
                    await platform.stop()  # whatever half-started goes
                continue
            self.started.add(platform.name)
            self.supervisor.succeeded(platform.name)
            self.core.outbox.paused.discard(platform.name)

    async def _lead(self) -> None:
        log.info("leading: tick and singleton platforms start here")
        self.leading = True
        self.core.telemetry.leader.set(1)
        await self._start(self.singletons)
        await self.tick()

    async def _follow(self) -> None:
        log.warning("not leading any more: singleton platforms stop here")
        self.leading = False
        self.core.telemetry.leader.set(0)
        for platform in self.singletons:
            self.core.outbox.paused.add(platform.name)
            self.supervisor.succeeded(platform.name)  # a standby is not a failure
            if platform.name in self.started:
                self.started.discard(platform.name)
                try:
                    await platform.stop()
                except Exception:
                    log.exception("platform failed to stop", extra={"platform": platform.name})

    async def _resign(self) -> None:
        """Stop acting as leader and give the lock up (another replica may take it)."""
        await self._follow()
        try:
            await self.leadership.release()
        except Exception:
            log.exception("giving up the leader lock failed (its connection is dropped)")

    async def stop(self) -> None:
        self.supervisor.stopping = True
        for platform in self.everywhere:
            try:
                await platform.stop()
            except Exception:
                log.exception("platform failed to stop", extra={"platform": platform.name})
        if self.leading:
            await self._follow()
        await self.leadership.release()

    def checks(self) -> dict[str, Any]:
        async def leader() -> dict[str, Any]:
            return {**self.supervisor.part("leader", critical=True).report(
                self.supervisor.clock()), "leader": self.leading}

        def supervised(platform: Platform) -> Any:
            async def check() -> dict[str, Any]:
                if platform.name in SINGLETONS and not self.leading:
                    return {"ok": True, "standby": True}
                failing = self.supervisor.health().get(platform.name)
                if failing is not None:
                    return {**failing, "starting": True}
                return await platform.health()
            return check

        def part(name: str) -> Any:
            async def check() -> dict[str, Any]:
                return self.supervisor.health().get(name, {"ok": True})
            return check

        parts: dict[str, Any] = {"leader": leader, "outbox": part("outbox"),
                                 "tick": part("tick")}
        for platform in self.everywhere + self.singletons:
            parts[platform.name] = supervised(platform)
        return parts


async def run(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM (or ``stop``): migrate, start, serve, then shut down in order."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    core = await build_core(settings, migrate_in_child=True)  # Alembic stays out of here
    platforms = _platforms(settings, core)
    for platform in platforms:
        core.gateways[platform.name] = platform.gateway
    replica = Replica(core, platforms)
    app = build_web(core, replica.checks(), supervisor=replica.supervisor)
    for platform in platforms:
        platform.mount(app)
    web_runner = await start_web(app, *settings.http_listen)
    scheduler = AsyncIOScheduler()
    # The tick is only a wake-up: state lives in SQL, so a skipped or late run loses nothing.
    scheduler.add_job(replica.tick, "interval", seconds=TICK_SECONDS, coalesce=True,
                      max_instances=1, misfire_grace_time=None, id="follow-ups")
    scheduler.start()
    worker_stop = asyncio.Event()
    worker = replica.supervisor.spawn("outbox", lambda: core.outbox.run(worker_stop),
                                      worker_stop)
    await replica.step()  # the lead and the platforms, at once; then every second
    follower = replica.supervisor.spawn("leader", lambda: replica.follow(stop), stop)
    log.info("liaisonbot running", extra={"listen": "{}:{}".format(*settings.http_listen),
                                          "platforms": [p.name for p in platforms]})
    await stop.wait()
    replica.supervisor.stopping = True
    log.info("shutting down")
    await web_runner.cleanup()  # no more commands over HTTP
    for platform in platforms:  # commands acknowledged before that still finish their work
        await platform.quiesce(DRAIN_SECONDS)
    scheduler.shutdown(wait=False)
    await follower
    worker_stop.set()
    await worker
    log.info("outbox worker stopped; finishing deliveries")
    # Drain while the gateways are still up, then stop the platforms (Matrix saves its state).
    await core.outbox.finish(DRAIN_SECONDS)
    await replica.stop()
    await core.close()
