
"""Test helper: one core with Slack (FakeSlack) and Matrix (the session Synapse) together."""


from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from liaisonbot.bootstrap import Core, build_core
from liaisonbot.chat.matrix.platform import MatrixPlatform
from liaisonbot.chat.matrix.session import Credentials
from liaisonbot.chat.slack.platform import SlackPlatform, build_slack
from liaisonbot.config import Settings, parse
from liaisonbot.service.outbox import RetryPolicy
from liaisonbot.web import build_web, start_web
from support.fake_slack import FakeSlack
from support.poll import eventually
from support.synapse import PartnerClient, RegisteredUser, SynapseServer
from test_matrix_helpers import register_bot, wait_joined
from test_slack_harness import SECRET, T1, Bot, ShiftClock

SLACK_ENV = {"LIAISONBOT_SLACK_BOT_TOKEN": "xoxb-test", "LIAISONBOT_SLACK_SIGNING_SECRET": SECRET}


@dataclass
class World:
    """The people and rooms of a cross-platform test: ICC on Slack, BA SPO on Matrix."""

    tmp: Path
    synapse: SynapseServer
    slack: FakeSlack
    bot_user: RegisteredUser
    bojan: PartnerClient
    room: str  # BA SPO's Matrix room id
    settings: Settings


async def make_world(synapse: SynapseServer, tmp: Path, *,
                     icc_members: tuple[str, ...] = ()) -> World:
    """Register the bot and Bojan (display name "Bojan Kovač"), create BA SPO's room, start
    a FakeSlack with Alice (ICC OTP, listing ``icc_members``)."""
    bot = await register_bot(synapse)
    user = await synapse.register("bojan-" + tmp.name[-6:].replace("_", ""))
    bojan = await PartnerClient.login(synapse, user, tmp / "bojan", encrypted=False)
    await bojan.client.set_displayname("Bojan Kovač")
    room = await bojan.create_room("ba-spo", encrypted=False, invite=[bot.user_id])
    slack = await FakeSlack().start()
    slack.add_user(T1, "U0ALICE", "Alice A", "Alice Andersen")
    office = {"timezone": "UTC", "working_hours": "00:00-23:59", "working_days": "Mon-Sun"}
    settings = parse({
        "database": {"url": f"sqlite+aiosqlite:///{tmp / 'bridge.db'}"},
        "http": {"listen": "127.0.0.1:0"},
        "slack": {"enabled": True, "mode": "http", "api_base_url": slack.base_url},
        "matrix": {"enabled": True, "homeserver": synapse.base_url, "user_id": bot.user_id,
                   "data_dir": str(tmp / "matrix")},
        "offices": [
            {**office, "slug": "icc-otp", "name": "ICC OTP", "rooms": ["slack:C0ICC"],
             "members": list(icc_members)},
            {**office, "slug": "ba-spo", "name": "BA SPO", "rooms": [f"matrix:{room}"],
             "members": [f"matrix:{user.user_id}"]}]}, "bridge-test")
    return World(tmp, synapse, slack, bot, bojan, room, settings)


@dataclass
class Bridge:
    """A running core with both platforms. ``slack`` is the Slack harness's ``Bot`` (signed
    events, commands, clicks, ``settled``) on the same core."""

    core: Core
    slack: Bot
    slack_platform: SlackPlatform
    matrix: MatrixPlatform
    stop: asyncio.Event
    worker: asyncio.Task[None] | None

    async def pause_outbox(self) -> None:
        """Stop delivering (posts stay queued in SQL), as a crash before delivery would."""
        self.stop.set()
        if self.worker is not None:
            await asyncio.wait_for(self.worker, 10)
            self.worker = None

    async def backlog(self) -> int:
        async with self.core.uow() as uow:
            return await uow.outbox.backlog()

    async def wait_backlog(self, count: int, timeout: float = 20) -> None:
        async def reached() -> bool:
            return await self.backlog() == count

        await eventually(reached, timeout=timeout, what=f"outbox backlog {count}")


@contextlib.asynccontextmanager
async def running_bridge(world: World, *, deliver: bool = True,
                         poll_ms: int = 1000) -> AsyncIterator[Bridge]:
    """Core + Slack endpoint + Matrix sync + outbox worker, shut down in order afterwards."""
    clock = ShiftClock()
    core = await build_core(world.settings, clock=clock,
                            retry=RetryPolicy(base_seconds=0.2, cap_seconds=2))
    slack = build_slack(world.settings, core, pace_seconds=0.0, env=SLACK_ENV)
    core.gateways["slack"] = slack.gateway
    creds = Credentials(pickle_key="test-pickle-key", access_token=world.bot_user.access_token,
                        device_id=world.bot_user.device_id)
    matrix = MatrixPlatform(world.settings, core, creds, poll_ms=poll_ms)
    core.gateways["matrix"] = matrix.gateway
    app = build_web(core, {"slack": slack.health, "matrix": matrix.health})
    slack.mount(app)
    runner = await start_web(app, "127.0.0.1", 0)
    port = runner.addresses[0][1]
    stop = asyncio.Event()
    worker = asyncio.create_task(core.outbox.run(stop, idle_seconds=0.2)) if deliver else None
    http = aiohttp.ClientSession()
    bridge = Bridge(core, Bot(world.slack, core, slack, clock,
                              f"http://127.0.0.1:{port}/slack/events", http),
                    slack, matrix, stop, worker)
    try:
        await slack.start()
        await matrix.start()
        await wait_joined(matrix, world.room)
        yield bridge
    finally:
        await bridge.pause_outbox()
        await matrix.stop()
        await slack.stop()
        await http.close()
        await runner.cleanup()
        await core.close()


def slack_message(text: str, root: str, *, user: str = "U0ALICE", channel: str = "C0ICC",
                  ts: str | None = None, **extra: Any) -> dict[str, Any]:
    """A person's message in a Slack thread, as the Events API delivers it."""
    return {"type": "message", "channel": channel, "user": user, "text": text,
            "ts": ts or f"{time.time():.6f}", "thread_ts": root, **extra}


def notice_in_thread(root: str, needle: str = "") -> Any:
    """A predicate for the bot's m.notice in ``root``'s thread containing ``needle``."""
    def check(e: Any) -> bool:
        content = e.source.get("content") or {}
        rel = content.get("m.relates_to") or {}
        return (content.get("msgtype") == "m.notice" and rel.get("rel_type") == "m.thread"
                and rel.get("event_id") == root and needle in content.get("body", ""))
    return check


def event_of_type(kind: str, pred: Any = lambda e: True) -> Any:
    return lambda e: e.source.get("type") == kind and pred(e)
