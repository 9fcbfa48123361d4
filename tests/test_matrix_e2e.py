
"""liaisonbot's Matrix platform against a real Synapse: commands, cards, threads, E2EE,
restarts, idempotent sends, hostile text, foreign servers and invites."""

# ruff: noqa: F811  (fixture imported by name; polling helpers with timeouts)
from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from liaisonbot.domain.cards import Post
from liaisonbot.service import messages as msg
from liaisonbot.service.ports import Clock, Delivery
from support.poll import eventually
from support.synapse import PartnerClient, SynapseServer, synapse, thread_root_of  # noqa: F401
from test_matrix_helpers import office, register_bot, running_bot, settings_for, wait_joined

pytestmark = [pytest.mark.asyncio, pytest.mark.synapse]


def _notice(pred: Any = lambda e: True) -> Any:
    def check(e: Any) -> bool:
        return e.source["content"].get("msgtype") == "m.notice" and pred(e)
    return check


async def _partner(server: SynapseServer, name: str, tmp: Path, encrypted: bool = False
                   ) -> PartnerClient:
    user = await server.register(name + "-" + tmp.name[-6:].replace("_", ""))
    return await PartnerClient.login(server, user, tmp / name, encrypted=encrypted)


async def _two_offices(synapse: SynapseServer, tmp: Path, *, encrypted: bool = False,
                       allowed: list[str] | None = None,
                       ba: dict[str, Any] | None = None) -> tuple[Any, ...]:
    """``ba``: more keys for the ba office (its contacts, …)."""
    bot = await register_bot(synapse)
    alice = await _partner(synapse, "alice", tmp, encrypted)
    bob = await _partner(synapse, "bob", tmp, encrypted)
    room_a = await alice.create_room("icc", encrypted=encrypted, invite=[bot.user_id])
    room_b = await bob.create_room("ba", encrypted=encrypted, invite=[bot.user_id])
    settings = settings_for(synapse, bot, tmp, allowed=allowed, offices=[
        office("icc", room_a, [alice.user_id]), office("ba", room_b, [bob.user_id],
                                                       **(ba or {}))])
    return bot, alice, bob, room_a, room_b, settings


async def test_command_reply_card_and_thread_relay(synapse: SynapseServer, tmp_path: Path
                                                   ) -> None:
    bot, alice, bob, room_a, room_b, settings = await _two_offices(synapse, tmp_path)
    try:
        async with running_bot(settings, bot) as running:
            await wait_joined(running.platform, room_a)
            await wait_joined(running.platform, room_b)
            await alice.send_text(room_a, "!liaison help")
            reply = await alice.wait_for_message(room_a, _notice(), timeout=20)
            assert reply.sender == bot.user_id
            assert "liaisonbot commands" in reply.body
            assert reply.source["content"]["m.mentions"] == {}

            await alice.send_text(room_a, "!liaison open OP-1 to:ba Bank records of X")
            card_b = await bob.wait_for_message(room_b, _notice(lambda e: "R-1" in e.body), 20)
            assert "Bank records of X" in card_b.body
            card_a = await alice.wait_for_message(room_a, _notice(lambda e: "R-1" in e.body), 20)

            await bob.send_text(room_b, "we are on it", thread_root=card_b.event_id)
            relay = await alice.wait_for_message(
                room_a, _notice(lambda e: "we are on it" in e.body), 20)
            assert thread_root_of(relay) == card_a.event_id
            assert "bob" in relay.body.lower()

            # a command typed inside the thread is answered inside the thread
            await bob.send_text(room_b, "!liaison ack R-1", thread_root=card_b.event_id)
            note = await bob.wait_for_message(
                room_b, _notice(lambda e: "acknowledged" in e.body.lower()
                                and thread_root_of(e) == card_b.event_id), 20)
            assert note.sender == bot.user_id
            health = await running.platform.health()
            assert health["ok"] and health["synced"] and health["last_sync"]
    finally:
        await alice.close()
        await bob.close()


