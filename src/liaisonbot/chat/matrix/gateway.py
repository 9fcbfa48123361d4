"""The outbound side: neutral posts → ``m.notice`` events, idempotent by txn id and marker.

Idempotency has two layers:

- The txn id is the outbox's ``delivery_id``, so a resend from the same device returns the first
  event — but Synapse remembers txn ids for about 30-60 minutes only.
- Every event carries ``"org.liaisonbot.delivery": delivery_id``. When a delivery comes back
  ``in_doubt`` (the outbox keeps that in SQL: an earlier send may have landed — lost response,
  5xx, crash), the room's recent history is searched backwards from the live
  end for the bot's own event with that marker (``history_limit`` events of the bot, encrypted
  ones decrypted with the bot's own group sessions) and its id is returned instead of sending.
  A clear refusal (a 4xx answer) is ``DeliveryError.not_sent``: the next try skips the search.
  A first attempt never searches and costs no transaction of its own.
  Left open: an event older than the searched window, or one the bot can no longer decrypt
  (crypto store lost), is not found and the post goes out again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

from aiohttp.client_exceptions import ClientConnectionError, ClientError
from nio import (
    AsyncClient,
    ErrorResponse,
    MegolmEvent,
    RoomCreateResponse,
    RoomMessagesResponse,
    RoomRedactResponse,
    RoomSendResponse,
)
from nio.exceptions import LocalProtocolError, SendRetryError

from liaisonbot.chat.matrix.html import MARKER, MEGOLM, message_content
from liaisonbot.chat.matrix.trust import LiaisonClient
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
    return DeliveryError(f"{what}: {resp}", permanent=code in _PERMANENT, not_sent=refused(resp))


def refused(resp: Any) -> bool:
    """True when the homeserver answered and clearly did not take the event (a 4xx)."""
    status = getattr(getattr(resp, "transport_response", None), "status", None)
    return isinstance(status, int) and 400 <= status < 500


class MatrixGateway:
    """Posts to Matrix rooms (``matrix:!id``) and to users' DM rooms (``matrix:@user``)."""

    platform = "matrix"

    def __init__(self, client: AsyncClient, *, uow: UnitOfWorkFactory, clock: Clock,
                 key_lock: asyncio.Lock, room_wait_seconds: float = 15.0,
                 history_limit: int = 200, exclude_insecure_devices: bool = False) -> None:
        self.client = client
        #: Room keys only for devices cross-signed by their owner (``trust.LiaisonClient``).
        self.exclude_insecure_devices = exclude_insecure_devices
        self.uow = uow
        self.clock = clock
        self.key_lock = key_lock
        self.room_wait_seconds = room_wait_seconds
        self.history_limit = history_limit
        self.history_checks = 0
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
        if delivery.in_doubt:
            found = await self._find(room_id, delivery.delivery_id)
            if found:
                log.info("matrix delivery found in history; not sent again",
                         extra={"room": room_id, "delivery": delivery.delivery_id,
                                "event": found})
                return Receipt(message_ref=found)
        resp = await self.client.room_send(room_id, "m.room.message", content,
                                           tx_id=delivery.delivery_id,
                                           ignore_unverified_devices=True)
        if not isinstance(resp, RoomSendResponse):
            raise error_of(resp, f"send to {room_id}")
        return Receipt(message_ref=resp.event_id)

    async def _find(self, room_id: str, delivery_id: str) -> str | None:
        """The id of the bot's own event carrying ``delivery_id`` among its last
        ``history_limit`` events in the room (newest first), if any."""
        self.history_checks += 1
        own = self.client.user_id
        only_own = {"senders": [own], "types": ["m.room.message", "m.room.encrypted"]}
        start: str | None = None  # no ``from``: the live end of the room
        seen = unreadable = 0
        while seen < self.history_limit:
            resp = await self.client.room_messages(
                room_id, start=start, limit=min(100, self.history_limit - seen),
                message_filter=only_own)
            if not isinstance(resp, RoomMessagesResponse):
                raise error_of(resp, f"history check in {room_id}")
            for event in resp.chunk:  # nio has decrypted what it could
                if getattr(event, "sender", None) != own:
                    continue
                if isinstance(event, MegolmEvent):
                    unreadable += 1
                    continue
                content = (getattr(event, "source", None) or {}).get("content") or {}
                if content.get(MARKER) == delivery_id:
                    return str(event.event_id)
            seen += len(resp.chunk)
            if not resp.chunk or not resp.end or resp.end == start:
                break
            start = resp.end
        if unreadable:
            log.warning("matrix history check could not decrypt some own events",
                        extra={"room": room_id, "delivery": delivery_id,
                               "undecryptable": unreadable})
        return None

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
        """Wait until sync knows the room; in an encrypted room, share keys with every device
        (with ``exclude_insecure_devices``: every device its owner has cross-signed)."""
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
            excluded: list[tuple[str, str]] = []
            if isinstance(self.client, LiaisonClient):
                excluded = self.client.apply_trust(room_id, self.exclude_insecure_devices)
            if self.client.olm.should_share_group_session(room_id):
                resp = await self.client.share_group_session(room_id,
                                                             ignore_unverified_devices=True)
                if isinstance(resp, ErrorResponse):
                    raise error_of(resp, f"key share in {room_id}")
            if excluded and isinstance(self.client, LiaisonClient):
                await self.client.send_withheld(room_id, excluded)

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
