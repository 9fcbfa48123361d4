"""The HTTP server: ``GET /healthz``, ``GET /metrics``; platforms mount their routes on it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from liaisonbot.bootstrap import Core
from liaisonbot.supervision import Supervisor

HealthCheck = Callable[[], Awaitable[dict[str, Any]]]


def build_web(core: Core, checks: dict[str, HealthCheck] | None = None, *,
              supervisor: Supervisor | None = None) -> web.Application:
    """The aiohttp application. ``checks`` add one entry per enabled platform; each returns
    a dict with at least ``ok``. ``supervisor`` decides ``/livez`` (see ``supervision``)."""
    app = web.Application()
    parts: dict[str, HealthCheck] = dict(checks or {})

    async def database() -> dict[str, Any]:
        try:
            async with core.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            async with core.uow() as uow:
                backlog = await uow.outbox.backlog()
            return {"ok": True, "outbox_backlog": backlog}
        except Exception as error:  # health must answer, whatever broke
            return {"ok": False, "error": type(error).__name__}

    async def scheduler() -> dict[str, Any]:
        last = core.ticker.last_tick
        lag = (core.clock.now() - last).total_seconds() if last else None
        return {"ok": True, "last_tick": last.isoformat() if last else None, "lag_s": lag}

    async def healthz(_request: web.Request) -> web.Response:
        report = {"database": await database(), "scheduler": await scheduler()}
        for name, check in parts.items():
            try:
                report[name] = await check()
            except Exception as error:
                report[name] = {"ok": False, "error": type(error).__name__}
        healthy = all(part.get("ok") for part in report.values())
        return web.json_response({"ok": healthy, **report}, status=200 if healthy else 503)

    async def metrics(_request: web.Request) -> web.Response:
        telemetry = core.telemetry
        now = core.clock.now()
        async with core.uow() as uow:
            telemetry.backlog.set(await uow.outbox.backlog())
            counts = await uow.requests.overdue_counts(now)
        for office in core.settings.directory.offices:
            telemetry.overdue.labels(office.slug).set(counts.get(office.slug, 0))
        last = core.ticker.last_tick
        telemetry.scheduler_lag.set((now - last).total_seconds() if last else -1)
        return web.Response(body=telemetry.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def livez(_request: web.Request) -> web.Response:
        """Liveness: the event loop answers, no supervised task has died, and no critical
        part has failed for too long while the database answers. Outside outages (database,
        Slack, homeserver) show on /healthz only, and never get the process restarted."""
        problems: list[str] = []
        if supervisor is not None:
            problems = supervisor.dead()
            failing = supervisor.failing_too_long()
            if failing and (await database())["ok"]:
                problems += failing
        if problems:
            return web.json_response({"ok": False, "problems": problems}, status=503)
        return web.json_response({"ok": True})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/livez", livez)
    app.router.add_get("/metrics", metrics)
    if core.settings.web.enabled:  # the case board under /board (read-only, OIDC sign-in)
        from liaisonbot.board.pages import Board

        Board(web_settings=core.settings.web, directory=core.settings.directory, uow=core.uow,
              clock=core.clock).mount(app)
    return app


async def start_web(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
