"""``liaisonbot run``: every enabled platform, the outbox worker, the tick and the HTTP server.

Several replicas may share one PostgreSQL: all serve Slack HTTP and deliver Slack posts; the
follow-up tick and the Matrix sync loop (one device can only sync once) run in the replica
that holds the leader lock (``store.leader``), and move to another within seconds when it
dies. Every replica works the inbox (Slack things acknowledged by any of them, and the rows of
one that died).

SIGTERM closes the HTTP server (no more Slack requests: a load balancer sends them to another
replica), hands back at once what it has not started (inbox rows waiting for a lane, posts not
yet sent), gives what is in flight up to ``DRAIN_SECONDS`` and hands back what is still
unfinished then, stops the platforms (Matrix stores its sync state), gives up the lead and
exits 0, within a few seconds whatever the backlog: a replica or the next start takes the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.engine import make_url

from liaisonbot.bootstrap import Core, build_core
from liaisonbot.chat.platform import Platform
from liaisonbot.config import Settings
from liaisonbot.logs import ANNOUNCE
from liaisonbot.memory import release_free_memory
from liaisonbot.store.db import INSTANCE, is_sqlite
from liaisonbot.store.leader import LEADER_POLL_SECONDS, Leadership
from liaisonbot.supervision import Supervisor
from liaisonbot.web import build_web, start_web

log = logging.getLogger(__name__)
#: The start and stop lines: shown at the default level too (``logs.ANNOUNCE``).
announce = logging.getLogger(ANNOUNCE)
TICK_SECONDS = 30
#: How long SIGTERM lets the work and the posts already in flight finish
#: ($LIAISONBOT_DRAIN_SECONDS); what is unfinished then, and everything not started, is handed
#: back for another replica or the next start.
DRAIN_SECONDS = float(os.environ.get("LIAISONBOT_DRAIN_SECONDS", "2"))
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

    async def _follow(self, *, stopping: bool = False) -> None:
        if stopping:  # a normal stop: nothing went wrong
            log.info("giving up the lead: stopping")
        else:
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
            await self._follow(stopping=True)
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
                                 "inbox": part("inbox"), "tick": part("tick")}
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
    core.inbox.on_failure = lambda error: replica.supervisor.failed("inbox", error,
                                                                    critical=True)
    core.inbox.on_success = lambda: replica.supervisor.succeeded("inbox")
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
    inbox_stop = asyncio.Event()
    inbox = replica.supervisor.spawn("inbox", lambda: core.inbox.run(inbox_stop), inbox_stop)
    follower = replica.supervisor.spawn("leader", lambda: replica.follow(stop), stop)
    announce.info(serving_line(settings, platforms, replica.leading), extra={
        "listen": "{}:{}".format(*settings.http_listen), "instance": INSTANCE,
        "platforms": [p.name for p in platforms], "leader": replica.leading})
    await stop.wait()
    await _shut_down(core, replica, platforms, web_runner=web_runner, scheduler=scheduler,
                     workers=(inbox_stop, inbox, worker_stop, worker), follower=follower)


def serving_line(settings: Settings, platforms: list[Platform], leading: bool) -> str:
    """What ``run`` serves, in one line: address, database, platforms, whether it leads."""
    host, port = settings.http_listen
    served = ", ".join(
        f"slack ({settings.slack.mode} mode)" if p.name == "slack" else p.name
        for p in platforms) or "no chat platform"
    database = make_url(settings.database_url).render_as_string(hide_password=True)
    if is_sqlite(settings.database_url):
        lead = "leading (SQLite: one process)"
    else:
        lead = "leading" if leading else "standing by (another replica leads)"
    routes = ["/healthz", "/livez", "/metrics"]
    if settings.slack.enabled and settings.slack.mode == "http":
        routes.insert(0, "/slack/events")
    if settings.web.enabled:
        routes.append("/board")
    return (f"liaisonbot serving http://{host}:{port} ({', '.join(routes)}); "
            f"database {database}; platforms: {served}; {lead}")


async def _shut_down(core: Core, replica: Replica, platforms: list[Platform], *,
                     web_runner: Any, scheduler: AsyncIOScheduler,
                     workers: tuple[asyncio.Event, asyncio.Task[None], asyncio.Event,
                                    asyncio.Task[None]],
                     follower: asyncio.Task[None]) -> None:
    """SIGTERM: hand back what is not started, give what is in flight ``DRAIN_SECONDS``,
    hand back the rest, stop (see the module's docstring)."""
    inbox_stop, inbox, worker_stop, worker = workers
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DRAIN_SECONDS
    replica.supervisor.stopping = True
    log.info("stopping")
    core.outbox.halt()  # no post starts from here on; the ones in flight finish
    worker_stop.set()  # its loop ends at once (told first: ending is not a failure)
    await web_runner.cleanup()  # no more Slack requests; those answered are in the inbox
    inbox_stop.set()  # no more rows taken from others
    handed = await core.inbox.stop(max(deadline - loop.time(), 0.0))
    await inbox
    for platform in platforms:  # Matrix: the events of the sync in hand
        await platform.quiesce(max(deadline - loop.time(), 0.0))
    scheduler.shutdown(wait=False)
    await follower
    await core.outbox.finish(max(deadline - loop.time(), 0.0))
    await worker
    await core.outbox.release_held()
    await replica.stop()  # the platforms (Matrix saves its state), then the lead
    async with core.uow(read_only=True) as uow:
        left = await uow.outbox.backlog()
    await core.close()
    announce.info(f"liaisonbot stopped; left for another replica or the next start: "
                  f"{len(handed)} inbound, {left} posts",
                  extra={"inbox_handed_back": len(handed), "outbox_pending": left})
