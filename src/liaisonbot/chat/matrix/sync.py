"""The inbound side: one long-polling /sync loop that hands events to the desk exactly once.

- The sync token is kept in core state (``matrix:next_batch``) and written only after every
  event of that sync was handled; the desk's inbound table drops replays by event id. It is
  written at most every ``save_seconds`` (1 s) while events flow, at once when the pending
  undecryptable set changed, and at stop: a crash replays at most that second, which the desk
  drops, and the write stays off the path between a command and its reply (on SQLite it would
  queue before the outbox's claim of that reply).
- First start (no token): one sync whose history is skipped. Later starts sync from the token
  (with full state, so nio knows rooms and their encryption again); a ``limited`` timeline is
  paged back with ``/messages`` to the last handled moment (``matrix:seen_ts``), capped.
- Timeline events from before the bot's own join are never handled.
- A failed /sync (homeserver down or answering 5xx/429, also at start: then ``start()`` is what
  the loop retries) is tried again after 1 s, doubling up to 60 s; health is not ok meanwhile.
- Undecryptable events are kept and retried after every sync (room key requested once); after
  ``grace_seconds`` of the core clock the room is told ``messages.UNDECRYPTABLE``, once
  (``Desk.tell_unreadable`` records ``unreadable:<event id>``). The pending set is written to core
  state (``matrix:undecrypted``, a JSON list of room, event id, sender, thread, first seen) in
  the same transaction as the sync token that moves past those events, so after a restart each
  is fetched again (``room_get_event``, which decrypts when the key has come meanwhile) and is
  either handled or, once its grace period is over, answered — never forgotten.
- ``m.room_key.withheld`` to-device events (nio 0.26 passes them on as
  ``UnknownToDeviceEvent``) are taken only from allowed servers (``withheld_servers``: the
  ``allowed_servers``, else the servers of the offices' members and of the bound rooms' members,
  and the bot's own), recorded by (session id, sender) and counted
  (``liaisonbot_matrix_withheld_total{code}``, ``code`` one of ``WITHHELD_CODES`` or ``other``);
  a pending event whose key was withheld with ``m.unverified``/``m.blacklisted``/
  ``m.unauthorised`` *by the session's own sender* (the notice's sender is the event's sender
  and its ``sender_key`` the event's) is answered at once with the sentence for that code
  (``messages.WITHHELD``), once per room and session, instead of after the grace time.
- Each sync first makes sure the bot's device is cross-signed (``CrossSigning.ensure``) until it
  is, or until it is clear it cannot be (health then says why).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import ClientError
from nio import (
    AsyncClient,
    InviteMemberEvent,
    MegolmEvent,
    RoomGetEventResponse,
    RoomMemberEvent,
    RoomMessagesResponse,
    SyncResponse,
    UnknownToDeviceEvent,
)

from liaisonbot.chat.matrix.crosssigning import CrossSigning
from liaisonbot.chat.matrix.inbound import classify, server_of, thread_root
from liaisonbot.chat.matrix.pins import Pins
from liaisonbot.config import Settings
from liaisonbot.service.desk import Actor, Desk
from liaisonbot.service.ports import Clock, UnitOfWorkFactory

log = logging.getLogger(__name__)
TOKEN_KEY = "matrix:next_batch"
SEEN_KEY = "matrix:seen_ts"
PENDING_KEY = "matrix:undecrypted"
_GONE = {"M_NOT_FOUND", "M_FORBIDDEN"}
_BACKFILL_MARGIN_MS = 5 * 60 * 1000
#: Withheld codes that mean the key will not come: answered at once.
WITHHELD_FINAL = {"m.unverified", "m.blacklisted", "m.unauthorised"}
#: The spec's withheld codes: the metric's ``code`` label is one of these or ``other``.
WITHHELD_CODES = frozenset({"m.blacklisted", "m.unverified", "m.unauthorised", "m.unavailable",
                            "m.no_olm"})
_WITHHELD_KEPT = 2000
_IDENTITY_RETRY_S = 30.0
_REQUERY_S = 60.0
#: How an unknown sending device is named in the sentence (its keys never came).
_UNKNOWN_DEVICE = "?"


def may_redact_others(room: Any, user_id: str) -> bool:
    """Whether ``user_id``'s power level in the room reaches its ``redact`` level (needed to
    redact other members' events); False when the room is unknown."""
    levels = getattr(room, "power_levels", None)
    if levels is None:
        return False
    return bool(levels.get_user_level(user_id) >= levels.defaults.redact)