async def test_encrypted_rooms_both_ways(synapse: SynapseServer, tmp_path: Path) -> None:
    bot, alice, bob, room_a, room_b, settings = await _two_offices(synapse, tmp_path,
                                                                   encrypted=True)
    try:
        async with running_bot(settings, bot) as running:
            await wait_joined(running.platform, room_a)
            await wait_joined(running.platform, room_b)
            await alice.send_text(room_a, "!liaison open OP-2 to:ba secret witness list")
            card_b = await bob.wait_for_message(room_b, _notice(lambda e: "R-1" in e.body), 30)
            assert card_b.decrypted and "secret witness list" in card_b.body
            card_a = await alice.wait_for_message(room_a, _notice(lambda e: "R-1" in e.body), 30)
            assert card_a.decrypted
            await bob.send_text(room_b, "encrypted answer", thread_root=card_b.event_id)
            relay = await alice.wait_for_message(
                room_a, _notice(lambda e: "encrypted answer" in e.body), 30)
            assert relay.decrypted and thread_root_of(relay) == card_a.event_id
    finally:
        await alice.close()
        await bob.close()


async def test_restart_no_replay_and_missed_command_answered_once(
        synapse: SynapseServer, tmp_path: Path) -> None:
    bot, alice, bob, room_a, _room_b, settings = await _two_offices(synapse, tmp_path)
    try:
        # Commands from before the bot ever ran are history: never answered.
        await alice.send_text(room_a, "!liaison list OLD-0")
        async with running_bot(settings, bot, timeline_limit=3) as running:
            await wait_joined(running.platform, room_a)
            await alice.send_text(room_a, "!liaison list FIRST-1")
            await alice.wait_for_message(room_a, _notice(lambda e: "FIRST-1" in e.body), 20)
        # While the bot is down: a command, then enough chatter to make the timeline limited.
        await alice.send_text(room_a, "!liaison list WHILE-DOWN")
        for i in range(6):
            await alice.send_text(room_a, f"chatter {i}")
        async with running_bot(settings, bot, timeline_limit=3):
            await alice.send_text(room_a, "!liaison list AFTER-2")
            await alice.wait_for_message(room_a, _notice(lambda e: "AFTER-2" in e.body), 20)
        async with running_bot(settings, bot, timeline_limit=3):
            await alice.send_text(room_a, "!liaison list AFTER-3")
            await alice.wait_for_message(room_a, _notice(lambda e: "AFTER-3" in e.body), 20)
        everything = await _bot_notices(alice, room_a, bot.user_id)
        assert sum("WHILE-DOWN" in b for b in everything) == 1, everything
        assert sum("FIRST-1" in b for b in everything) == 1, everything
        assert sum("AFTER-2" in b for b in everything) == 1, everything
        assert not any("OLD-0" in b for b in everything), everything
    finally:
        await alice.close()
        await bob.close()


async def test_who_answered_in_the_asking_room_only(synapse: SynapseServer, tmp_path: Path
                                                    ) -> None:
    contact = {"name": "Bojan Kovačević", "role": "liaison officer", "phone": "+38733555014",
               "email": "bojan@spo.example.org", "languages": ["bs", "en"]}
    bot, alice, bob, room_a, room_b, settings = await _two_offices(
        synapse, tmp_path, ba={"contacts": [contact], "country": "BA"})
    try:
        async with running_bot(settings, bot) as running:
            await wait_joined(running.platform, room_a)
            await wait_joined(running.platform, room_b)
            await alice.send_text(room_a, "!liaison who ba")
            reply = await alice.wait_for_message(
                room_a, _notice(lambda e: "Points of contact" in e.body), 20)
            assert reply.body.splitlines()[0] == "BA (ba), Bosnia & Herzegovina"
            assert "- Bojan Kovačević, liaison officer: +38733555014, bojan@spo.example.org; " \
                "works in Bosnian and English" in reply.body
            assert "<br>- Bojan Kovačević, liaison officer" in \
                reply.source["content"]["formatted_body"]
            assert reply.source["content"]["m.mentions"] == {}
            # A positive barrier in ba's room: its own command is answered, and the contact
            # details never went there.
            await bob.send_text(room_b, "!liaison help who")
            await bob.wait_for_message(room_b, _notice(lambda e: "who [OFFICE]" in e.body), 20)
        assert not any("+38733555014" in b for b in await _bot_notices(bob, room_b,
                                                                         bot.user_id))
    finally:
        await alice.close()
        await bob.close()


