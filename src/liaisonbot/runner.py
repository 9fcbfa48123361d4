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
from liaisonbot.store.leader import LEADER_POLL_SECONDS, Leadership
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
    """This process's share of the work, following the leader lock."""

    def __init__(self, core: Core, platforms: list[Platform]) -> None:
        self.core = core
        self.leadership = Leadership(core.engine)
        self.everywhere = [p for p in platforms if p.name not in SINGLETONS]
        self.singletons = [p for p in platforms if p.name in SINGLETONS]
        self.leading = False
        core.outbox.paused = {p.name for p in self.singletons}

    async def tick(self) -> None:
        if self.leading:
            await self.core.ticker.tick()

    async def follow(self, stop: asyncio.Event) -> None:
        """Check the lead every second; start or stop the singletons when it changes hands."""
        while not stop.is_set():
            try:
                leading = await self.leadership.check()
            except Exception:
                log.exception("leader check failed")
                leading = False
            if leading != self.leading:
                await (self._lead() if leading else self._follow())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), LEADER_POLL_SECONDS)

    async def _lead(self) -> None:
        log.info("leading: tick and singleton platforms start here")
        self.leading = True
        self.core.telemetry.leader.set(1)
        for platform in self.singletons:
            try:
                await platform.start()
            except Exception:  # its health says so; the tick and other platforms go on
                log.exception("platform failed to start", extra={"platform": platform.name})
                continue
            self.core.outbox.paused.discard(platform.name)
        await self.core.ticker.tick()

    async def _follow(self) -> None:
        log.warning("not leading any more: singleton platforms stop here")
        self.leading = False
        self.core.telemetry.leader.set(0)
        for platform in self.singletons:
            self.core.outbox.paused.add(platform.name)
            await platform.stop()

    async def stop(self) -> None:
        for platform in self.everywhere:
            await platform.stop()
        if self.leading:
            await self._follow()
        await self.leadership.release()

    def checks(self) -> dict[str, Any]:
        async def leader() -> dict[str, Any]:
            return {"ok": True, "leader": self.leading}

        def standby_aware(platform: Platform) -> Any:
            async def check() -> dict[str, Any]:
                if platform.name in SINGLETONS and not self.leading:
                    return {"ok": True, "standby": True}
                return await platform.health()
            return check

        parts: dict[str, Any] = {"leader": leader}
        for platform in self.everywhere + self.singletons:
            parts[platform.name] = standby_aware(platform)
        return parts


async def run(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM (or ``stop``): migrate, start, serve, then shut down in order."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    core = await build_core(settings)
    platforms = _platforms(settings, core)
    for platform in platforms:
        core.gateways[platform.name] = platform.gateway
    replica = Replica(core, platforms)
    app = build_web(core, replica.checks())
    for platform in platforms:
        platform.mount(app)
    web_runner = await start_web(app, *settings.http_listen)
    scheduler = AsyncIOScheduler()
    # The tick is only a wake-up: state lives in SQL, so a skipped or late run loses nothing.
    scheduler.add_job(replica.tick, "interval", seconds=TICK_SECONDS, coalesce=True,
                      max_instances=1, misfire_grace_time=None, id="follow-ups")
    scheduler.start()
    worker_stop = asyncio.Event()
    worker = asyncio.create_task(core.outbox.run(worker_stop), name="outbox")
    for platform in replica.everywhere:
        await platform.start()
    follower = asyncio.create_task(replica.follow(stop), name="leader")
    log.info("liaisonbot running", extra={"listen": "{}:{}".format(*settings.http_listen),
                                          "platforms": [p.name for p in platforms]})
    await stop.wait()
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