class HomeserverUnavailable(RuntimeError):
    """/sync got no usable answer for now (5xx, 429): the loop backs off and tries again."""


@dataclass
class _Undecrypted:
    """An event not (yet) decrypted; ``event`` is None when it was loaded from core state
    after a restart and not fetched again yet."""

    room_id: str
    event_id: str
    sender: str
    thread: str | None
    first_seen: datetime
    event: MegolmEvent | None = None
    session_id: str = ""
    #: The Megolm event's ``sender_key`` (curve25519 of the sending device).
    sender_key: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"room": self.room_id, "event_id": self.event_id, "sender": self.sender,
                "thread": self.thread, "first_seen": self.first_seen.isoformat(),
                "session": self.session_id, "sender_key": self.sender_key}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> _Undecrypted:
        return cls(room_id=str(data["room"]), event_id=str(data["event_id"]),
                   sender=str(data.get("sender") or ""),
                   thread=str(data["thread"]) if data.get("thread") else None,
                   first_seen=datetime.fromisoformat(str(data["first_seen"])),
                   session_id=str(data.get("session") or ""),
                   sender_key=str(data.get("sender_key") or ""))


def load_pending(raw: str | None) -> list[_Undecrypted]:
    """The ``matrix:undecrypted`` state value as records; unreadable entries are skipped."""
    if not raw:
        return []
    try:
        data = json.loads(raw)
    except ValueError:
        log.warning("matrix: unreadable %s state ignored", PENDING_KEY)
        return []
    items = []
    for entry in data if isinstance(data, list) else []:
        try:
            items.append(_Undecrypted.from_json(entry))
        except (KeyError, TypeError, ValueError):
            log.warning("matrix: unreadable pending undecryptable entry %r skipped", entry)
    return items


def dump_pending(items: list[_Undecrypted]) -> str:
    return json.dumps([item.as_json() for item in
                       sorted(items, key=lambda i: (i.first_seen, i.event_id))])


@dataclass
class SyncState:
    """What health() reports."""

    synced: bool = False
    failing: bool = False
    last_sync: datetime | None = None
    last_sync_monotonic: float = 0.0
    errors: int = 0
    pending_undecrypted: int = 0
    withheld: int = 0
    joined: set[str] = field(default_factory=set)