async def _bot_notices(partner: PartnerClient, room_id: str, bot_id: str) -> list[str]:
    """Every notice the bot sent to the room, from the server's history."""
    from nio import RoomMessagesResponse

    found: list[str] = []
    start = ""
    for _ in range(20):
        resp = await partner.client.room_messages(room_id, start=start, limit=100)
        assert isinstance(resp, RoomMessagesResponse), resp
        found += [e.body for e in resp.chunk if getattr(e, "sender", "") == bot_id
                  and hasattr(e, "body")]
        if not resp.chunk or not resp.end:
            break
        start = resp.end
    return found


async def test_txn_resend_gives_one_event(synapse: SynapseServer, tmp_path: Path) -> None:
    bot, alice, bob, room_a, _room_b, settings = await _two_offices(synapse, tmp_path)
    try:
        async with running_bot(settings, bot) as running:
            await wait_joined(running.platform, room_a)
            post = Post(kind="reply", text="only once", as_of=datetime.now(UTC).isoformat())
            delivery = Delivery("lb-test-1", f"matrix:{room_a}", post, None)
            first = await running.platform.gateway.deliver(delivery)
            second = await running.platform.gateway.deliver(delivery)
            assert first.message_ref == second.message_ref
            got = await alice.wait_for_message(room_a, _notice(lambda e: e.body == "only once"))
            assert got.source["content"]["org.liaisonbot.delivery"] == "lb-test-1"
        assert sum(b == "only once" for b in await _bot_notices(alice, room_a,
                                                                 bot.user_id)) == 1
    finally:
        await alice.close()
        await bob.close()


async def test_hostile_summary_rendered_harmless(synapse: SynapseServer, tmp_path: Path
                                                 ) -> None:
    bot, alice, bob, room_a, room_b, settings = await _two_offices(synapse, tmp_path)
    evil = ('@room <b>bold</b> <a href="https://evil.example">bank</a> '
            '<img src=x onerror=alert(1)> & more')
    try:
        async with running_bot(settings, bot) as running:
            await wait_joined(running.platform, room_a)
            await wait_joined(running.platform, room_b)
            await alice.send_text(room_a, f"!liaison open OP-3 to:ba {evil}")
            card = await bob.wait_for_message(room_b, _notice(lambda e: "R-1" in e.body), 20)
            content = card.source["content"]
            html = content["formatted_body"]
            assert content["format"] == "org.matrix.custom.html"
            assert "<a href" not in html and "<img" not in html and "<b>bold" not in html
            assert "&lt;a href=&quot;https://evil.example&quot;&gt;" in html
            assert "@room" not in html and "@room" not in content["body"]
            assert "@\u2060room" in content["body"]
            assert content["m.mentions"] == {}
    finally:
        await alice.close()
        await bob.close()


async def test_foreign_server_ignored(synapse: SynapseServer, tmp_path: Path) -> None:
    bot, alice, bob, room_a, _room_b, settings = await _two_offices(
        synapse, tmp_path, allowed=["elsewhere.example"])
    try:
        async with running_bot(settings, bot) as running:
            await wait_joined(running.platform, room_a)
            await alice.send_text(room_a, "!liaison help")
            await _two_more_syncs(running)
            async with running.core.uow() as uow:
                assert await uow.outbox.backlog() == 0
            assert running.core.outbox.delivered == 0
    finally:
        await alice.close()
        await bob.close()


