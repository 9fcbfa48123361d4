"""``liaisonbot run``: every enabled platform, the outbox worker, the tick and the HTTP server."""

from __future__ import annotations

import asyncio
import logging
import signal

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from liaisonbot.bootstrap import build_core
from liaisonbot.chat.platform import Platform
from liaisonbot.config import Settings
from liaisonbot.web import build_web, start_web

log = logging.getLogger(__name__)
TICK_SECONDS = 30


def _platforms(settings: Settings, core: object) -> list[Platform]:
    found: list[Platform] = []
    if settings.slack.enabled:
        from liaisonbot.chat.slack.platform import build_slack

        found.append(build_slack(settings, core))
    if settings.matrix.enabled:
        from liaisonbot.chat.matrix.platform import build_matrix

        found.append(build_matrix(settings, core))
    return found


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
    app = build_web(core, {p.name: p.health for p in platforms})
    for platform in platforms:
        platform.mount(app)
    runner = await start_web(app, *settings.http_listen)
    scheduler = AsyncIOScheduler()
    # The tick is only a wake-up: state lives in SQL, so a skipped or late run loses nothing.
    scheduler.add_job(core.ticker.tick, "interval", seconds=TICK_SECONDS, coalesce=True,
                      max_instances=1, misfire_grace_time=None, id="follow-ups")
    scheduler.start()
    worker = asyncio.create_task(core.outbox.run(stop), name="outbox")
    for platform in platforms:
        await platform.start()
    log.info("liaisonbot running", extra={"listen": "%s:%d" % settings.http_listen,
                                          "platforms": [p.name for p in platforms]})
    await core.ticker.tick()
    await stop.wait()
    log.info("shutting down")
    for platform in platforms:
        await platform.stop()
    scheduler.shutdown(wait=False)
    try:
        await asyncio.wait_for(worker, timeout=10)
    except TimeoutError:
        worker.cancel()
    await runner.cleanup()
    await core.close()
