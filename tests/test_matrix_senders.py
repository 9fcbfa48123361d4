"""Who the bot acts on in an encrypted room, against a real Synapse (issue 22, item 2): only
events that came encrypted from a device its owner cross-signed; anything else is answered
with one sentence per device (remembered across restarts) and nothing is stored."""

# ruff: noqa: F811
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text

from liaisonbot.chat.matrix.crosssigning import CrossSigning
from liaisonbot.service import messages as msg
from support.synapse import PartnerClient, SynapseServer, synapse  # noqa: F401
from test_matrix_helpers import office, register_bot, running_bot, settings_for, wait_joined

pytestmark = [pytest.mark.asyncio, pytest.mark.synapse]
PICKLE = "senders-test-pickle-0123456789abcdef"


async def _cross_sign(partner: PartnerClient, keys_dir: Path) -> None:
    state = await CrossSigning(partner.client, data_dir=str(keys_dir),
                               pickle_key=PICKLE).ensure()
    assert state.cross_signed, state


async def _stored(running: Any) -> tuple[int, int]:
    async with running.core.uow() as uow:
        requests = (await uow.conn.execute(text("SELECT count(*) FROM request"))).scalar()
        history = (await uow.conn.execute(text("SELECT count(*) FROM history"))).scalar()
    return int(requests or 0), int(history or 0)