async def _two_more_syncs(running: Any, timeout: float = 20) -> None:
    """Wait until the bot finished two syncs that started after this call."""
    for _ in range(3):
        before = running.platform.sync.state.last_sync

        def synced_again(before: Any = before) -> bool:
            return bool(running.platform.sync.state.last_sync != before)
        await eventually(synced_again, timeout=timeout, what="another sync")


async def test_invites_member_accepted_stranger_rejected(synapse: SynapseServer,
                                                         tmp_path: Path) -> None:
    bot, alice, bob, room_a, _room_b, settings = await _two_offices(synapse, tmp_path)
    mallory = await _partner(synapse, "mallory", tmp_path)
    try:
        async with running_bot(settings, bot) as running:
            await wait_joined(running.platform, room_a)
            bad = await mallory.create_room("trap", encrypted=False, invite=[bot.user_id])
            good = await alice.create_room("alice extra", encrypted=False, invite=[bot.user_id])
            await wait_joined(running.platform, good)
            await _membership_is(mallory, bad, bot.user_id, "leave")
            assert bad not in running.platform.client.rooms
    finally:
        for c in (alice, bob, mallory):
            await c.close()


async def _membership_is(partner: PartnerClient, room_id: str, user_id: str, want: str,
                         timeout: float = 20) -> None:
    from nio import RoomGetStateEventResponse

    async def check() -> bool:
        resp = await partner.client.room_get_state_event(room_id, "m.room.member", user_id)
        return isinstance(resp, RoomGetStateEventResponse) and \
            resp.content.get("membership") == want
    await eventually(check, timeout=timeout, interval=0.1, what=f"{user_id} {want}")


class _ShiftClock(Clock):
    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


async def test_undecryptable_message_answered_after_grace(synapse: SynapseServer,
                                                          tmp_path: Path) -> None:
    """An encrypted message whose key never reaches the bot is answered, not dropped."""
    bot, alice, bob, room_a, _room_b, settings = await _two_offices(synapse, tmp_path,
                                                                    encrypted=True)
    clock = _ShiftClock()
    try:
        async with running_bot(settings, bot, clock=clock, grace_seconds=60) as running:
            await wait_joined(running.platform, room_a)
            # Alice's client shares the room key only with devices it knows; keep the bot's
            # device out by sharing the session before the bot joined, then blocking it.
            await alice.prepare_encrypted_send(room_a)
            device = next(iter(alice.client.device_store[bot.user_id].values()), None)
            if device is not None:
                alice.client.blacklist_device(device)
                alice.client.olm.outbound_group_sessions.pop(room_a, None)
            await alice.send_text(room_a, "!liaison help")

            await eventually(lambda: running.platform.sync.state.pending_undecrypted,
                             timeout=20, what="an undecryptable event pending")
            clock.offset = timedelta(seconds=61)
            sorry = await alice.wait_for_message(
                room_a, _notice(lambda e: e.body == msg.UNDECRYPTABLE), 20)
            assert sorry.sender == bot.user_id
    finally:
        await alice.close()
        await bob.close()


# ---------------------------------------------------------------- resend after a long outage

async def _marker_events(partner: PartnerClient, room_id: str, delivery_id: str) -> list[str]:
    """Ids of every event in the room (decrypted where the partner can) carrying the bot's
    delivery marker for ``delivery_id``, from the server's history."""
    from nio import MegolmEvent, RoomMessagesResponse

    from liaisonbot.chat.matrix.html import MARKER

    found: list[str] = []
    start = ""
    for _ in range(20):
        resp = await partner.client.room_messages(room_id, start=start, limit=100)
        assert isinstance(resp, RoomMessagesResponse), resp
        assert not any(isinstance(e, MegolmEvent) for e in resp.chunk
                       if getattr(e, "sender", "") != partner.user_id), "partner cannot read"
        found += [e.event_id for e in resp.chunk
                  if (e.source.get("content") or {}).get(MARKER) == delivery_id]
        if not resp.chunk or not resp.end:
            break
        start = resp.end
    return found


