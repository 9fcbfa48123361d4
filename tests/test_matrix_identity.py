"""The bot's cross-signing identity on a real Synapse: uploaded and used on first start,
restored from secret storage with the recovery key after ``data_dir`` is lost, never replaced
silently, replaced on purpose with ``reset-identity``; room keys only for cross-signed devices;
withheld keys answered once, with the reason."""

# ruff: noqa: F811
from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import signedjson.key
import signedjson.sign

from liaisonbot.chat.matrix import secret_storage as ss
from liaisonbot.chat.matrix.crosssigning import CrossSigning, identity_report
from liaisonbot.chat.matrix.keys import key_of
from liaisonbot.chat.matrix.session import Credentials
from liaisonbot.online import check_matrix
from liaisonbot.service import messages as msg
from liaisonbot.service.ports import ManualClock
from support.synapse import PartnerClient, RegisteredUser, SynapseServer, synapse  # noqa: F401
from test_matrix_helpers import office, register_bot, running_bot, settings_for, wait_joined

pytestmark = [pytest.mark.asyncio, pytest.mark.synapse]
PICKLE = "identity-test-pickle-0123456789abcdef"


async def _until(check: Callable[[], Awaitable[bool]], timeout: float = 20, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(what or "condition not reached")
        await asyncio.sleep(0.1)


async def _query(server: SynapseServer, token: str, user: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.post(
            f"{server.base_url}/_matrix/client/v3/keys/query",
            json={"device_keys": {user: []}},
            headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 200
        return dict(await response.json())


async def _account_data(server: SynapseServer, user: RegisteredUser, kind: str) -> Any:
    async with aiohttp.ClientSession() as http, http.get(
            f"{server.base_url}/_matrix/client/v3/user/{user.user_id}/account_data/{kind}",
            headers={"Authorization": f"Bearer {user.access_token}"}) as response:
        return await response.json() if response.status == 200 else None


def _verify(obj: dict[str, Any], user: str, public: str) -> None:
    """Synapse's own signedjson, independent of the bot's code."""
    key = signedjson.key.decode_verify_key_bytes(f"ed25519:{public}", ss.b64decode(public))
    signedjson.sign.verify_signed_json(obj, user, key)


def _assert_cross_signed(answer: dict[str, Any], user: str, device_id: str) -> str:
    """master → self-signing → device, checked with signedjson; returns the master key."""
    master = answer["master_keys"][user]
    ssk = answer["self_signing_keys"][user]
    master_pub, ssk_pub = key_of(master, user, "master"), key_of(ssk, user, "self_signing")
    assert master_pub and ssk_pub
    _verify(ssk, user, master_pub)
    _verify(answer["device_keys"][user][device_id], user, ssk_pub)
    return master_pub


async def _cross_sign(partner: PartnerClient, keys_dir: Path) -> None:
    """Give a nio partner device cross-signing (the bot's own code, as a client would)."""
    state = await CrossSigning(partner.client, data_dir=str(keys_dir),
                               pickle_key=PICKLE).ensure()
    assert state.cross_signed, state


async def _partner(server: SynapseServer, user: RegisteredUser, path: Path) -> PartnerClient:
    return await PartnerClient.login(server, user, path, encrypted=True)


async def test_identity_uploaded_then_restored_with_the_recovery_key(
        synapse: SynapseServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bot = await register_bot(synapse)
    alice_user = await synapse.register("alice-" + tmp_path.name[-6:].replace("_", ""))
    alice = await _partner(synapse, alice_user, tmp_path / "alice")
    room = await alice.create_room("icc", encrypted=True, invite=[bot.user_id])
    settings = settings_for(synapse, bot, tmp_path, offices=[office("icc", room,
                                                                    [alice.user_id])],
                            exclude_insecure_devices=True)
    recovery = ss.encode_recovery_key(os.urandom(32))
    try:
        creds = Credentials(pickle_key=PICKLE, access_token=bot.access_token,
                            device_id=bot.device_id, recovery_key=recovery)
        async with running_bot(settings, bot, creds=creds) as running:
            await wait_joined(running.platform, room)
            health = await running.platform.health()
            assert health["ok"] and health["cross_signing"]["cross_signed"], health
            first = _assert_cross_signed(await _query(synapse, alice_user.access_token,
                                                      bot.user_id), bot.user_id, bot.device_id)
            assert health["cross_signing"]["master_key"] == first
            assert health["cross_signing"]["in_secret_storage"] is True
        # What Element reads: the default key, its description, the encrypted keys.
        key_id = (await _account_data(synapse, bot, "m.secret_storage.default_key"))["key"]
        description = await _account_data(synapse, bot, f"m.secret_storage.key.{key_id}")
        assert ss.key_matches(ss.decode_recovery_key(recovery), description)
        stored = await _account_data(synapse, bot, "m.cross_signing.master")
        seed = ss.decrypt(ss.decode_recovery_key(recovery), "m.cross_signing.master",
                          stored["encrypted"][key_id])
        assert signedjson.key.decode_signing_key_base64(
            "ed25519", "m", seed).verify_key.encode() == ss.b64decode(first)

        # check-config --online reports it
        monkeypatch.setenv("LIAISONBOT_MATRIX_ACCESS_TOKEN", bot.access_token)
        notes: list[str] = []
        assert await check_matrix(settings, notes) == []
        assert notes == [f"matrix: device {bot.device_id} is cross-signed; master key {first}"]
        monkeypatch.delenv("LIAISONBOT_MATRIX_ACCESS_TOKEN")

        # data_dir lost: a new device (password login), the same identity from secret storage
        shutil.rmtree(tmp_path / "matrix")
        (tmp_path / "bot.db").unlink()
        creds = Credentials(pickle_key=PICKLE, password=bot.password, recovery_key=recovery)
        async with running_bot(settings, bot, creds=creds) as running:
            await wait_joined(running.platform, room)
            new_device = running.platform.client.device_id
            assert new_device != bot.device_id
            health = await running.platform.health()
            assert health["ok"] and health["cross_signing"]["cross_signed"], health
            answer = await _query(synapse, alice_user.access_token, bot.user_id)
            assert _assert_cross_signed(answer, bot.user_id, new_device) == first
            assert health["cross_signing"]["master_key"] == first
            # and alice (cross-signed) gets answers in the encrypted room
            await _cross_sign(alice, tmp_path / "alice-keys")
            await alice.send_text(room, "!liaison help")
            reply = await alice.wait_for_message(
                room, lambda e: e.sender == bot.user_id and "liaisonbot commands" in e.body, 30)
            assert reply.decrypted
            assert reply.source["content"].get("msgtype") == "m.notice"
    finally:
        await alice.close()


async def test_foreign_identity_is_kept_and_reset_identity_replaces_it(
        synapse: SynapseServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bot = await register_bot(synapse)
    settings = settings_for(synapse, bot, tmp_path, offices=[{
        "slug": "icc", "name": "ICC", "timezone": "UTC", "rooms": ["console:icc"]}])
    async with running_bot(settings, bot, creds=Credentials(
            pickle_key=PICKLE, access_token=bot.access_token, device_id=bot.device_id)
    ) as running:
        await _until(lambda: _signed(running), what="first identity")
    first = key_of((await _query(synapse, bot.access_token, bot.user_id))["master_keys"][
        bot.user_id], bot.user_id, "master")

    shutil.rmtree(tmp_path / "matrix")  # the keys are gone, no recovery key
    creds = Credentials(pickle_key=PICKLE, password=bot.password)
    async with running_bot(settings, bot, creds=creds) as running:
        async def told() -> bool:
            return bool(running.platform.identity.state.problem)
        await _until(told, what="the identity problem")
        health = await running.platform.health()
        assert not health["ok"]
        assert health["cross_signing"]["problem"] == msg.IDENTITY_FOREIGN.format(master=first)
        assert not health["cross_signing"]["cross_signed"]
        device = running.platform.client.device_id
    answer = await _query(synapse, bot.access_token, bot.user_id)
    assert key_of(answer["master_keys"][bot.user_id], bot.user_id, "master") == first
    assert identity_report(answer, bot.user_id, device).problem == \
        msg.IDENTITY_NOT_SIGNED.format(device=device)

    # the explicit way out: liaisonbot matrix reset-identity (password for UIA)
    from liaisonbot.cli import main

    config = tmp_path / "bot.toml"
    config.write_text(_toml(settings), encoding="utf-8")
    monkeypatch.setenv("LIAISONBOT_MATRIX_PICKLE_KEY", PICKLE)
    monkeypatch.delenv("LIAISONBOT_MATRIX_PASSWORD", raising=False)
    monkeypatch.delenv("LIAISONBOT_MATRIX_ACCESS_TOKEN", raising=False)
    assert await asyncio.to_thread(main, ["matrix", "reset-identity", "--config",
                                          str(config)]) == 1  # the saved session, no password
    monkeypatch.setenv("LIAISONBOT_MATRIX_PASSWORD", bot.password)
    assert await asyncio.to_thread(main, ["matrix", "reset-identity", "--config",
                                          str(config)]) == 0
    answer = await _query(synapse, bot.access_token, bot.user_id)
    second = _assert_cross_signed(answer, bot.user_id, device)
    assert second != first
    async with running_bot(settings, bot, creds=creds) as running:
        await _until(lambda: _signed(running), what="identity after reset")
        assert running.platform.identity.state.master_key == second


async def _signed(running: Any) -> bool:
    return bool((await running.platform.health())["cross_signing"]["cross_signed"])


def _toml(settings: Any) -> str:
    m = settings.matrix
    return (f'[database]\nurl = "{settings.database_url}"\n'
            f'[matrix]\nenabled = true\nhomeserver = "{m.homeserver}"\n'
            f'user_id = "{m.user_id}"\ndata_dir = "{m.data_dir}"\n'
            '[[offices]]\nslug = "icc"\nname = "ICC"\ntimezone = "UTC"\n'
            'rooms = ["console:icc"]\n')


async def test_only_cross_signed_devices_get_the_bots_room_keys(
        synapse: SynapseServer, tmp_path: Path) -> None:
    from nio import MegolmEvent, UnknownToDeviceEvent

    bot = await register_bot(synapse)
    alice_user = await synapse.register("ali-" + tmp_path.name[-6:].replace("_", ""))
    phone = await _partner(synapse, alice_user, tmp_path / "phone")
    await _cross_sign(phone, tmp_path / "alice-keys")
    room = await phone.create_room("icc", encrypted=True, invite=[bot.user_id])
    laptop = await _partner(synapse, alice_user, tmp_path / "laptop")  # not cross-signed
    withheld: list[dict[str, Any]] = []
    laptop.client.add_to_device_callback(
        lambda ev: withheld.append(ev.source["content"])
        if ev.type == "m.room_key.withheld" else None, UnknownToDeviceEvent)
    settings = settings_for(synapse, bot, tmp_path, offices=[office("icc", room,
                                                                    [alice_user.user_id])],
                            exclude_insecure_devices=True)
    try:
        async with running_bot(settings, bot) as running:
            await wait_joined(running.platform, room)
            await _until(lambda: _signed(running), what="bot identity")
            await phone.send_text(room, "!liaison help")
            reply = await phone.wait_for_message(
                room, lambda e: e.sender == bot.user_id and "liaisonbot commands" in e.body, 30)
            assert reply.decrypted
            # the laptop sees the reply but gets no key for it, and is told why
            await laptop._sync_until(lambda: any(
                isinstance(e, MegolmEvent) and e.event_id == reply.event_id
                for e in laptop.undecryptable_events(room)) and bool(withheld), 20,
                "the reply, undecryptable, and the withheld notice")
            assert withheld[0]["code"] == "m.unverified"
            assert withheld[0]["room_id"] == room
            assert withheld[0]["session_id"] == reply.source["content"].get(
                "session_id", withheld[0]["session_id"])
            assert not any(getattr(e, "event_id", None) == reply.event_id
                           for e in laptop.buffered_events(room))

            # once the laptop is cross-signed, the next reply reaches it too
            await _cross_sign(laptop, tmp_path / "alice-keys")
            await phone.send_text(room, "!liaison help open")
            second = await laptop.wait_for_message(
                room, lambda e: e.sender == bot.user_id and "open" in e.body, 30)
            assert second.decrypted
    finally:
        await phone.close()
        await laptop.close()


async def test_withheld_key_answered_at_once_with_the_reason_and_only_once(
        synapse: SynapseServer, tmp_path: Path) -> None:
    bot = await register_bot(synapse)
    alice_user = await synapse.register("wh-" + tmp_path.name[-6:].replace("_", ""))
    alice = await _partner(synapse, alice_user, tmp_path / "alice")
    room = await alice.create_room("icc", encrypted=True, invite=[bot.user_id])
    settings = settings_for(synapse, bot, tmp_path, offices=[office("icc", room,
                                                                    [alice_user.user_id])])
    clock = ManualClock()  # never moves: the 60 s generic notice cannot be what answers
    try:
        async with running_bot(settings, bot, clock=clock) as running:
            await wait_joined(running.platform, room)
            bot_device = running.platform.client.device_id
            await alice.prepare_encrypted_send(room)
            c = alice.client
            device = c.device_store[bot.user_id][bot_device]
            c.blacklist_device(device)  # alice's client keeps its key from the bot

            async def send_withheld(text: str) -> None:
                await alice.send_text(room, text)
                session = c.olm.outbound_group_sessions[room]
                content = {"algorithm": "m.megolm.v1.aes-sha2", "room_id": room,
                           "session_id": session.id, "code": "m.unverified",
                           "sender_key": c.olm.account.identity_keys["curve25519"],
                           "reason": "The sender disabled sending keys to unverified devices."}
                async with aiohttp.ClientSession() as http, http.put(
                        f"{synapse.base_url}/_matrix/client/v3/sendToDevice/"
                        f"m.room_key.withheld/{os.urandom(8).hex()}",
                        json={"messages": {bot.user_id: {bot_device: content}}},
                        headers={"Authorization": f"Bearer {c.access_token}"}) as response:
                    assert response.status == 200

            await send_withheld("!liaison list CASE-1")
            expected = msg.WITHHELD["m.unverified"].split("{sender}")[1][:40]
            notice = await alice.wait_for_message(
                room, lambda e: e.sender == bot.user_id and expected in e.body, 20)
            assert alice_user.user_id.split(":")[0].lstrip("@") in notice.body
            assert notice.decrypted  # the bot's own keys still reach alice

            await send_withheld("!liaison list CASE-2")  # same session: no second sentence
            sync = running.platform.sync

            async def both_seen() -> bool:
                return sync.state.withheld >= 2 and sync.state.pending_undecrypted == 0
            await _until(both_seen, what="the second withheld key handled")
            await _until(lambda: _outbox_empty(running), what="outbox drained")
            await alice.sync_once()
            bot_said = [getattr(e, "body", "") for e in alice.buffered_events(room)
                        if getattr(e, "sender", "") == bot.user_id]
            assert not any(expected in b for b in bot_said), bot_said
            assert not any(msg.UNDECRYPTABLE in b for b in bot_said), bot_said
            metrics = running.core.telemetry.render().decode()
            assert 'liaisonbot_matrix_withheld_total{code="m.unverified"} 2.0' in metrics
            assert (await running.platform.health())["withheld"] == 2
    finally:
        await alice.close()


async def _outbox_empty(running: Any) -> bool:
    async with running.core.uow() as uow:
        return int(await uow.outbox.backlog()) == 0


async def test_turning_exclusion_off_shares_with_unsigned_devices_again(
        synapse: SynapseServer, tmp_path: Path) -> None:
    from nio import MegolmEvent

    bot = await register_bot(synapse)
    alice_user = await synapse.register("off-" + tmp_path.name[-6:].replace("_", ""))
    alice = await _partner(synapse, alice_user, tmp_path / "alice")  # never cross-signed
    room = await alice.create_room("icc", encrypted=True, invite=[bot.user_id])
    offices = [office("icc", room, [alice_user.user_id])]
    try:
        settings = settings_for(synapse, bot, tmp_path, offices=offices,
                                exclude_insecure_devices=True)
        async with running_bot(settings, bot) as running:
            await wait_joined(running.platform, room)
            await alice.send_text(room, "!liaison help")
            await alice._sync_until(lambda: any(
                isinstance(e, MegolmEvent) and e.sender == bot.user_id
                for e in alice.undecryptable_events(room)), 20, "the bot's unreadable reply")
        settings = settings_for(synapse, bot, tmp_path, offices=offices,
                                exclude_insecure_devices=False)
        async with running_bot(settings, bot) as running:
            await alice.send_text(room, "!liaison help list")
            reply = await alice.wait_for_message(
                room, lambda e: e.sender == bot.user_id and "list" in e.body, 30)
            assert reply.decrypted
    finally:
        await alice.close()


async def test_wrong_recovery_key_is_reported_and_nothing_replaced(
        synapse: SynapseServer, tmp_path: Path) -> None:
    bot = await register_bot(synapse)
    settings = settings_for(synapse, bot, tmp_path, offices=[{
        "slug": "icc", "name": "ICC", "timezone": "UTC", "rooms": ["console:icc"]}])
    right = ss.encode_recovery_key(os.urandom(32))
    async with running_bot(settings, bot, creds=Credentials(
            pickle_key=PICKLE, password=bot.password, recovery_key=right)) as running:
        await _until(lambda: _signed(running), what="first identity")
        first = running.platform.identity.state.master_key
    shutil.rmtree(tmp_path / "matrix")
    wrong = ss.encode_recovery_key(os.urandom(32))
    async with running_bot(settings, bot, creds=Credentials(
            pickle_key=PICKLE, password=bot.password, recovery_key=wrong)) as running:
        async def told() -> bool:
            return bool(running.platform.identity.state.problem)
        await _until(told, what="the recovery key problem")
        health = await running.platform.health()
        assert not health["ok"] and not health["cross_signing"]["cross_signed"]
        assert health["cross_signing"]["problem"] == msg.IDENTITY_WRONG_RECOVERY_KEY.format(
            why="it is not the account's default key")
    answer = await _query(synapse, bot.access_token, bot.user_id)
    assert key_of(answer["master_keys"][bot.user_id], bot.user_id, "master") == first
