
"""Matrix faults against a real Synapse (issue 3): a rate-limit storm (``M_LIMIT_EXCEEDED``
honoured, retries capped, per-room order kept, each post once) and a homeserver outage (sync
backs off and reconnects by itself, posts wait in the outbox and go out once), also when the
homeserver is already down as the bot starts.

The module runs its own Synapse with LOW message rate limits; the bot is *not* exempted
(only the human partners are, so their commands are never the thing being limited).
"""


from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from liaisonbot.bootstrap import Core, build_core
from liaisonbot.chat.matrix.html import MARKER
from liaisonbot.chat.matrix.platform import MatrixPlatform
from liaisonbot.chat.matrix.session import Credentials
from liaisonbot.config import Settings
from liaisonbot.domain.cards import Post
from liaisonbot.service.desk import Actor
from liaisonbot.service.outbox import RetryPolicy
from liaisonbot.service.ports import ChatGateway, Delivery, DeliveryError, Receipt, SystemClock
from support.poll import eventually
from support.synapse import PartnerClient, RegisteredUser, SynapseServer, require_synapse
from test_matrix_helpers import office, settings_for, wait_joined

pytestmark = [pytest.mark.asyncio, pytest.mark.synapse]

#: The bot may post 2 messages at once, then one every 2 s (Synapse's default is 0.2/s, 10).
RC_MESSAGE = {"per_second": 0.5, "burst_count": 2}
#: Small back-off so a test outage costs seconds; enough attempts not to give up meanwhile.
RETRY = RetryPolicy(base_seconds=0.2, cap_seconds=1.0, max_attempts=60)


@pytest.fixture(scope="module")
def limited() -> Iterator[SynapseServer]:
    """This module's own Synapse, with low message rate limits."""
    require_synapse()
    server = SynapseServer(extra_config={"rc_message": RC_MESSAGE})
    server.start()
    try:
        yield server
    finally:
        server.stop()


# ------------------------------------------------------------------ helpers


@dataclass
class Call:
    delivery_id: str
    started: float
    ended: float
    ok: bool
    retry_after: float | None = None
    error: str = ""


@dataclass
class RecordingGateway(ChatGateway):
    """The Matrix gateway, with every delivery attempt recorded (monotonic times)."""

    inner: Any
    calls: list[Call] = field(default_factory=list)
    platform: str = "matrix"

    async def deliver(self, delivery: Delivery) -> Receipt:
        started = time.monotonic()
        try:
            receipt: Receipt = await self.inner.deliver(delivery)
        except DeliveryError as error:
            self.calls.append(Call(delivery.delivery_id, started, time.monotonic(), False,
                                   error.retry_after, str(error)))
            raise
        self.calls.append(Call(delivery.delivery_id, started, time.monotonic(), True))
        return receipt

    def of(self, delivery_id: str) -> list[Call]:
        return [c for c in self.calls if c.delivery_id == delivery_id]


@dataclass
class Bot:
    core: Core
    platform: MatrixPlatform
    gateway: RecordingGateway
    send_statuses: list[int]