async def test_resend_after_txn_forgotten_found_in_history(synapse: SynapseServer,
                                                           tmp_path: Path) -> None:
    """The first attempt's event landed but its answer was lost, and the txn id no longer
    dedupes (here: it was sent from another device of the bot, whose txn ids are separate):
    the retry finds the event by its marker and does not post again."""
    from liaisonbot.chat.matrix.html import message_content

    bot, alice, bob, room_a, _room_b, settings = await _two_offices(synapse, tmp_path)
    other_device = await PartnerClient.login(synapse, bot, tmp_path / "bot-other",
                                             encrypted=False)
    try:
        async with running_bot(settings, bot) as running:
            gateway = running.platform.gateway
            await wait_joined(running.platform, room_a)
            # Padding after the lost event, so the search has to look past other bot events.
            post = Post(kind="reply", text="lost answer", as_of=datetime.now(UTC).isoformat())
            delivery = Delivery("lb-lost-1", f"matrix:{room_a}", post, None)
            sent = await other_device.client.room_send(
                room_a, "m.room.message",
                message_content(post, delivery_id=delivery.delivery_id),
                tx_id=delivery.delivery_id)
            lost_event = sent.event_id  # ... and its answer never reached the outbox
            for i in range(3):
                pad = Post(kind="reply", text=f"pad {i}", as_of=datetime.now(UTC).isoformat())
                await gateway.deliver(Delivery(f"lb-pad-{i}", f"matrix:{room_a}", pad, None))
            assert gateway.history_checks == 0  # first attempts never search

            # attempt 2: the outbox's claim says an earlier attempt may have been posted
            delivery = replace(delivery, in_doubt=True)
            receipt = await gateway.deliver(delivery)
            assert receipt.message_ref == lost_event
            assert gateway.history_checks == 1
            again = await gateway.deliver(delivery)  # and a third time, still the same
            assert again.message_ref == lost_event
        assert await _marker_events(alice, room_a, "lb-lost-1") == [lost_event]
    finally:
        for c in (alice, bob, other_device):
            await c.close()


async def test_lost_send_in_encrypted_room_not_repeated_after_restart(
        synapse: SynapseServer, tmp_path: Path) -> None:
    """Encrypted room: the event went out but the answer was lost, the txn id is forgotten and
    the bot stopped before it heard back; after the restart the outbox hands the entry to the
    gateway in doubt, and the gateway decrypts its own event from history and returns it."""
    from aiohttp.client_exceptions import ServerDisconnectedError

    bot, alice, bob, room_a, _room_b, settings = await _two_offices(synapse, tmp_path,
                                                                    encrypted=True)
    post = Post(kind="reply", text="secret once", as_of=datetime.now(UTC).isoformat())
    landed: list[str] = []
    try:
        async with running_bot(settings, bot) as running:
            await wait_joined(running.platform, room_a)
            client = running.platform.client
            real_send = client.room_send

            async def send_then_lose(room_id: str, message_type: str, content: dict[str, Any],
                                     tx_id: str | None = None, **kw: Any) -> Any:
                if landed:  # the retry hangs until the shutdown cancels it
                    await asyncio.Event().wait()
                # a txn id Synapse will not recognise later = "it forgot the txn id"
                resp = await real_send(room_id, message_type, content,
                                       tx_id=f"{tx_id}-forgotten", **kw)
                landed.append(resp.event_id)
                raise ServerDisconnectedError()

            client.room_send = send_then_lose  # type: ignore[method-assign]
            async with running.core.uow() as uow:
                entry = await uow.outbox.add(platform="matrix", room=f"matrix:{room_a}",
                                             post=post, request_id=None,
                                             at=running.core.clock.now())
                await uow.commit()
            running.core.outbox.wake()
            await eventually(lambda: len(landed) == 1, what="the first send landed")

            async def settled_in_doubt() -> bool:
                async with running.core.uow(read_only=True) as uow:
                    row = (await uow.conn.execute(text(
                        "SELECT status, in_doubt, last_error FROM outbox WHERE id = :i"),
                        {"i": entry})).one()
                return row.status == "pending" and bool(row.in_doubt) and bool(row.last_error)

            await eventually(settled_in_doubt, what="the lost answer left the entry in doubt")
        assert len(landed) == 1 and running.core.outbox.delivered == 0

        async with running_bot(settings, bot) as running:
            await wait_joined(running.platform, room_a)
            await eventually(lambda: running.core.outbox.delivered == 1, what="redelivered")
            assert running.platform.gateway.history_checks == 1
            async with running.core.uow(read_only=True) as uow:
                ref = (await uow.conn.execute(text(
                    "SELECT message_ref FROM outbox WHERE id = :i"), {"i": entry})).scalar()
            assert ref == landed[0]
        await alice.sync_once()
        assert await _marker_events(alice, room_a, f"lb-{entry}") == landed
    finally:
        await alice.close()
        await bob.close()


