"""The Matrix platform as the runner sees it: ``build_matrix(settings, core)``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from aiohttp import ClientError, web
from nio import AsyncClient

from liaisonbot.chat.matrix.crosssigning import CrossSigning
from liaisonbot.chat.matrix.gateway import MatrixGateway
from liaisonbot.chat.matrix.session import Credentials, MatrixSetupError, login, make_client
from liaisonbot.chat.matrix.sync import HomeserverUnavailable, MatrixSync
from liaisonbot.config import Settings

if TYPE_CHECKING:
    from liaisonbot.bootstrap import Core

log = logging.getLogger(__name__)
#: The homeserver is down or unreachable: the sync loop keeps trying, posts wait in the outbox.
_UNREACHABLE = (HomeserverUnavailable, ClientError, TimeoutError)


class MatrixPlatform:
    """One bot device on one homeserver: the /sync loop in, the gateway out."""

    name = "matrix"

    def __init__(self, settings: Settings, core: Core, creds: Credentials, *,
                 poll_ms: int = 30_000, timeline_limit: int = 50,
                 grace_seconds: float = 60.0) -> None:
        self.settings = settings
        self.core = core
        self.creds = creds
        self.client: AsyncClient = make_client(settings.matrix, creds)
        key_lock = asyncio.Lock()
        self.identity = CrossSigning(self.client, data_dir=settings.matrix.data_dir,
                                     pickle_key=creds.pickle_key,
                                     recovery_key=creds.recovery_key, password=creds.password)
        self.gateway = MatrixGateway(
            self.client, uow=core.uow, clock=core.clock,  # type: ignore[arg-type]
            key_lock=key_lock, exclude_insecure_devices=settings.matrix.exclude_insecure_devices)
        self.sync = MatrixSync(self.client, settings=settings, desk=core.desk,
                               uow=core.uow,  # type: ignore[arg-type]
                               clock=core.clock, key_lock=key_lock,
                               poll_ms=poll_ms,
                               replies_sent=core.outbox.sent,
                               timeline_limit=timeline_limit, grace_seconds=grace_seconds,
                               identity=self.identity, telemetry=core.telemetry)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def mount(self, app: web.Application) -> None:
        """Matrix needs no HTTP routes."""

    async def start(self) -> None:
        await login(self.client, self.settings.matrix, self.creds)
        try:
            await self.sync.start()
        except _UNREACHABLE as error:  # not fatal: the loop runs start() again, backing off
            self.sync.state.failing = True
            self.sync.state.errors += 1
            log.warning("matrix homeserver unreachable at start; retrying in the sync loop",
                        extra={"error": f"{type(error).__name__}: {error}"})
        self._stop.clear()
        self._task = asyncio.create_task(self.sync.run(self._stop), name="matrix-sync")
        self._task.add_done_callback(_log_crash)
        log.info("matrix started", extra={"user": self.client.user_id,
                                          "device": self.client.device_id})

    def crashed(self) -> BaseException | None:
        """Why the sync loop ended though nobody stopped it (the runner restarts the platform
        after a back-off), else None."""
        task = self._task
        if task is None or not task.done() or self._stop.is_set() or task.cancelled():
            return None
        return task.exception() or RuntimeError("the matrix sync loop ended")

    async def quiesce(self, timeout: float) -> None:  # noqa: ASYNC109 (a drain budget)
        """Matrix events are handled inside the sync loop; nothing runs after it."""

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        try:  # the last token handled in full (written at most every second meanwhile)
            await self.sync.flush()
        except Exception:  # a restart then replays a little more; the desk drops it
            log.exception("matrix sync token not saved at stop")
        await self.client.close()

    async def health(self) -> dict[str, Any]:
        state = self.sync.state
        fresh = time.monotonic() - state.last_sync_monotonic < self.sync.poll_ms / 1000 + 60
        running = self._task is not None and not self._task.done()
        identity = self.identity.state
        trust = getattr(self.client, "trust", None)
        return {"ok": bool(running and state.synced and not state.failing and fresh
                           and not identity.problem),
                "synced": state.synced,
                "last_sync": state.last_sync.isoformat() if state.last_sync else None,
                "errors": state.errors, "undecrypted": state.pending_undecrypted,
                "withheld": state.withheld, "device": self.client.device_id,
                "cross_signing": identity.as_health(),
                "identity_changed": sorted(trust.pins.held()) if trust is not None else []}


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("matrix sync loop died", exc_info=task.exception())


def build_matrix(settings: Settings, core: Core) -> MatrixPlatform:
    """The platform, with credentials from the environment; exits with one sentence when a
    secret is missing."""
    try:
        creds = Credentials.from_env()
    except MatrixSetupError as error:
        raise SystemExit(f"liaisonbot: matrix: {error}") from None
    return MatrixPlatform(settings, core, creds)
