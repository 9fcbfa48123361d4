
"""Test helper: the liaisonbot Matrix platform against the session Synapse."""


from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from liaisonbot.bootstrap import Core, build_core
from liaisonbot.chat.matrix.platform import MatrixPlatform
from liaisonbot.chat.matrix.session import Credentials
from liaisonbot.config import Settings, parse
from liaisonbot.service.outbox import RetryPolicy
from liaisonbot.service.ports import Clock
from support.poll import eventually
from support.synapse import RegisteredUser, SynapseServer


def settings_for(server: SynapseServer, bot: RegisteredUser, tmp: Path, *,
                 offices: list[dict[str, Any]], allowed: list[str] | None = None,
                 exclude_insecure_devices: bool = False) -> Settings:
    """``exclude_insecure_devices`` is off by default here: the nio partners of most tests
    have no cross-signing (tests of the real default cross-sign theirs and turn it on)."""
    data: dict[str, Any] = {
        "database": {"url": f"sqlite+aiosqlite:///{tmp / 'bot.db'}"},
        "matrix": {"enabled": True, "homeserver": server.base_url, "user_id": bot.user_id,
                   "data_dir": str(tmp / "matrix"),
                   "exclude_insecure_devices": exclude_insecure_devices},
        "offices": offices,
    }
    if allowed is not None:
        data["matrix"]["allowed_servers"] = allowed
    return parse(data, "test")


def office(slug: str, room: str, members: list[str] = (), **kw: Any) -> dict[str, Any]:  # type: ignore[assignment]
    return {"slug": slug, "name": kw.pop("name", slug.upper()), "timezone": "UTC",
            "working_days": "Mon-Sun", "rooms": [f"matrix:{room}"],
            "members": [f"matrix:{m}" for m in members], **kw}


async def register_bot(server: SynapseServer) -> RegisteredUser:
    bot = await server.register("bot-" + secrets.token_hex(3))
    await server.override_ratelimit(bot.user_id)
    return bot


@dataclass
class RunningBot:
    core: Core
    platform: MatrixPlatform
    stop: asyncio.Event
    worker: asyncio.Task[None]


@contextlib.asynccontextmanager
async def running_bot(settings: Settings, bot: RegisteredUser, *, clock: Clock | None = None,
                      grace_seconds: float = 60.0, timeline_limit: int = 50,
                      poll_ms: int = 2000, creds: Credentials | None = None
                      ) -> AsyncIterator[RunningBot]:
    """Core + Matrix platform + outbox worker, shut down in order afterwards."""
    core = await build_core(settings, clock=clock,
                            retry=RetryPolicy(base_seconds=0.2, cap_seconds=2))
    creds = creds or Credentials(pickle_key="test-pickle-key", access_token=bot.access_token,
                                 device_id=bot.device_id)
    platform = MatrixPlatform(settings, core, creds, poll_ms=poll_ms,
                              timeline_limit=timeline_limit, grace_seconds=grace_seconds)
    core.gateways["matrix"] = platform.gateway
    stop = asyncio.Event()
    worker = asyncio.create_task(core.outbox.run(stop, idle_seconds=0.2))
    try:
        await platform.start()
        yield RunningBot(core, platform, stop, worker)
    finally:
        stop.set()
        await platform.stop()
        await asyncio.wait_for(worker, timeout=10)
        await core.close()


async def wait_joined(platform: MatrixPlatform, room_id: str, timeout: float = 20) -> None:
    await eventually(lambda: room_id in platform.client.rooms, timeout=timeout,
                     what=f"joined {room_id}")
