"""The Slack test harness: the real bot (core, HTTP endpoint, outbox) against FakeSlack."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from liaisonbot.bootstrap import Core, build_core
from liaisonbot.chat.slack.platform import SlackPlatform, build_slack
from liaisonbot.config import parse
from liaisonbot.service.ports import Clock
from liaisonbot.web import build_web, start_web
from support.fake_slack import FakeSlack, event_body, signed_headers, slash_command_body
from support.poll import eventually

SECRET = "s3cret"
T1, T2 = "T0DEFAULT", "T2"


class ShiftClock(Clock):
    """Real time plus an offset the test sets (so retries are due in real seconds)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


def settings_dict(db: Path, base_url: str, *, mode: str = "http",
                  spo_room: str = "slack:C0SPO") -> dict[str, Any]:
    office = {"timezone": "Europe/Amsterdam", "working_hours": "09:00-17:30",
              "working_days": "Mon-Fri"}
    return {"database": {"url": f"sqlite+aiosqlite:///{db}"},
            "http": {"listen": "127.0.0.1:0"},
            "slack": {"enabled": True, "mode": mode, "api_base_url": base_url},
            "offices": [
                {**office, "slug": "icc", "name": "ICC OTP", "rooms": ["slack:C0ICC"]},
                {**office, "slug": "spo", "name": "BA SPO", "rooms": [spo_room],
                 "contacts": [{"name": "Bojan Kovačević", "role": "liaison officer",
                               "user": "slack:U0BOB", "phone": "+38733555014",
                               "languages": ["bs", "en"]}]},
                {**office, "slug": "desk", "name": "Console desk", "rooms": ["console:desk"]}]}


@dataclass
class Bot:
    """A running bot: ``post`` signed bodies to its real endpoint, inspect ``slack``."""

    slack: FakeSlack
    core: Core
    platform: SlackPlatform
    clock: ShiftClock
    url: str
    http: aiohttp.ClientSession

    async def post(self, body: bytes, *, headers: dict[str, str] | None = None,
                   secret: str = SECRET) -> tuple[int, str, float]:
        started = time.monotonic()
        async with self.http.post(self.url, data=body,
                                  headers=headers or signed_headers(secret, body)) as resp:
            text = await resp.text()
        return resp.status, text, time.monotonic() - started

    async def command(self, text: str, *, user: str = "U0ALICE", channel: str = "C0ICC",
                      team: str = T1, name: str = "r") -> tuple[int, str, float]:
        body = slash_command_body(text=text, user_id=user, channel_id=channel, team_id=team,
                                  response_url=self.slack.response_url(name))
        return await self.post(body)

    async def event(self, event: dict[str, Any], *, event_id: str, team: str = T1,
                    retry: int = 0) -> int:
        body = event_body(event, team_id=team, event_id=event_id)
        headers = signed_headers(SECRET, body)
        if retry:
            headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
        status, _, _ = await self.post(body, headers=headers)
        return status

    async def interact(self, payload: dict[str, Any]) -> int:
        from support.fake_slack import interaction_body

        status, _, _ = await self.post(interaction_body(payload))
        return status

    async def settled(self, limit: float = 8.0) -> None:
        """A positive barrier: every acknowledged command and event has finished its work
        (the inbox has no row pending) and the outbox has nothing pending."""
        async def quiet() -> bool:
            if self.core.inbox.busy:
                return False
            async with self.core.uow() as uow:
                return (await uow.inbox.pending() == 0 and await uow.outbox.backlog() == 0
                        and not self.core.inbox.busy)

        await eventually(quiet, timeout=limit, what="inbound work done and outbox empty")

    def cards(self, channel: str, team: str | None = None) -> list[dict[str, Any]]:
        found = self.slack.messages(channel, team)
        return [m for m in found if m.get("thread_ts") in (None, m["ts"])]

    def thread(self, channel: str, root: str, team: str | None = None) -> list[dict[str, Any]]:
        found = self.slack.messages(channel, team)
        return [m for m in found if m.get("thread_ts") == root and m["ts"] != root]

    async def status(self, request_id: int) -> str:
        async with self.core.uow() as uow:
            request = await uow.requests.get(request_id)
        assert request is not None
        return request.status.value


@asynccontextmanager
async def running_bot(tmp: Path, *, mode: str = "http", spo_room: str = "slack:C0SPO",
                      env: dict[str, str] | None = None,
                      slack: FakeSlack | None = None) -> AsyncIterator[Bot]:
    own = slack is None
    fake = slack or await FakeSlack().start()
    fake.add_user(T1, "U0ALICE", "alice", "Alice A")
    clock = ShiftClock()
    settings = parse(settings_dict(tmp / "lb.db", fake.base_url, mode=mode, spo_room=spo_room),
                     "test")
    core = await build_core(settings, clock=clock)
    platform = build_slack(settings, core, pace_seconds=0.0, env=env or {
        "LIAISONBOT_SLACK_BOT_TOKEN": "xoxb-test", "LIAISONBOT_SLACK_SIGNING_SECRET": SECRET})
    core.gateways["slack"] = platform.gateway
    app = build_web(core, {"slack": platform.health})
    platform.mount(app)
    runner = await start_web(app, "127.0.0.1", 0)
    port = runner.addresses[0][1]
    stop = asyncio.Event()
    worker = asyncio.create_task(core.outbox.run(stop, idle_seconds=0.2))
    inbox = asyncio.create_task(core.inbox.run(stop))
    await platform.start()
    http = aiohttp.ClientSession()
    try:
        yield Bot(fake, core, platform, clock, f"http://127.0.0.1:{port}/slack/events", http)
    finally:
        stop.set()
        await core.inbox.stop(2.0)
        await platform.stop()
        await http.close()
        await asyncio.wait_for(worker, 5)
        await asyncio.wait_for(inbox, 5)
        await runner.cleanup()
        await core.close()
        if own:
            await fake.stop()


def all_text(message: dict[str, Any]) -> str:
    """Everything Slack would render of a message: fallback text and blocks."""
    return message.get("text", "") + json.dumps(message.get("blocks") or [])


__all__ = ["SECRET", "T1", "T2", "Bot", "all_text", "running_bot", "web"]
