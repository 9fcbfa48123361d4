"""The Matrix gateway's search for a post in doubt (through the real outbox on SQLite) and the
sync's pending-undecryptable record, without a homeserver (the Synapse tests in
test_matrix_e2e.py cover the real round trips)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import text

from conftest import TestBot
from liaisonbot.chat.matrix.gateway import MatrixGateway
from liaisonbot.chat.matrix.sync import _Undecrypted, dump_pending, load_pending
from liaisonbot.domain.cards import Post
from liaisonbot.service.outbox import OutboxWorker

ROOM = "!room"


class _Refusal:
    """What nio returns for an error answer (only the parts the gateway reads)."""

    def __init__(self, http: int, code: str) -> None:
        self.status_code = code
        self.retry_after_ms = None
        self.transport_response = SimpleNamespace(status=http, headers={})

    def __str__(self) -> str:
        return f"{self.status_code} ({self.transport_response.status})"


class _Client:
    user_id = "@bot:example.org"
    olm = None

    def __init__(self, answers: list[Any]) -> None:
        self.rooms = {ROOM: SimpleNamespace(encrypted=False)}
        self.answers = answers
        self.sent = 0
        self.history = 0

    async def room_send(self, *args: Any, **kw: Any) -> Any:
        self.sent += 1
        return self.answers.pop(0)

    async def room_messages(self, *args: Any, **kw: Any) -> Any:
        from nio import RoomMessagesResponse

        self.history += 1
        return RoomMessagesResponse(room_id=ROOM, chunk=[], start="s", end=None)


async def _first_round(testbot: TestBot, client: _Client) -> tuple[MatrixGateway, OutboxWorker]:
    """One post queued for the room and a worker whose Matrix gateway talks to ``client``;
    the first round delivers (and fails, in these tests)."""
    core = testbot.core
    gateway = MatrixGateway(client, uow=core.uow,  # type: ignore[arg-type]
                            clock=testbot.clock, key_lock=asyncio.Lock())
    worker = OutboxWorker(uow=core.uow, gateways={"matrix": gateway}, clock=testbot.clock,
                          owner="gateway-test")
    async with core.uow() as uow:
        await uow.outbox.add(platform="matrix", room=f"matrix:{ROOM}",
                             post=Post(kind="reply", text="hi"), request_id=None,
                             at=testbot.clock.now())
        await uow.commit()
    assert await worker.run_once() == 1
    return gateway, worker


async def _in_doubt(testbot: TestBot) -> list[bool]:
    async with testbot.core.uow(read_only=True) as uow:
        rows = await uow.conn.execute(text(
            "SELECT in_doubt FROM outbox WHERE room = :r AND status = 'pending'"),
            {"r": f"matrix:{ROOM}"})
        return [bool(row[0]) for row in rows]


async def _next_round(testbot: TestBot, worker: OutboxWorker) -> None:
    testbot.clock.set(testbot.clock.now() + timedelta(hours=1))
    assert await worker.run_once() == 1


@pytest.mark.asyncio
async def test_refused_send_clears_the_doubt_so_the_retry_does_not_search(
        testbot: TestBot) -> None:
    from nio import RoomSendResponse

    client = _Client([_Refusal(429, "M_LIMIT_EXCEEDED"), RoomSendResponse("$ok", ROOM)])
    gateway, worker = await _first_round(testbot, client)
    assert await _in_doubt(testbot) == [False]  # the 429 proved nothing was posted
    await _next_round(testbot, worker)
    assert gateway.history_checks == 0 and client.history == 0 and client.sent == 2
    assert worker.delivered == 1


@pytest.mark.asyncio
async def test_server_error_leaves_the_post_in_doubt_so_the_retry_searches_first(
        testbot: TestBot) -> None:
    from nio import RoomSendResponse

    client = _Client([_Refusal(502, "M_UNKNOWN"), RoomSendResponse("$ok", ROOM)])
    gateway, worker = await _first_round(testbot, client)
    assert gateway.history_checks == 0  # a first attempt never searches
    assert await _in_doubt(testbot) == [True]  # the 502 may have come after the send
    await _next_round(testbot, worker)
    assert gateway.history_checks == 1 and client.history == 1 and client.sent == 2
    assert worker.delivered == 1


def test_pending_undecryptable_round_trip_and_garbage() -> None:
    first = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    items = [_Undecrypted("!b", "$2", "@a:x", None, first.replace(second=9)),
             _Undecrypted("!a", "$1", "@a:x", "$root", first)]
    raw = dump_pending(items)
    back = load_pending(raw)
    assert [(i.room_id, i.event_id, i.sender, i.thread, i.first_seen, i.event) for i in back] \
        == [("!a", "$1", "@a:x", "$root", first, None), ("!b", "$2", "@a:x", None,
                                                         first.replace(second=9), None)]
    assert load_pending(None) == [] and load_pending("not json") == []
    assert [i.event_id for i in load_pending('[{"room": "!a"}, ' + raw[1:])] == ["$1", "$2"]
