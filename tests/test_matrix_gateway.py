"""The Matrix gateway's try-marker and the sync's pending-undecryptable record, without a
homeserver (the Synapse tests in test_matrix_e2e.py cover the real round trips)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from liaisonbot.chat.matrix.gateway import MatrixGateway
from liaisonbot.chat.matrix.sync import _Undecrypted, dump_pending, load_pending
from liaisonbot.domain.cards import Post
from liaisonbot.service.ports import Delivery, DeliveryError, ManualClock, StateRepository

ROOM = "!room"


class _State(StateRepository):
    def __init__(self) -> None:
        self.rows: dict[str, str] = {}

    async def get(self, key: str) -> str | None:
        return self.rows.get(key)

    async def put(self, key: str, value: str, at: datetime) -> None:
        self.rows[key] = value


class _Uow:  # a partial unit of work: only the state repository the gateway uses
    def __init__(self, state: _State) -> None:
        self.state = state

    async def __aenter__(self) -> _Uow:
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass

    async def commit(self) -> None:
        pass


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


def _gateway(client: _Client) -> tuple[MatrixGateway, _State]:
    state = _State()
    gateway = MatrixGateway(client, uow=lambda: _Uow(state),  # type: ignore[arg-type]
                            clock=ManualClock(), key_lock=asyncio.Lock())
    return gateway, state


def _delivery(delivery_id: str) -> Delivery:
    return Delivery(delivery_id, f"matrix:{ROOM}", Post(kind="reply", text="hi"), None)


@pytest.mark.asyncio
async def test_refused_send_clears_marker_so_the_retry_does_not_search() -> None:
    from nio import RoomSendResponse

    client = _Client([_Refusal(403, "M_FORBIDDEN"), RoomSendResponse("$ok", ROOM)])
    gateway, state = _gateway(client)
    with pytest.raises(DeliveryError) as error:
        await gateway.deliver(_delivery("lb-1"))
    assert error.value.permanent
    assert state.rows["matrix:try:lb-1"] == "0"
    assert (await gateway.deliver(_delivery("lb-1"))).message_ref == "$ok"
    assert gateway.history_checks == 0 and client.history == 0 and client.sent == 2


@pytest.mark.asyncio
async def test_server_error_keeps_marker_so_the_retry_searches_first() -> None:
    from nio import RoomSendResponse

    client = _Client([_Refusal(502, "M_UNKNOWN"), RoomSendResponse("$ok", ROOM)])
    gateway, state = _gateway(client)
    with pytest.raises(DeliveryError):
        await gateway.deliver(_delivery("lb-2"))
    assert state.rows["matrix:try:lb-2"] == "1"  # the 502 may have come after the send
    assert (await gateway.deliver(_delivery("lb-2"))).message_ref == "$ok"
    assert gateway.history_checks == 1 and client.history == 1 and client.sent == 2


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