# ------------------------------------------------------ undecryptable events across a restart

async def _undecryptable_from_alice(running: Any, alice: PartnerClient, bot_id: str,
                                    room_id: str, text: str) -> None:
    """Alice sends ``text`` with a room key the bot's device never gets."""
    await alice.prepare_encrypted_send(room_id)
    device = next(iter(alice.client.device_store[bot_id].values()), None)
    if device is not None:
        alice.client.blacklist_device(device)
        alice.client.olm.outbound_group_sessions.pop(room_id, None)
    await alice.send_text(room_id, text)

    await eventually(lambda: running.platform.sync.state.pending_undecrypted, timeout=20,
                     what="an undecryptable event pending")


async def _pending_state(running: Any) -> list[dict[str, Any]]:
    import json

    from liaisonbot.chat.matrix.sync import PENDING_KEY

    async with running.core.uow() as uow:
        return list(json.loads(await uow.state.get(PENDING_KEY) or "[]"))


async def test_undecryptable_pending_across_restart_answered_once(synapse: SynapseServer,
                                                                  tmp_path: Path) -> None:
    bot, alice, bob, room_a, _room_b, settings = await _two_offices(synapse, tmp_path,
                                                                    encrypted=True)
    clock = _ShiftClock()
    try:
        async with running_bot(settings, bot, clock=clock, grace_seconds=60) as running:
            await wait_joined(running.platform, room_a)
            await _undecryptable_from_alice(running, alice, bot.user_id, room_a,
                                            "!liaison help")

            await eventually(lambda: _pending_state(running), timeout=20,
                             what="the pending list saved")
            [entry] = await _pending_state(running)
            assert entry["room"] == room_a and entry["sender"] == alice.user_id
        # Down before the grace period ended; it is over when the bot is back.
        clock.offset = timedelta(seconds=61)
        async with running_bot(settings, bot, clock=clock, grace_seconds=60) as running:
            sorry = await alice.wait_for_message(
                room_a, _notice(lambda e: e.body == msg.UNDECRYPTABLE), 20)
            assert sorry.sender == bot.user_id
            await _two_more_syncs(running)
            assert await _pending_state(running) == []
            assert running.platform.sync.state.pending_undecrypted == 0
        async with running_bot(settings, bot, clock=clock, grace_seconds=60) as running:
            await _two_more_syncs(running)
        notices = await _bot_notices(alice, room_a, bot.user_id)
        assert notices.count(msg.UNDECRYPTABLE) == 1, notices
    finally:
        await alice.close()
        await bob.close()