async def _plain_send(server: SynapseServer, token: str, room: str, body: str) -> None:
    """What the findings did: PUT /send with a member's token, unencrypted, into an
    encrypted room."""
    async with aiohttp.ClientSession() as http, http.put(
            f"{server.base_url}/_matrix/client/v3/rooms/{room}/send/m.room.message/"
            f"{os.urandom(8).hex()}", json={"msgtype": "m.text", "body": body},
            headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 200, await response.text()


def _bot_said(partner: PartnerClient, room: str, bot: str) -> list[str]:
    return [str(getattr(e, "body", "")) for e in partner.buffered_events(room)
            if getattr(e, "sender", "") == bot]


async def test_plaintext_and_unsigned_device_refused_once_and_nothing_stored(
        synapse: SynapseServer, tmp_path: Path) -> None:
    bot = await register_bot(synapse)
    tag = tmp_path.name[-6:].replace("_", "")
    alice_user = await synapse.register("sa-" + tag)
    bob_user = await synapse.register("sb-" + tag)
    phone = await PartnerClient.login(synapse, alice_user, tmp_path / "phone")
    await _cross_sign(phone, tmp_path / "alice-keys")
    bob = await PartnerClient.login(synapse, bob_user, tmp_path / "bob", encrypted=False)
    room_a = await phone.create_room("icc", encrypted=True, invite=[bot.user_id])
    room_b = await bob.create_room("ba", encrypted=False, invite=[bot.user_id])
    settings = settings_for(synapse, bot, tmp_path, exclude_insecure_devices=True, offices=[
        office("icc", room_a, [alice_user.user_id]), office("ba", room_b, [bob_user.user_id])])
    plain = msg.UNENCRYPTED_IN_ENCRYPTED_ROOM.split("{sender}")[1][:40]
    unsigned = msg.UNTRUSTED_DEVICE.split("{sender}")[1][:40]
    laptop = None
    try:
        async with running_bot(settings, bot) as running:
            await wait_joined(running.platform, room_a)
            await wait_joined(running.platform, room_b)
            # 1. unencrypted, with alice's access token: refused in one sentence
            await _plain_send(synapse, alice_user.access_token, room_a,
                              "!liaison open OP-1 to:ba Bank records of X")
            said = await phone.wait_for_message(
                room_a, lambda e: e.sender == bot.user_id and plain in e.body, 30)
            assert said.decrypted
            await _plain_send(synapse, alice_user.access_token, room_a,
                              "!liaison open OP-2 to:ba Bank records of Y")
            # 2. a new device of alice's, never cross-signed, encrypted: refused
            laptop = await PartnerClient.login(synapse, alice_user, tmp_path / "laptop")
            await laptop.join(room_a)
            await laptop.send_text(room_a, "!liaison open OP-3 to:ba Bank records of Z")
            said = await phone.wait_for_message(
                room_a, lambda e: e.sender == bot.user_id and unsigned in e.body, 30)
            assert laptop.client.device_id in said.body
            await laptop.send_text(room_a, "!liaison open OP-4 to:ba again")
            # 3. the cross-signed phone is acted on
            await phone.send_text(room_a, "!liaison open OP-5 to:ba Signed request")
            card = await bob.wait_for_message(
                room_b, lambda e: e.sender == bot.user_id and "Signed request" in e.body, 30)
            assert "R-1" in card.body
            # the answer in alice's room comes after anything said about OP-2 and OP-4
            await phone.wait_for_message(
                room_a, lambda e: e.sender == bot.user_id and "Signed request" in e.body, 30)
            bot_said = _bot_said(phone, room_a, bot.user_id)
            assert not any(plain in b or unsigned in b for b in bot_said), bot_said
            await bob.sync_once()
            assert not any("Bank records" in b or "again" in b
                           for b in _bot_said(bob, room_b, bot.user_id))
            assert (await _stored(running))[0] == 1  # only the signed one
            async with running.core.uow() as uow:
                history = (await uow.conn.execute(text(
                    "SELECT count(*) FROM history WHERE request_id IS NULL OR "
                    "request_id != (SELECT min(id) FROM request)"))).scalar()
            assert history == 0
        # after a restart the same devices are not told again
        async with running_bot(settings, bot) as running:
            await wait_joined(running.platform, room_a)
            await _plain_send(synapse, alice_user.access_token, room_a, "!liaison help")
            await laptop.send_text(room_a, "!liaison help")
            await phone.send_text(room_a, "!liaison help list")
            await phone.wait_for_message(
                room_a, lambda e: e.sender == bot.user_id and "list" in e.body, 30)
            bot_said = _bot_said(phone, room_a, bot.user_id)
            assert not any(plain in b or unsigned in b for b in bot_said), bot_said
    finally:
        await phone.close()
        await bob.close()
        if laptop is not None:
            await laptop.close()


async def _send_withheld(server: SynapseServer, token: str, bot: str, device: str,
                         content: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as http, http.put(
            f"{server.base_url}/_matrix/client/v3/sendToDevice/m.room_key.withheld/"
            f"{os.urandom(8).hex()}", json={"messages": {bot: {device: content}}},
            headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 200


async def test_spoofed_withheld_for_a_members_session_ignored(synapse: SynapseServer,
                                                              tmp_path: Path) -> None:
    """Mallory (another account) withholds alice's session: the bot keeps waiting for the
    key; alice's own notice is answered at once."""
    import asyncio

    from liaisonbot.service.ports import ManualClock

    bot = await register_bot(synapse)
    tag = tmp_path.name[-6:].replace("_", "")
    alice_user = await synapse.register("wa-" + tag)
    mallory = await synapse.register("wm-" + tag)
    alice = await PartnerClient.login(synapse, alice_user, tmp_path / "alice")
    room = await alice.create_room("icc", encrypted=True, invite=[bot.user_id])
    settings = settings_for(synapse, bot, tmp_path, offices=[office("icc", room,
                                                                    [alice_user.user_id])])
    expected = msg.WITHHELD["m.unverified"].split("{sender}")[1][:40]
    try:
        async with running_bot(settings, bot, clock=ManualClock()) as running:
            await wait_joined(running.platform, room)
            bot_device = str(running.platform.client.device_id)
            await alice.prepare_encrypted_send(room)
            c = alice.client
            c.blacklist_device(c.device_store[bot.user_id][bot_device])
            await alice.send_text(room, "!liaison list CASE-1")
            session = c.olm.outbound_group_sessions[room]
            content = {"algorithm": "m.megolm.v1.aes-sha2", "room_id": room,
                       "session_id": session.id, "code": "m.unverified",
                       "sender_key": c.olm.account.identity_keys["curve25519"],
                       "reason": "spoofed"}
            sync = running.platform.sync
            await _send_withheld(synapse, mallory.access_token, bot.user_id, bot_device,
                                 content)
            for _ in range(200):
                if sync.state.withheld >= 1 and sync.state.pending_undecrypted == 1:
                    break
                await asyncio.sleep(0.1)
            assert sync.state.withheld == 1 and sync.state.pending_undecrypted == 1
            await asyncio.sleep(3)  # a sync or two later: still waiting, nothing said
            assert sync.state.pending_undecrypted == 1
            await alice.sync_once()
            assert not any(expected in b for b in _bot_said(alice, room, bot.user_id))
            await _send_withheld(synapse, alice_user.access_token, bot.user_id, bot_device,
                                 {**content, "reason": "alice's own"})
            await alice.wait_for_message(
                room, lambda e: e.sender == bot.user_id and expected in e.body, 20)
    finally:
        await alice.close()


async def test_member_identity_change_held_told_once_until_matrix_trust(
        synapse: SynapseServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The findings: the homeserver answers a new master key and a new device for a member →
    the new identity is held: its devices get no room keys, the room is told once,
    /healthz names the member, commands are not acted on; ``matrix trust`` accepts it."""
    import asyncio

    from nio import MegolmEvent

    from liaisonbot.cli import _trust

    bot = await register_bot(synapse)
    tag = tmp_path.name[-6:].replace("_", "")
    alice_user = await synapse.register("ia-" + tag)
    phone = await PartnerClient.login(synapse, alice_user, tmp_path / "phone")
    await _cross_sign(phone, tmp_path / "alice-keys")
    room = await phone.create_room("icc", encrypted=True, invite=[bot.user_id])
    settings = settings_for(synapse, bot, tmp_path, exclude_insecure_devices=True,
                            offices=[office("icc", room, [alice_user.user_id])])
    changed = msg.IDENTITY_CHANGED.split("{sender}")[1][:40]
    new = None
    try:
        async with running_bot(settings, bot) as running:
            await wait_joined(running.platform, room)
            await phone.send_text(room, "!liaison help")
            await phone.wait_for_message(
                room, lambda e: e.sender == bot.user_id and "liaisonbot commands" in e.body, 30)
            # a new identity (not alice's doing, say) with a new device signed by it
            new = await PartnerClient.login(synapse, alice_user, tmp_path / "new")
            state = await CrossSigning(new.client, data_dir=str(tmp_path / "new-keys"),
                                       pickle_key=PICKLE, password=alice_user.password
                                       ).ensure(reset=True)
            assert state.cross_signed, state
            await new.join(room)
            await new.send_text(room, "!liaison help list")  # a command: not acted on
            told = await phone.wait_for_message(
                room, lambda e: e.sender == bot.user_id and changed in e.body, 30)
            assert f"matrix trust {alice_user.user_id}" in told.body
            unsigned = msg.UNTRUSTED_DEVICE.split("{sender}")[1][:40]
            # the bot's messages are not for the new identity's device
            await new._sync_until(lambda: any(
                isinstance(e, MegolmEvent) and e.sender == bot.user_id
                for e in new.undecryptable_events(room)), 30, "the bot's unreadable notice")
            health = await running.platform.health()
            assert health["identity_changed"] == [alice_user.user_id]
            await new.send_text(room, "!liaison help open")
            await asyncio.sleep(3)
            await phone.sync_once()
            said = [b for b in _bot_said(phone, room, bot.user_id) if changed in b]
            assert len(said) <= 1  # told once (the first was taken by wait_for_message)
            assert not any("list" in b and "commands" in b
                           for b in _bot_said(phone, room, bot.user_id))

            # the operator accepts it while the bot runs
            assert await _trust(settings, alice_user.user_id) == 0
            out = capsys.readouterr().out
            assert f"accepted the new cross-signing identity of {alice_user.user_id}" in out
            assert state.master_key in out if getattr(state, "master_key", None) else True
            for _ in range(300):
                if not (await running.platform.health())["identity_changed"]:
                    break
                await asyncio.sleep(0.1)
            assert (await running.platform.health())["identity_changed"] == []
            await new.send_text(room, "!liaison help withdraw")
            reply = await new.wait_for_message(
                room, lambda e: e.sender == bot.user_id and "withdraw" in e.body, 30)
            assert reply.decrypted and unsigned not in reply.body
            assert await _trust(settings, alice_user.user_id) == 1  # nothing held any more
    finally:
        await phone.close()
        if new is not None:
            await new.close()