class MatrixSync:
    """Runs /sync and translates what it brings: invites, commands, thread messages."""

    def __init__(self, client: AsyncClient, *, settings: Settings, desk: Desk,
                 uow: UnitOfWorkFactory, clock: Clock, key_lock: asyncio.Lock,
                 poll_ms: int = 30_000, timeline_limit: int = 50,
                 replies_sent: Callable[[str, float], Awaitable[None]] | None = None,
                 grace_seconds: float = 60.0, backfill_pages: int = 10,
                 identity: CrossSigning | None = None, telemetry: Any = None,
                 save_seconds: float = 1.0) -> None:
        self.client = client
        self.save_seconds = save_seconds
        self._saved_token: str | None = None
        self._saved_at = float("-inf")
        self.identity = identity
        self.telemetry = telemetry
        self._identity_next = 0.0
        #: (session id, sender) → (code, sender_key) of ``m.room_key.withheld`` received.
        self._withheld: dict[tuple[str, str], tuple[str, str]] = {}
        #: (user, device) → when its keys were last queried again (an unverified sender).
        self._requeried: dict[tuple[str, str], float] = {}
        client.add_to_device_callback(self._on_to_device, UnknownToDeviceEvent)
        self.settings = settings
        self.desk = desk
        self.uow = uow
        self.clock = clock
        self.key_lock = key_lock
        #: ``OutboxWorker.sent``: the replies to this sync's commands are posted before the
        #: next long poll (the homeserver serves one, then the other).
        self.replies_sent = replies_sent
        self.poll_ms = poll_ms
        self.timeline_limit = timeline_limit
        self.grace_seconds = grace_seconds
        self.backfill_pages = backfill_pages
        self.state = SyncState()
        self._undecrypted: dict[str, _Undecrypted] = {}
        self._pending_saved = dump_pending([])
        self._seen_ts = 0
        self._token: str | None = None
        #: ``start()`` completed; until then the loop retries it (homeserver down at start).
        self.started = False
        trust = getattr(client, "trust", None)
        #: Pinned member identities (``pins.py``), when the client checks cross-signing.
        self._pins: Pins | None = getattr(trust, "pins", None) if trust is not None else None

    # ------------------------------------------------------------------ loop

    @property
    def own(self) -> str:
        return self.settings.matrix.user_id

    def _filter(self) -> dict[str, Any]:
        return {"presence": {"not_types": ["*"]}, "account_data": {"not_types": ["*"]},
                "room": {"timeline": {"limit": self.timeline_limit},
                         "state": {"lazy_load_members": False}}}

    async def start(self) -> None:
        """The first sync (skipping history on a first start), then join bound rooms."""
        async with self.uow() as uow:
            self._token = self._saved_token = await uow.state.get(TOKEN_KEY)
            self._seen_ts = int(await uow.state.get(SEEN_KEY) or 0)
            pending = await uow.state.get(PENDING_KEY)
            if self._pins is not None:
                await self._pins.load(uow.state)
        for item in load_pending(pending):
            self._undecrypted.setdefault(item.event_id, item)
        self._pending_saved = dump_pending(list(self._undecrypted.values()))
        if self._undecrypted:
            log.info("matrix undecryptable events pending from before the restart",
                     extra={"count": len(self._undecrypted)})
        await self.sync_once(full_state=True, handle=self._token is not None)
        for room in self._bound_rooms():
            if room not in self.client.rooms:
                resp = await self.client.join(room)
                log.info("matrix join bound room", extra={"room": room, "result": str(resp)})
        self.started = True

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 1.0
        while not stop.is_set():
            try:
                await (self.sync_once() if self.started else self.start())
                backoff = 1.0
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.state.failing = True
                self.state.errors += 1
                log.warning("matrix sync failed; retrying",
                            extra={"error": f"{type(error).__name__}: {error}",
                                   "retry_in_s": backoff})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=backoff)
                backoff = min(backoff * 2, 60.0)

    async def sync_once(self, *, full_state: bool = False, handle: bool = True) -> None:
        # The replies to the last sync's commands go out first (up to half a second), and
        # one loop step lets a round just woken start before this task builds the long poll.
        if self.replies_sent is not None:
            await self.replies_sent("matrix", 0.5)
        await asyncio.sleep(0)
        resp = await self.client.sync(timeout=0 if full_state else self.poll_ms,
                                      sync_filter=self._filter(), since=self._token,
                                      full_state=full_state or None)
        if not isinstance(resp, SyncResponse):
            status = getattr(getattr(resp, "transport_response", None), "status", None)
            if status is None or status >= 500 or status == 429:
                raise HomeserverUnavailable(f"sync: {resp}")
            raise RuntimeError(f"sync: {resp}")
        await self._key_chores()
        await self._identity_pins()
        await self._ensure_identity()
        await self._invites(resp)
        if handle:
            for room_id, info in resp.rooms.join.items():
                await self._timeline(room_id, info.timeline)
        await self._retry_undecrypted()
        self._token = resp.next_batch
        if full_state or time.monotonic() - self._saved_at >= self.save_seconds \
                or dump_pending(list(self._undecrypted.values())) != self._pending_saved:
            await self.flush()
        self.state.synced, self.state.failing = True, False
        self.state.last_sync = self.clock.now()
        self.state.last_sync_monotonic = time.monotonic()

    async def flush(self) -> None:
        """Write the token of the last sync handled in full (with the pending undecryptable
        set and the last moment seen, in one transaction), if it moved since the last write."""
        token = self._token
        pending = dump_pending(list(self._undecrypted.values()))
        if token is None or (token == self._saved_token and pending == self._pending_saved):
            return
        async with self.uow() as uow:
            await uow.state.put(TOKEN_KEY, token, self.clock.now())
            await uow.state.put(SEEN_KEY, str(self._seen_ts), self.clock.now())
            if pending != self._pending_saved:
                await uow.state.put(PENDING_KEY, pending, self.clock.now())
            await uow.commit()
        self._saved_token, self._pending_saved = token, pending
        self._saved_at = time.monotonic()

    async def _key_chores(self) -> None:
        c = self.client
        if c.olm is None:
            return
        async with self.key_lock:
            if c.should_upload_keys:
                await c.keys_upload()
            if c.should_query_keys:
                await c.keys_query()
            if c.should_claim_keys:
                await c.keys_claim(c.get_users_for_key_claiming())
            await c.send_to_device_messages()

    async def _identity_pins(self) -> None:
        """Write pins that changed, take up identities accepted with ``matrix trust`` (their
        keys are queried again), and tell each room a member whose identity is now held is
        in, once per room, member and key."""
        pins, olm = self._pins, self.client.olm
        if pins is None or olm is None or not (pins.dirty or pins.newly_held or pins.held()):
            return
        async with self.uow() as uow:
            accepted = await pins.accepted(uow.state)
            if pins.dirty:
                await pins.save(uow.state, self.clock.now())
            await uow.commit()
        for user_id in accepted:
            log.info("matrix member's new identity accepted", extra={"user": user_id})
            olm.users_for_key_query.add(user_id)
        held, pins.newly_held = pins.newly_held, []
        for user_id, master in held:
            for room_id, room in list(self.client.rooms.items()):
                if user_id not in room.users:
                    continue
                actor = Actor(user=f"matrix:{user_id}", room=f"matrix:{room_id}",
                              name=room.user_name(user_id) or user_id)
                await self.desk.tell_identity_changed(actor, master)

    async def _ensure_identity(self) -> None:
        """Cross-sign the bot's device (once it works; retried every 30 s on errors)."""
        ident = self.identity
        if ident is None or not ident.state.pending or self.client.olm is None:
            return
        if self.client.should_upload_keys or time.monotonic() < self._identity_next:
            return
        try:
            async with self.key_lock:
                await ident.ensure()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # network, homeserver: tried again later
            self._identity_next = time.monotonic() + _IDENTITY_RETRY_S
            log.warning("matrix cross-signing not done yet; retrying",
                        extra={"error": f"{type(error).__name__}: {error}"})

    def _on_to_device(self, ev: UnknownToDeviceEvent) -> None:
        if ev.type != "m.room_key.withheld":
            return
        content = ev.source.get("content") or {}
        if not isinstance(content, dict) or server_of(ev.sender) not in self.withheld_servers():
            log.info("matrix room key withheld by another server ignored",
                     extra={"sender": ev.sender})
            return
        raw = str(content.get("code") or "")
        code = raw if raw in WITHHELD_CODES else "other"
        session = str(content.get("session_id") or "")[:200]
        self.state.withheld += 1
        if self.telemetry is not None and hasattr(self.telemetry, "matrix_withheld"):
            self.telemetry.matrix_withheld(code)
        log.info("matrix room key withheld", extra={"sender": ev.sender, "code": code,
                                                   "room": str(content.get("room_id"))[:200],
                                                   "session": session})
        if session:
            self._withheld[(session, ev.sender)] = (code, str(content.get("sender_key") or ""))
            while len(self._withheld) > _WITHHELD_KEPT:
                self._withheld.pop(next(iter(self._withheld)))

    def withheld_servers(self) -> set[str]:
        """The servers whose ``m.room_key.withheld`` notices count: ``allowed_servers``, else
        the servers of the configured offices' Matrix members and of the bound rooms'
        members (room ids carry no server), and the bot's own."""
        allowed = self.settings.matrix.allowed_servers
        if allowed:
            return set(allowed) | {server_of(self.own)}
        servers = {server_of(self.own)}
        for office in self.settings.directory.offices:
            servers.update(server_of(m.split(":", 1)[1]) for m in office.members
                           if m.startswith("matrix:"))
        for room_id in self._bound_rooms():
            room = self.client.rooms.get(room_id)
            if room is not None:
                servers.update(server_of(user) for user in room.users)
        servers.discard("")
        return servers

    # ------------------------------------------------------------------ rooms

    def _bound_rooms(self) -> list[str]:
        return [room.split(":", 1)[1] for office in self.settings.directory.offices
                for room in office.rooms if room.startswith("matrix:")]

    async def _invites(self, resp: SyncResponse) -> None:
        for room_id, info in resp.rooms.invite.items():
            inviter = next((ev.sender for ev in info.invite_state
                            if isinstance(ev, InviteMemberEvent) and ev.state_key == self.own
                            and ev.membership == "invite"), "")
            if self.settings.directory.accepts_invite(f"matrix:{room_id}", f"matrix:{inviter}"):
                log.info("matrix invite accepted", extra={"room": room_id, "by": inviter})
                await self.client.join(room_id)
            else:
                log.info("matrix invite rejected", extra={"room": room_id, "by": inviter})
                await self.client.room_leave(room_id)

    async def _timeline(self, room_id: str, timeline: Any) -> None:
        events = list(timeline.events)
        own_join = [i for i, ev in enumerate(events)
                    if isinstance(ev, RoomMemberEvent) and ev.state_key == self.own
                    and ev.membership == "join"
                    and (ev.prev_content or {}).get("membership") != "join"]
        if own_join:
            events = events[own_join[-1] + 1:]
        elif timeline.limited and timeline.prev_batch:
            events = await self._backfill(room_id, timeline.prev_batch) + events
        for ev in events:
            try:
                await self._event(room_id, ev)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # One event the desk cannot take must not stall the room (its batch would be
                # retried for ever) nor end the sync loop: log it and go on. Commands already
                # answer the internal-error sentence from the desk itself.
                log.exception("matrix event failed", extra={
                    "room": room_id, "event": getattr(ev, "event_id", None),
                    "error": type(error).__name__})

    async def _backfill(self, room_id: str, start: str) -> list[Any]:
        """Events before a limited timeline, back to the last handled moment (oldest first)."""
        found: list[Any] = []
        floor = self._seen_ts - _BACKFILL_MARGIN_MS
        for _ in range(self.backfill_pages):
            resp = await self.client.room_messages(room_id, start=start, limit=100)
            if not isinstance(resp, RoomMessagesResponse):
                raise RuntimeError(f"messages of {room_id}: {resp}")
            reached = False
            for ev in resp.chunk:
                if getattr(ev, "server_timestamp", 0) < floor or (
                        isinstance(ev, RoomMemberEvent) and ev.state_key == self.own
                        and ev.membership == "join"):
                    reached = True
                    break
                found.append(ev)
            if reached or not resp.chunk or not resp.end:
                break
            start = resp.end
        log.info("matrix backfill", extra={"room": room_id, "events": len(found)})
        return list(reversed(found))

    # ------------------------------------------------------------------ events

    async def _event(self, room_id: str, ev: Any) -> None:
        if getattr(ev, "sender", None) == self.own:
            return
        if isinstance(ev, MegolmEvent):
            self._keep_undecrypted(room_id, ev)
            return
        source = getattr(ev, "source", None) or {}
        sender = str(getattr(ev, "sender", ""))
        inbound = classify(sender=sender, event_type=str(source.get("type", "")),
                           content=source.get("content") or {}, own_user=self.own,
                           allowed_servers=self.settings.matrix.allowed_servers,
                           redacts=source.get("redacts"))
        self._seen_ts = max(self._seen_ts, int(getattr(ev, "server_timestamp", 0) or 0))
        if inbound is None:
            return
        room = self.client.rooms.get(room_id)
        actor = Actor(user=f"matrix:{sender}", room=f"matrix:{room_id}",
                      name=(room.user_name(sender) if room else None) or sender,
                      thread_root=inbound.thread_root)
        if inbound.kind != "delete" and room is not None and room.encrypted:
            trusted, device = await self._sender_device(room_id, ev)
            if not trusted:
                log.info("matrix event from an unverified sender not acted on",
                         extra={"room": room_id, "event": ev.event_id, "sender": sender,
                                "device": device, "encrypted": bool(
                                    getattr(ev, "decrypted", False))})
                await self.desk.tell_untrusted(actor, ev.event_id, device=device)
                return
        if inbound.kind == "command":
            await self.desk.handle_command(actor, inbound.text, event_id=ev.event_id,
                                           reply_in_room=True)
        elif inbound.kind == "edit" and inbound.target:
            await self.desk.relay_edit(actor, f"{actor.room}#{inbound.target}", inbound.text,
                                       event_id=ev.event_id)
        elif inbound.kind == "delete" and inbound.target:
            await self.desk.relay_delete(actor, f"{actor.room}#{inbound.target}",
                                         event_id=ev.event_id,
                                         moderator=may_redact_others(room, sender))
        else:
            await self.desk.relay(actor, inbound.text, event_id=ev.event_id,
                                  files=list(inbound.files),
                                  source_ref=f"{actor.room}#{ev.event_id}")

    async def _sender_device(self, room_id: str, ev: Any) -> tuple[bool, str | None]:
        """Whether an event in an encrypted room may be acted on, and the sender's device
        (None when it came unencrypted or from no device the bot knows).

        It must have come encrypted (an event nio decrypted, never a plain
        ``m.room.message``) with a Megolm session whose keys (curve25519 sender key and
        ed25519 signing key) are those of one of the sender's devices, received from that
        device (a forwarded key only through the sender's own cross-signed devices). With
        ``exclude_insecure_devices`` (the default) that device must be cross-signed by its
        owner (master → self-signing → device, ``trust.DeviceTrust``); a device not (yet)
        known so is looked up once more (``/keys/query``, at most once a minute each)."""
        if not getattr(ev, "decrypted", False) or self.client.olm is None:
            return False, None
        exclude = self.settings.matrix.exclude_insecure_devices
        device = self._session_device(room_id, ev)
        if device is None or (exclude and not self._device_signed(ev.sender, device)):
            await self._requery(ev.sender, device or str(ev.sender_key))
            device = self._session_device(room_id, ev) or device
        if device is None:
            return False, _UNKNOWN_DEVICE
        ok = not exclude or self._device_signed(ev.sender, device)
        return ok and self._forwarded_ok(room_id, ev), device

    def _session(self, room_id: str, ev: Any) -> Any:
        olm = self.client.olm
        sender_key, session_id = getattr(ev, "sender_key", None), getattr(ev, "session_id", None)
        if olm is None or not sender_key or not session_id:
            return None
        return olm.inbound_group_store.get(room_id, sender_key, session_id)

    def _session_device(self, room_id: str, ev: Any) -> str | None:
        """The id of the sender's device whose keys are the Megolm session's."""
        session = self._session(room_id, ev)
        if session is None:
            return None
        for device in self.client.device_store.active_user_devices(ev.sender):
            if device.curve25519 == ev.sender_key and device.ed25519 == session.ed25519:
                return str(device.id)
        return None

    def _forwarded_ok(self, room_id: str, ev: Any) -> bool:
        """A session received directly, or forwarded only by the sender's own (cross-signed,
        when that is required) devices."""
        session = self._session(room_id, ev)
        chain = list(getattr(session, "forwarding_chain", None) or [])
        if not chain:
            return session is not None
        own_keys = {d.curve25519 for d in self.client.device_store.active_user_devices(
            ev.sender) if not self.settings.matrix.exclude_insecure_devices
            or self._device_signed(ev.sender, d.id)}
        return all(key in own_keys for key in chain)

    def _device_signed(self, user_id: str, device_id: str) -> bool:
        trust = getattr(self.client, "trust", None)
        return trust is not None and bool(trust.is_signed(user_id, device_id))

    async def _requery(self, user_id: str, device_id: str) -> None:
        """``/keys/query`` for ``user_id`` now (the device may have been cross-signed since
        the last one), at most once a minute per device."""
        now = time.monotonic()
        key = (user_id, device_id)
        if now - self._requeried.get(key, float("-inf")) < _REQUERY_S:
            return
        self._requeried[key] = now
        while len(self._requeried) > _WITHHELD_KEPT:
            self._requeried.pop(next(iter(self._requeried)))
        olm = self.client.olm
        if olm is None:
            return
        async with self.key_lock:
            olm.users_for_key_query.add(user_id)
            try:
                await self.client.keys_query()
            except Exception as error:  # a failed query leaves the device untrusted
                log.info("matrix keys query for a sender failed",
                         extra={"user": user_id, "error": f"{type(error).__name__}"})

    def _keep_undecrypted(self, room_id: str, ev: MegolmEvent) -> None:
        allowed = self.settings.matrix.allowed_servers
        known = self._undecrypted.get(ev.event_id)
        if known is not None:
            known.event = known.event or ev
            return
        if allowed and server_of(ev.sender) not in allowed:
            return
        self._undecrypted[ev.event_id] = _Undecrypted(
            room_id, ev.event_id, ev.sender, thread_root(ev.source.get("content") or {}),
            self.clock.now(), ev, session_id=str(ev.session_id or ""),
            sender_key=str(ev.sender_key or ""))
        self._request_key(ev)

    def _request_key(self, ev: MegolmEvent) -> None:
        task = asyncio.ensure_future(self.client.request_room_key(ev))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _refetch(self, item: _Undecrypted) -> Any:
        """Fetch a pending event again (after a restart): its decrypted form when the key is
        here (nio decrypts ``room_get_event`` answers), else the ``MegolmEvent`` (kept, key
        requested); None when it cannot be fetched now. An event that is gone (or a room the
        bot left) is dropped."""
        try:
            resp = await self.client.room_get_event(item.room_id, item.event_id)
        except (ClientError, TimeoutError, OSError) as error:
            log.info("matrix refetch failed; retried after the next sync",
                     extra={"event": item.event_id, "error": f"{type(error).__name__}"})
            return None
        if isinstance(resp, RoomGetEventResponse):
            if isinstance(resp.event, MegolmEvent):
                item.event = resp.event
                self._request_key(resp.event)
                return None
            return resp.event
        if getattr(resp, "status_code", None) in _GONE:
            log.info("matrix pending undecryptable event gone",
                     extra={"room": item.room_id, "event": item.event_id, "error": str(resp)})
            self._undecrypted.pop(item.event_id, None)
        return None

    async def _retry_undecrypted(self) -> None:
        now = self.clock.now()
        for event_id, item in list(self._undecrypted.items()):
            event: Any = None
            if item.event is None:
                event = await self._refetch(item)
                if event_id not in self._undecrypted:
                    continue
            else:
                try:
                    event = self.client.decrypt_event(item.event)
                except Exception:  # nio raises EncryptionError and friends
                    event = None
            if item.event is not None and not item.session_id:
                item.session_id = str(item.event.session_id or "")
            if item.event is not None and not item.sender_key:
                item.sender_key = str(item.event.sender_key or "")
            withheld = self._own_withheld(item)
            if event is not None and not isinstance(event, MegolmEvent):
                del self._undecrypted[event_id]
                await self._event(item.room_id, event)
            elif withheld is not None and withheld[0] in WITHHELD_FINAL:
                del self._undecrypted[event_id]
                await self._tell_undecryptable(item, withheld=withheld[0])
            elif (now - item.first_seen).total_seconds() >= self.grace_seconds:
                del self._undecrypted[event_id]
                await self._tell_undecryptable(item)
        self.state.pending_undecrypted = len(self._undecrypted)

    def _own_withheld(self, item: _Undecrypted) -> tuple[str, str] | None:
        """The withheld notice for ``item``'s session from the session's own sender: sent by
        the event's sender, naming the event's ``sender_key`` (anyone else's notice for that
        session id is ignored)."""
        if not item.session_id:
            return None
        found = self._withheld.get((item.session_id, item.sender))
        if found is None or not item.sender_key or found[1] != item.sender_key:
            return None
        return found

    async def _tell_undecryptable(self, item: _Undecrypted, withheld: str | None = None
                                  ) -> None:
        room = self.client.rooms.get(item.room_id)
        actor = Actor(f"matrix:{item.sender}", f"matrix:{item.room_id}",
                      name=(room.user_name(item.sender) if room else None) or item.sender,
                      thread_root=item.thread)
        await self.desk.tell_unreadable(actor, item.event_id, withheld=withheld,
                                        session=item.session_id or None)
        log.warning("matrix event undecryptable", extra={"room": item.room_id,
                                                         "event": item.event_id,
                                                         "withheld": withheld})
