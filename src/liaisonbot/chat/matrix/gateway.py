"""The outbound side: neutral posts → ``m.notice`` events, idempotent by txn id.

Idempotency: the txn id is the outbox's ``delivery_id``, so a resend from the same device
returns the first event. Synapse remembers txn ids for about 30-60 minutes only; every event
also carries ``"org.liaisonbot.delivery": delivery_id`` so a later audit (or a future history
check) can recognise a duplicate. A resend after more than an hour may post twice.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

from aiohttp.client_exceptions import ClientConnectionError, ClientError
from nio import AsyncClient, ErrorResponse, RoomCreateResponse, RoomRedactResponse, RoomSendResponse
from nio.exceptions import LocalProtocolError, SendRetryError

from liaisonbot.chat.matrix.html import MEGOLM, message_content
from liaisonbot.domain.refs import native_id
from liaisonbot.service.ports import Clock, Delivery, DeliveryError, Receipt, UnitOfWorkFactory

log = logging.getLogger(__name__)
_PERMANENT = {"M_FORBIDDEN", "M_NOT_FOUND", "M_UNKNOWN_TOKEN", "M_BAD_JSON", "M_TOO_LARGE"}


def error_of(resp: Any, what: str) -> DeliveryError:
    """An nio error response as a ``DeliveryError`` (rate limits carry ``retry_after``)."""
    code = getattr(resp, "status_code", None)
    transport = getattr(resp, "transport_response", None)
    if code in ("M_LIMIT_EXCEEDED", 429) or getattr(transport, "status", None) == 429:
        header = transport.headers.get("Retry-After") if transport is not None else None
        ms = getattr(resp, "retry_after_ms", None)
        seconds = float(header) if header and header.isdigit() else (ms / 1000 if ms else 5.0)
        return DeliveryError(f"{what}: rate limited", retry_after=seconds)
    return DeliveryError(f"{what}: {resp}", permanent=code in _PERMANENT)


class MatrixGateway:
    """Posts to Matrix rooms (``matrix:!id``) and to users' DM rooms (``matrix:@user``)."""

    platform = "matrix"

    def __init__(self, client: AsyncClient, *, uow: UnitOfWorkFactory, clock: Clock,
                 key_lock: asyncio.Lock, room_wait_seconds: float = 15.0) -> None:
        self.client = client
        self.uow = uow
        self.clock = clock
        self.key_lock = key_lock
        self.room_wait_seconds = room_wait_seconds
        self._dm_locks: dict[str, asyncio.Lock] = {}

    async def deliver(self, delivery: Delivery) -> Receipt:
        try:
            return await self._deliver(delivery)
        except DeliveryError:
            raise
        except (ClientConnectionError, ClientError, TimeoutError, OSError,
                LocalProtocolError, SendRetryError) as error:
            raise DeliveryError(f"matrix unreachable: {type(error).__name__}: {error}") from error

    async def _deliver(self, delivery: Delivery) -> Receipt:
        post = delivery.post
        if post.kind == "direct":
            room_id = await self._dm_room(native_id(delivery.room))
        else:
            room_id = native_id(delivery.room)
        thread_root = None
        edit_of = None
        if post.kind in ("relay_edit", "relay_delete"):
            if not delivery.target_ref:
                return Receipt("")  # the copy never reached this room: nothing to change
            if post.kind == "relay_delete":
                return await self._redact(room_id, delivery)
            edit_of = delivery.target_ref
            post = replace(post, kind="relay")
        elif post.kind == "card_update" and delivery.thread is not None:
            edit_of = delivery.thread.message_ref
            post = replace(post, kind="card")
        elif post.in_thread and delivery.thread is not None:
            thread_root = delivery.thread.thread_root
        elif post.extra.get("reply_to_thread"):
            thread_root = str(post.extra["reply_to_thread"])
        content = message_content(post, delivery_id=delivery.delivery_id,
                                  thread_root=thread_root, edit_of=edit_of)
        await self._ready(room_id)
        resp = await self.client.room_send(room_id, "m.room.message", content,
                                           tx_id=delivery.delivery_id,
                                           ignore_unverified_devices=True)
        if not isinstance(resp, RoomSendResponse):
            raise error_of(resp, f"send to {room_id}")
        return Receipt(message_ref=resp.event_id)

    async def _redact(self, room_id: str, delivery: Delivery) -> Receipt:
        """Redact this room's copy of a relayed message (txn id = delivery id, so a retry
        is the same redaction)."""
        assert delivery.target_ref is not None
        await self._ready(room_id)
        resp = await self.client.room_redact(room_id, delivery.target_ref,
                                             tx_id=delivery.delivery_id)
        if not isinstance(resp, RoomRedactResponse):
            if getattr(resp, "status_code", None) == "M_NOT_FOUND":
                return Receipt("")
            raise error_of(resp, f"redact in {room_id}")
        return Receipt(message_ref=resp.event_id)

    async def _ready(self, room_id: str) -> None:
        """Wait until sync knows the room; in an encrypted room, share keys with every device."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.room_wait_seconds
        while room_id not in self.client.rooms:
            if loop.time() > deadline:
                raise DeliveryError(f"room {room_id} is not (yet) joined")
            await asyncio.sleep(0.1)
        room = self.client.rooms[room_id]
        if not room.encrypted or self.client.olm is None:
            return
        async with self.key_lock:
            if not room.members_synced:
                resp = await self.client.joined_members(room_id)
                if isinstance(resp, ErrorResponse):
                    raise error_of(resp, f"members of {room_id}")
            if self.client.should_query_keys:
                await self.client.keys_query()
            if self.client.olm.should_share_group_session(room_id):
                resp = await self.client.share_group_session(room_id,
                                                             ignore_unverified_devices=True)
                if isinstance(resp, ErrorResponse):
                    raise error_of(resp, f"key share in {room_id}")

    async def _dm_room(self, user_id: str) -> str:
        """The DM room with ``user_id``: remembered in core state, created (encrypted) once."""
        key = f"matrix:dm:{user_id}"
        async with self._dm_locks.setdefault(user_id, asyncio.Lock()):
            async with self.uow() as uow:
                known = await uow.state.get(key)
            if known:
                return known
            resp = await self.client.room_create(
                is_direct=True, invite=[user_id], name="liaisonbot",
                initial_state=[{"type": "m.room.encryption", "state_key": "",
                                "content": {"algorithm": MEGOLM}}])
            if not isinstance(resp, RoomCreateResponse):
                raise error_of(resp, f"DM with {user_id}")
            async with self.uow() as uow:
                await uow.state.put(key, resp.room_id, self.clock.now())
                await uow.commit()
            log.info("matrix DM room created", extra={"user": user_id, "room": resp.room_id})
            return str(resp.room_id)
