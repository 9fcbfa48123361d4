"""Unit level (nio's own event objects, a stand-in client and desk): which Matrix events in
an encrypted room the bot acts on (issue 22, item 2), who may remove a relay, and whose
``m.room_key.withheld`` notices count (item 3)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from nio import Event, MegolmEvent, RedactionEvent, RoomMessageText, UnknownToDeviceEvent
from nio.crypto import OlmDevice
from nio.events.room_events import PowerLevels

from liaisonbot.chat.matrix.sync import MatrixSync, may_redact_others
from liaisonbot.chat.matrix.trust import DeviceTrust
from liaisonbot.config import parse
from liaisonbot.service import messages as msg
from liaisonbot.service.desk import Actor
from liaisonbot.service.ports import ManualClock
from test_matrix_helpers import office

pytestmark = pytest.mark.asyncio
ROOM, BOT, ALICE, CAROL = "!room", "@bot:example.org", "@alice:example.org", "@carol:example.org"


class _Desk:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        async def record(actor: Actor, *args: Any, **kw: Any) -> bool:
            self.calls.append((name, args, kw))
            return True
        return record


class _Olm:
    def __init__(self) -> None:
        self.sessions: dict[tuple[str, str, str], Any] = {}
        self.users_for_key_query: set[str] = set()
        self.inbound_group_store = SimpleNamespace(
            get=lambda room, key, sid: self.sessions.get((room, key, sid)))


class _Client:
    def __init__(self) -> None:
        levels = PowerLevels()
        levels.users = {ALICE: 100}
        self.rooms = {ROOM: SimpleNamespace(encrypted=True, power_levels=levels,
                                            users={ALICE: None, BOT: None},
                                            user_name=lambda u: u.split(":")[0][1:])}
        self.olm = _Olm()
        self.devices: dict[str, list[OlmDevice]] = {}
        self.device_store = SimpleNamespace(
            active_user_devices=lambda user: list(self.devices.get(user, [])))
        self.trust = DeviceTrust()
        self.queried = 0
        self.signed_after_query: tuple[str, str] | None = None

    def add_to_device_callback(self, *args: Any) -> None:
        pass

    async def request_room_key(self, event: Any) -> None:
        pass

    def decrypt_event(self, event: Any) -> Any:
        raise RuntimeError("no key")

    async def keys_query(self) -> None:
        self.queried += 1
        if self.signed_after_query:
            user, device = self.signed_after_query
            self.trust.signed.setdefault(user, set()).add(device)


def _sync(tmp_path: Path, exclude: bool = True, allowed: list[str] | None = None,
          telemetry: Any = None) -> tuple[MatrixSync, _Client, _Desk]:
    matrix: dict[str, Any] = {"enabled": True, "homeserver": "https://hs.example.org",
                              "user_id": BOT, "data_dir": str(tmp_path),
                              "exclude_insecure_devices": exclude}
    if allowed is not None:
        matrix["allowed_servers"] = allowed
    settings = parse({"database": {"url": "sqlite+aiosqlite:///x.db"}, "matrix": matrix,
                      "offices": [office("icc", ROOM, [ALICE, CAROL])]}, "test")
    client, desk = _Client(), _Desk()
    sync = MatrixSync(client, settings=settings, desk=desk, uow=None,  # type: ignore[arg-type]
                      clock=ManualClock(), key_lock=asyncio.Lock(), telemetry=telemetry)
    return sync, client, desk


def _device(client: _Client, user: str, device_id: str, *, signed: bool) -> OlmDevice:
    device = OlmDevice(user, device_id, {"ed25519": f"ed-{device_id}",
                                         "curve25519": f"cu-{device_id}"})
    client.devices.setdefault(user, []).append(device)
    if signed:
        client.trust.signed.setdefault(user, set()).add(device_id)
    return device


def _encrypted(client: _Client, device: OlmDevice, body: str, n: int = 1,
               forwarded: list[str] | None = None) -> Event:
    """A message as nio hands it over after decrypting it (``decrypt_megolm_event``)."""
    event = Event.parse_decrypted_event({
        "type": "m.room.message", "content": {"msgtype": "m.text", "body": body},
        "event_id": f"$e{n}", "sender": device.user_id, "origin_server_ts": 1,
        "room_id": ROOM})
    event.decrypted, event.sender_key, event.session_id = True, device.curve25519, f"S{n}"
    client.olm.sessions[(ROOM, device.curve25519, f"S{n}")] = SimpleNamespace(
        ed25519=device.ed25519, forwarding_chain=forwarded or [])
    return event


def _plain(body: str, sender: str = ALICE) -> Any:
    return RoomMessageText.from_dict({
        "type": "m.room.message", "content": {"msgtype": "m.text", "body": body},
        "event_id": "$plain", "sender": sender, "origin_server_ts": 1})


async def test_plain_message_in_encrypted_room_refused(tmp_path: Path) -> None:
    sync, client, desk = _sync(tmp_path)
    _device(client, ALICE, "PHONE", signed=True)
    await sync._event(ROOM, _plain("!liaison open OP-1 to:ba X"))
    assert [(c[0], c[2]) for c in desk.calls] == [("tell_untrusted", {"device": None})]
    client.rooms[ROOM].encrypted = False  # an unencrypted room works as before
    desk.calls.clear()
    await sync._event(ROOM, _plain("!liaison help"))
    assert [c[0] for c in desk.calls] == ["handle_command"]


async def test_signed_device_acted_on_unsigned_refused_after_one_requery(tmp_path: Path
                                                                        ) -> None:
    sync, client, desk = _sync(tmp_path)
    phone = _device(client, ALICE, "PHONE", signed=True)
    laptop = _device(client, ALICE, "LAPTOP", signed=False)
    await sync._event(ROOM, _encrypted(client, phone, "!liaison help", 1))
    await sync._event(ROOM, _encrypted(client, laptop, "!liaison withdraw R-1", 2))
    await sync._event(ROOM, _encrypted(client, laptop, "!liaison withdraw R-1", 3))
    assert [(c[0], c[2].get("device")) for c in desk.calls] == [
        ("handle_command", None), ("tell_untrusted", "LAPTOP"), ("tell_untrusted", "LAPTOP")]
    assert client.queried == 1  # looked up again once, not for every event

    # a device cross-signed since the last query is found by that query and acted on
    tablet = _device(client, ALICE, "TABLET", signed=False)
    client.signed_after_query = (ALICE, "TABLET")
    desk.calls.clear()
    await sync._event(ROOM, _encrypted(client, tablet, "!liaison help", 4))
    assert [c[0] for c in desk.calls] == ["handle_command"]


async def test_session_keys_must_be_the_devices_own(tmp_path: Path) -> None:
    """A session whose signing key is not the device's, or forwarded by a stranger's
    device, does not make its events trusted."""
    sync, client, desk = _sync(tmp_path)
    phone = _device(client, ALICE, "PHONE", signed=True)
    event = _encrypted(client, phone, "!liaison help", 1)
    client.olm.sessions[(ROOM, phone.curve25519, "S1")].ed25519 = "ed-someone-else"
    await sync._event(ROOM, event)
    forwarded = _encrypted(client, phone, "!liaison help", 2, forwarded=["cu-MALLORY"])
    await sync._event(ROOM, forwarded)
    own = _encrypted(client, phone, "!liaison help", 3, forwarded=["cu-PHONE"])
    await sync._event(ROOM, own)
    assert [(c[0], c[2].get("device")) for c in desk.calls] == [
        ("tell_untrusted", "?"), ("tell_untrusted", "PHONE"), ("handle_command", None)]


async def test_without_exclusion_an_unsigned_device_is_acted_on_but_plaintext_is_not(
        tmp_path: Path) -> None:
    sync, client, desk = _sync(tmp_path, exclude=False)
    laptop = _device(client, ALICE, "LAPTOP", signed=False)
    await sync._event(ROOM, _encrypted(client, laptop, "!liaison help", 1))
    await sync._event(ROOM, _plain("!liaison help"))
    assert [c[0] for c in desk.calls] == ["handle_command", "tell_untrusted"]
    # a device whose keys the bot does not have is looked up first, then refused
    stranger = OlmDevice(ALICE, "NEW", {"ed25519": "ed-NEW", "curve25519": "cu-NEW"})
    desk.calls.clear()
    await sync._event(ROOM, _encrypted(client, stranger, "!liaison help", 2))
    assert [(c[0], c[2].get("device")) for c in desk.calls] == [("tell_untrusted", "?")]
    assert client.queried == 1


async def test_redaction_passes_who_may_redact_others(tmp_path: Path) -> None:
    sync, client, desk = _sync(tmp_path)
    for sender in (CAROL, ALICE):
        await sync._event(ROOM, RedactionEvent.from_dict({
            "type": "m.room.redaction", "redacts": "$relayed", "content": {},
            "event_id": f"$r-{sender}", "sender": sender, "origin_server_ts": 1}))
    assert [(c[0], c[2]["moderator"]) for c in desk.calls] == [
        ("relay_delete", False), ("relay_delete", True)]
    room = client.rooms[ROOM]
    assert not may_redact_others(room, CAROL) and may_redact_others(room, ALICE)
    assert not may_redact_others(None, ALICE)


async def test_desk_removes_a_relay_only_for_its_author_or_a_moderator(testbot) -> None:  # type: ignore[no-untyped-def]
    desk = testbot.core.desk
    await testbot.exec("!liaison open ICC-01/14 to:ba-spo kind:mla due:10d Bank records",
                       user="alice", room="icc")
    async with testbot.core.uow() as uow:
        links = await uow.threads.for_request(1)
    link = next(x for x in links if x.room == "console:icc")
    author = Actor("console:alice", "console:icc", name="alice", thread_root=link.thread_root)
    other = Actor("console:head-icc", "console:icc", name="head", thread_root=link.thread_root)
    assert await desk.relay(author, "a relayed line", event_id="m1",
                            source_ref="console:icc#m1")
    assert not await desk.relay_delete(other, "console:icc#m1", event_id="d1", moderator=False)
    assert await desk.relay_delete(author, "console:icc#m1", event_id="d2", moderator=False)
    assert await desk.relay(author, "another line", event_id="m2",
                            source_ref="console:icc#m2")
    assert await desk.relay_delete(other, "console:icc#m2", event_id="d3", moderator=True)


async def test_untrusted_sentence_once_per_device_and_kept_in_state(testbot) -> None:  # type: ignore[no-untyped-def]
    desk, out = testbot.core.desk, testbot.out
    actor = Actor("console:alice", "console:icc", name="Alice")

    async def tell(event: str, device: str | None) -> str:
        start = len(out)
        await desk.tell_untrusted(actor, event, device=device)
        await testbot.core.outbox.drain()
        return "\n".join(out[start:])

    assert msg.UNTRUSTED_DEVICE.format(sender="Alice", device="LAPTOP") in await tell(
        "$1", "LAPTOP")
    assert await tell("$2", "LAPTOP") == ""
    assert msg.UNENCRYPTED_IN_ENCRYPTED_ROOM.format(sender="Alice") in await tell("$3", None)
    assert await tell("$4", None) == ""
    async with testbot.core.uow() as uow:
        assert await uow.state.get("untrusted-told:console:icc:console:alice:LAPTOP") == "$1"
        assert await uow.requests.get(1) is None


# ---------------------------------------------------------------- m.room_key.withheld

def _withheld(sender: str, code: str, session: str = "S1", sender_key: str = "cu-PHONE"
              ) -> UnknownToDeviceEvent:
    return UnknownToDeviceEvent.from_dict({
        "type": "m.room_key.withheld", "sender": sender,
        "content": {"algorithm": "m.megolm.v1.aes-sha2", "room_id": ROOM, "code": code,
                    "session_id": session, "sender_key": sender_key, "reason": "x"}})


async def test_withheld_only_from_allowed_servers_and_codes_from_a_fixed_set(tmp_path: Path
                                                                            ) -> None:
    from liaisonbot.metrics import PrometheusTelemetry

    telemetry = PrometheusTelemetry()
    sync, _, _ = _sync(tmp_path, telemetry=telemetry)  # no allowed_servers
    assert sync.withheld_servers() == {"example.org"}  # the offices' members and the bot
    for n in range(500):  # the findings' flood, from another server
        sync._on_to_device(_withheld("@mallory:evil.example", f"x.code.{n}", f"M{n}"))
    assert sync.state.withheld == 0 and not sync._withheld
    for n in range(50):  # a member's client with made-up codes: one "other" series
        sync._on_to_device(_withheld(ALICE, f"x.code.{n}", f"A{n}"))
    sync._on_to_device(_withheld(ALICE, "m.no_olm", "B1"))
    metrics = telemetry.render().decode()
    series = [line for line in metrics.splitlines()
              if line.startswith("liaisonbot_matrix_withheld_total{")]
    assert sorted(series) == ['liaisonbot_matrix_withheld_total{code="m.no_olm"} 1.0',
                              'liaisonbot_matrix_withheld_total{code="other"} 50.0']
    sync2, _, _ = _sync(tmp_path, allowed=["partner.example"])
    assert sync2.withheld_servers() == {"partner.example", "example.org"}
    sync2._on_to_device(_withheld(ALICE, "m.unverified"))  # example.org: the bot's own
    sync2._on_to_device(_withheld("@x:other.example", "m.unverified"))
    assert sync2.state.withheld == 1


async def test_withheld_for_someone_elses_session_ignored(tmp_path: Path) -> None:
    sync, _, desk = _sync(tmp_path)
    pending = MegolmEvent.from_dict({
        "type": "m.room.encrypted", "event_id": "$m1", "sender": ALICE, "origin_server_ts": 1,
        "room_id": ROOM, "content": {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "x",
                                     "sender_key": "cu-PHONE", "session_id": "S1",
                                     "device_id": "PHONE"}})
    await sync._event(ROOM, pending)
    await asyncio.sleep(0)
    sync._on_to_device(_withheld(CAROL, "m.unverified"))  # another member spoofs it
    sync._on_to_device(_withheld(ALICE, "m.unverified", sender_key="cu-OTHER"))  # not its key
    await sync._retry_undecrypted()
    assert desk.calls == [] and sync.state.pending_undecrypted == 1
    sync._on_to_device(_withheld(ALICE, "m.unverified"))  # the session's own sender
    await sync._retry_undecrypted()
    assert [(c[0], c[2].get("withheld")) for c in desk.calls] == [
        ("tell_unreadable", "m.unverified")]
    assert sync.state.pending_undecrypted == 0


# ---------------------------------------------------------------- pinned identities

async def test_pins_first_seen_kept_change_held_until_accepted(testbot) -> None:  # type: ignore[no-untyped-def]
    from liaisonbot.chat.matrix.pins import Pins, accept

    pins = Pins()
    assert pins.see(ALICE, "M1") and pins.see(ALICE, "M1")
    assert not pins.see(ALICE, "M2") and not pins.see(ALICE, "M2")
    assert pins.newly_held == [(ALICE, "M2")] and pins.held() == {ALICE: "M2"}
    now = testbot.clock.now()
    async with testbot.core.uow() as uow:
        await pins.save(uow.state, now)
        assert await pins.accepted(uow.state) == []
        assert await accept(uow.state, CAROL, now) is None  # nothing held for carol
        assert await accept(uow.state, ALICE, now) == "M2"
        assert await accept(uow.state, ALICE, now) is None
        assert await pins.accepted(uow.state) == [ALICE]
        await uow.commit()
    assert pins.held() == {} and pins.see(ALICE, "M2")
    restarted = Pins()
    async with testbot.core.uow() as uow:
        await restarted.load(uow.state)
    assert restarted.see(ALICE, "M2") and not restarted.see(ALICE, "M1")