@contextlib.asynccontextmanager
async def bot_running(settings: Settings, bot: RegisteredUser) -> AsyncIterator[Bot]:
    """Core on a real clock + Matrix platform + outbox worker; every HTTP status of the bot's
    ``/send`` requests is recorded (to see whether nio retried a 429 on its own)."""
    core = await build_core(settings, clock=SystemClock(), retry=RETRY)
    creds = Credentials(pickle_key="test-pickle-key", access_token=bot.access_token,
                        device_id=bot.device_id)
    platform = MatrixPlatform(settings, core, creds, poll_ms=1000)
    gateway = RecordingGateway(platform.gateway)
    core.gateways["matrix"] = gateway  # type: ignore[assignment]
    statuses: list[int] = []
    raw_send = platform.client.send

    async def send(method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        resp = await raw_send(method, path, *args, **kwargs)
        if method.upper() == "PUT" and "/send/" in path:
            statuses.append(resp.status)
        return resp

    platform.client.send = send  # type: ignore[method-assign]
    stop = asyncio.Event()
    worker = asyncio.create_task(core.outbox.run(stop, idle_seconds=0.1))
    try:
        await platform.start()
        yield Bot(core, platform, gateway, statuses)
    finally:
        stop.set()
        await platform.stop()
        await asyncio.wait_for(worker, timeout=10)
        await core.close()


async def _partner(server: SynapseServer, name: str, tmp: Path) -> PartnerClient:
    user = await server.register(f"{name}-{secrets.token_hex(3)}")
    await server.override_ratelimit(user.user_id)  # the partner is not under test
    return await PartnerClient.login(server, user, tmp / name, encrypted=False)


async def _setup(server: SynapseServer, tmp: Path, name: str
                 ) -> tuple[RegisteredUser, PartnerClient, str, Settings]:
    bot = await server.register("bot-" + secrets.token_hex(3))  # rate limited: no override
    alice = await _partner(server, "alice", tmp)
    room = await alice.create_room(name, encrypted=False, invite=[bot.user_id])
    settings = settings_for(server, bot, tmp, offices=[office("icc", room, [alice.user_id])])
    return bot, alice, room, settings


async def _until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    await eventually(check, timeout=timeout, interval=0.1, what=what)


async def _rows(core: Core, room_id: str) -> list[dict[str, Any]]:
    """The room's outbox rows, oldest first."""
    async with core.engine.connect() as conn:
        result = await conn.execute(text(
            "SELECT id, status, attempts, next_attempt_at, last_error FROM outbox "
            "WHERE room = :room ORDER BY id"), {"room": f"matrix:{room_id}"})
        return [dict(r._mapping) for r in result]


async def _markers(partner: PartnerClient, room_id: str, bot_id: str) -> list[str]:
    """The delivery markers of the bot's events in the room, in timeline order."""
    from nio import RoomMessagesResponse

    newest_first: list[str] = []
    start = ""
    for _ in range(20):
        resp = await partner.client.room_messages(room_id, start=start, limit=100)
        assert isinstance(resp, RoomMessagesResponse), resp
        for ev in resp.chunk:
            content = (getattr(ev, "source", None) or {}).get("content") or {}
            if getattr(ev, "sender", "") == bot_id and MARKER in content:
                newest_first.append(str(content[MARKER]))
        if not resp.chunk or not resp.end:
            break
        start = resp.end
    return list(reversed(newest_first))


def _retries(core: Core) -> float:
    value = core.telemetry.registry.get_sample_value(
        "liaisonbot_deliveries_total", {"platform": "matrix", "outcome": "retry"})
    return value or 0.0


def _notice(pred: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda e: e.source["content"].get("msgtype") == "m.notice" and pred(e)


# -------------------------------------------------------------------- tests


async def test_rate_limit_storm_each_post_once_in_order(limited: SynapseServer,
                                                        tmp_path: Path) -> None:
    bot, alice, room, settings = await _setup(limited, tmp_path, "storm")
    try:
        async with bot_running(settings, bot) as run:
            await wait_joined(run.platform, room)
            actor = Actor(user=f"matrix:{alice.user_id}", room=f"matrix:{room}", name="alice")
            began = time.monotonic()
            for i in range(8):  # as fast as they can be queued: half commands, half posts
                if i % 2:
                    await run.core.desk.handle_command(actor, f"list STORM-{i}",
                                                       event_id=f"$storm-{i}")
                else:
                    now = run.core.clock.now()
                    async with run.core.uow() as uow:
                        await uow.outbox.add(platform="matrix", room=f"matrix:{room}",
                                             request_id=None, at=now,
                                             post=Post(kind="reply", text=f"storm note {i}",
                                                       as_of=now.isoformat()))
                        await uow.commit()
                    run.core.outbox.wake()

            async def all_done() -> bool:
                rows = await _rows(run.core, room)
                assert not [r for r in rows if r["status"] == "failed"], rows
                return len(rows) == 8 and all(r["status"] == "done" for r in rows)

            await _until(all_done, 30, "all 8 posts delivered")
            elapsed = time.monotonic() - began
            rows = await _rows(run.core, room)
            ids = [f"lb-{r['id']}" for r in rows]

            # Each post exactly once, in the order it was queued.
            markers = await _markers(alice, room, bot.user_id)
            assert markers == ids, (markers, ids)

            # Synapse refused some; the outbox retried them.
            limited_calls = [c for c in run.gateway.calls if not c.ok]
            assert limited_calls, "no M_LIMIT_EXCEEDED at all: the rate limit was not hit"
            assert all("rate limited" in c.error for c in limited_calls), limited_calls
            # A rate-limited round gives its attempt back: only real failures count.
            assert max(r["attempts"] for r in rows) == 1, rows
            assert _retries(run.core) == len(limited_calls)

            # The server's wait was taken (Retry-After / retry_after_ms, not the 5 s fallback)
            # and honoured: the next attempt of that post came no sooner.
            for c in limited_calls:
                assert c.retry_after is not None and 0 < c.retry_after <= 3, c
                later = [n for n in run.gateway.of(c.delivery_id) if n.started > c.ended]
                assert later, c
                assert later[0].started >= c.ended + c.retry_after - 0.05, (c, later[0])

            # Per-room order: a post is tried only after the one before it went out.
            for before, after in itertools.pairwise(ids):
                sent = max(c.ended for c in run.gateway.of(before) if c.ok)
                assert min(c.started for c in run.gateway.of(after)) >= sent, (before, after)

            # nio did not retry a 429 by itself: every 429 on the wire reached the outbox.
            assert run.send_statuses.count(429) == len(limited_calls), run.send_statuses
            assert run.send_statuses.count(200) == 8, run.send_statuses
            assert elapsed < 60  # a hang, not a speed test (the machine may be busy)
            print(f"storm: 8 posts in {elapsed:.1f}s, {len(limited_calls)} rate limited, "
                  f"waits {sorted({c.retry_after for c in limited_calls})}")
    finally:
        await alice.close()


async def test_homeserver_down_backs_off_and_reconnects(limited: SynapseServer,
                                                        tmp_path: Path) -> None:
    bot, alice, room, settings = await _setup(limited, tmp_path, "outage")
    try:
        async with bot_running(settings, bot) as run:
            await wait_joined(run.platform, room)
            await alice.send_text(room, "!liaison list BEFORE-1")
            await alice.wait_for_message(room, _notice(lambda e: "BEFORE-1" in e.body), 20)
            assert (await run.platform.health())["ok"]

            await asyncio.to_thread(limited.stop, keep_data=True)
            down_at = time.monotonic()
            assert not limited.running

            async def unhealthy() -> bool:
                return not (await run.platform.health())["ok"]

            await _until(unhealthy, 15, "health to report the outage")
            health = await run.platform.health()
            assert health["synced"] and health["errors"] >= 1, health

            # A command answered while the homeserver is away: the reply waits in the outbox.
            actor = Actor(user=f"matrix:{alice.user_id}", room=f"matrix:{room}", name="alice")
            await run.core.desk.handle_command(actor, "list DOWN-1", event_id="$down-1")
            rows = await _rows(run.core, room)
            waiting = rows[-1]
            delivery_id = f"lb-{waiting['id']}"

            def tried(n: int) -> Callable[[], Awaitable[bool]]:
                async def check() -> bool:
                    row = (await _rows(run.core, room))[-1]
                    return bool(row["attempts"] >= n and row["last_error"])
                return check

            await _until(tried(3), 15, "three failed attempts")
            first = (await _rows(run.core, room))[-1]

            async def moved_on() -> bool:  # leased once more, or no longer waiting
                row = (await _rows(run.core, room))[-1]
                return row["status"] != "pending" or row["attempts"] > first["attempts"]

            # Still waiting, not given up: checked once another attempt has been leased, which
            # the outbox does only after the one before it was settled as a retry (a 'done' or
            # 'failed' there leaves nothing to lease, and ends this wait at once).
            await _until(moved_on, 15, "another attempt at the waiting reply")
            second = (await _rows(run.core, room))[-1]
            assert first["status"] == second["status"] == "pending", second
            assert second["attempts"] > first["attempts"], (first, second)
            assert "unreachable" in second["last_error"], second
            assert second["next_attempt_at"] is not None
            assert not (await run.platform.health())["ok"]

            # The outbox backs off: each wait at least the policy's delay for that attempt.
            calls = run.gateway.of(delivery_id)
            assert len(calls) >= 3 and not any(c.ok for c in calls), calls
            for n, (prev, nxt) in enumerate(itertools.pairwise(calls), start=1):
                assert nxt.started - prev.ended >= RETRY.delay(n) - 0.05, (n, prev, nxt)
            # ... and so does the sync loop (1 s, 2 s, 4 s, ...): no tight reconnect loop.
            down_for = time.monotonic() - down_at
            errors = run.platform.sync.state.errors
            assert 1 <= errors <= 3 + math.ceil(math.log2(down_for + 1)), (errors, down_for)

            await asyncio.to_thread(limited.start)
            up_at = time.monotonic()

            async def healthy() -> bool:
                return bool((await run.platform.health())["ok"])

            await _until(healthy, 40, "the sync loop to reconnect by itself")
            reconnect = time.monotonic() - up_at

            async def delivered() -> bool:
                return (await _rows(run.core, room))[-1]["status"] == "done"

            await _until(delivered, 20, "the waiting reply to go out")
            got = await alice.wait_for_message(room, _notice(lambda e: "DOWN-1" in e.body), 20)
            assert got.source["content"][MARKER] == delivery_id

            await alice.send_text(room, "!liaison list AFTER-1")
            await alice.wait_for_message(room, _notice(lambda e: "AFTER-1" in e.body), 20)

            markers = await _markers(alice, room, bot.user_id)
            assert markers.count(delivery_id) == 1, markers
            assert markers == [f"lb-{r['id']}" for r in await _rows(run.core, room)], markers
            print(f"down {down_for:.1f}s, {len(calls)}+ attempts, "
                  f"sync reconnected {reconnect:.1f}s after the server was back")
    finally:
        if not limited.running:
            limited.start()
        await alice.close()


async def test_bot_started_while_homeserver_down_connects_later(limited: SynapseServer,
                                                                tmp_path: Path) -> None:
    bot, alice, room, settings = await _setup(limited, tmp_path, "cold")
    try:
        async with bot_running(settings, bot) as run:  # joins the room, keeps its device
            await wait_joined(run.platform, room)
        await asyncio.to_thread(limited.stop, keep_data=True)
        async with bot_running(settings, bot) as run:  # must not fail: the loop retries
            assert not (await run.platform.health())["ok"]
            actor = Actor(user=f"matrix:{alice.user_id}", room=f"matrix:{room}", name="alice")
            await run.core.desk.handle_command(actor, "list COLD-1", event_id="$cold-1")
            waiting = (await _rows(run.core, room))[-1]

            async def attempted() -> bool:
                row = (await _rows(run.core, room))[-1]
                return bool(row["attempts"] >= 1 and row["last_error"])

            async def sync_failed() -> bool:
                return run.platform.sync.state.errors >= 1

            # The reply waits, not lost: checked once its first attempt has been settled (the
            # lease counts an attempt, only a settlement writes last_error), which is what would
            # write a 'done' or 'failed'. (That attempt first waits for sync to know the room.)
            await _until(attempted, 40, "a failed attempt at the reply")
            row = (await _rows(run.core, room))[-1]
            assert row["id"] == waiting["id"] and row["status"] == "pending", row
            assert not any(c.ok for c in run.gateway.of(f"lb-{row['id']}")), run.gateway.calls
            await _until(sync_failed, 15, "the sync loop to report the homeserver down")
            assert not (await run.platform.health())["ok"]

            await asyncio.to_thread(limited.start)

            async def healthy() -> bool:
                return bool((await run.platform.health())["ok"])

            await _until(healthy, 40, "the first sync after the homeserver came up")

            async def delivered() -> bool:
                return (await _rows(run.core, room))[-1]["status"] == "done"

            await _until(delivered, 30, "the waiting reply to go out")
            await alice.wait_for_message(room, _notice(lambda e: "COLD-1" in e.body), 20)
            await alice.send_text(room, "!liaison list COLD-2")
            await alice.wait_for_message(room, _notice(lambda e: "COLD-2" in e.body), 20)
            markers = await _markers(alice, room, bot.user_id)
            assert markers == [f"lb-{r['id']}" for r in await _rows(run.core, room)], markers
    finally:
        if not limited.running:
            limited.start()
        await alice.close()