async def test_undecryptable_pending_key_arrives_while_down_then_handled(
        synapse: SynapseServer, tmp_path: Path) -> None:
    """The key reaches the bot's device while the bot is down: after the restart the event is
    fetched again, decrypted and handled — no "could not read" notice."""
    from nio import ToDeviceMessage

    bot, alice, bob, room_a, _room_b, settings = await _two_offices(synapse, tmp_path,
                                                                    encrypted=True)
    clock = _ShiftClock()
    try:
        async with running_bot(settings, bot, clock=clock, grace_seconds=60) as running:
            await wait_joined(running.platform, room_a)
            # Alice's next session, exported before its first message (index 0) ...
            await alice.prepare_encrypted_send(room_a)
            device = alice.client.device_store[bot.user_id][bot.device_id]
            alice.client.blacklist_device(device)
            alice.client.olm.create_outbound_group_session(room_a)
            session = alice.client.olm.outbound_group_sessions[room_a]
            key0 = {"algorithm": "m.megolm.v1.aes-sha2", "room_id": room_a,
                    "session_id": session.id, "session_key": session.session_key}
            await alice.send_text(room_a, "!liaison list KEY-LATE")  # ... not for the bot

            await eventually(lambda: _pending_state(running), timeout=20,
                             what="the pending list saved")
        # While the bot is down, the key reaches its device after all.
        alice.client.unblacklist_device(device)
        olm = alice.client.olm
        olm_session = olm.session_store.get(device.curve25519)
        assert olm_session is not None
        to_bot = ToDeviceMessage("m.room.encrypted", bot.user_id, bot.device_id,
                                 olm._olm_encrypt(olm_session, device, "m.room_key", key0))
        await alice.client.to_device(to_bot)

        async with running_bot(settings, bot, clock=clock, grace_seconds=60) as running:
            await alice.wait_for_message(room_a, _notice(lambda e: "KEY-LATE" in e.body), 20)
            await _two_more_syncs(running)
            assert await _pending_state(running) == []
            clock.offset = timedelta(seconds=61)
            await _two_more_syncs(running)
        notices = await _bot_notices(alice, room_a, bot.user_id)
        assert sum("KEY-LATE" in n for n in notices) == 1, notices
        assert msg.UNDECRYPTABLE not in notices
    finally:
        await alice.close()
        await bob.close()


async def test_card_with_two_measures_and_a_partial_answer(synapse: SynapseServer,
                                                           tmp_path: Path) -> None:
    """Issue 24 on a real Synapse: the card lists two measures; a partial answer edits it in
    place (``m.replace``) on both sides, body and HTML naming each measure's state and the
    conditions on use."""
    bot, alice, bob, room_a, room_b, settings = await _two_offices(synapse, tmp_path)
    try:
        async with running_bot(settings, bot) as running:
            await wait_joined(running.platform, room_a)
            await wait_joined(running.platform, room_b)
            await alice.send_text(room_a, '!liaison open OP-2 to:ba measure:"hearing of W" '
                                          'measure:"bank records" Evidence on X')
            card_b = await bob.wait_for_message(room_b, _notice(lambda e: "R-1" in e.body), 20)
            assert "R-1/1 hearing of W: pending" in card_b.body
            assert "R-1/2 bank records: pending" in card_b.body
            card_a = await alice.wait_for_message(room_a, _notice(lambda e: "R-1" in e.body), 20)

            await bob.send_text(room_b, '!liaison answer R-1/1 Transcript sent '
                                        'conditions:"for use in OP-2 only"')

            def edit_of(card: Any) -> Any:
                def check(e: Any) -> bool:
                    relates = e.source["content"].get("m.relates_to") or {}
                    return relates.get("rel_type") == "m.replace" \
                        and relates.get("event_id") == card.event_id
                return check

            for partner, room, card in ((alice, room_a, card_a), (bob, room_b, card_b)):
                edit = await partner.wait_for_message(room, edit_of(card), 30)
                new = edit.source["content"]["m.new_content"]
                for text in (new["body"], new["formatted_body"]):
                    assert "partly answered" in text
                    assert "R-1/1 hearing of W: answered" in text
                    assert "Conditions on use: for use in OP-2 only" in text
                    assert "R-1/2 bank records: pending" in text
    finally:
        await alice.close()
        await bob.close()
