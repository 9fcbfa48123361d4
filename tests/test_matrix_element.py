"""liaisonbot's Matrix platform as Element's crypto engine sees it (issue 10).

The members are matrix-js-sdk 43 clients with the Rust crypto stack (tests/support/element),
cross-signed as Element does by default, in both device-isolation modes: "all devices" (classic:
a message from an unsigned device gets a red UNSIGNED_DEVICE shield) and "only signed devices"
(Element's "exclude insecure devices": keys are withheld from unsigned devices and their
messages are refused with UNSIGNED_SENDER_DEVICE). The bot runs against the session's real
Synapse, with its credentials taken from the environment as in production.
"""

# ruff: noqa: F811  (fixture imported by name)
from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import aiohttp
import pytest

from liaisonbot.bootstrap import build_core
from liaisonbot.chat.matrix.platform import MatrixPlatform
from liaisonbot.chat.matrix.session import Credentials
from liaisonbot.config import Settings, parse
from liaisonbot.service import messages as msg
from liaisonbot.service.outbox import RetryPolicy
from support.element import ElementClient, ElementEvent, require_element
from support.synapse import RegisteredUser, SynapseServer, synapse  # noqa: F401
from test_matrix_helpers import RunningBot, office, register_bot, wait_joined

pytestmark = [pytest.mark.asyncio, pytest.mark.synapse]

Mode = Literal["all", "only_signed"]
PICKLE_KEY = "element-test-pickle-key-0123456789abcdef"
#: The key never reached this device: not sent, or withheld.
NO_KEY = {"MEGOLM_UNKNOWN_INBOUND_SESSION_ID", "MEGOLM_KEY_WITHHELD",
          "MEGOLM_KEY_WITHHELD_FOR_UNVERIFIED_DEVICE"}


@pytest.fixture(autouse=True)
def _element() -> None:
    require_element()


class _ShiftClock:
    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


def _env(monkeypatch: pytest.MonkeyPatch, bot: RegisteredUser, *, token: bool = True,
         recovery_key: str | None = None) -> None:
    """The bot's secrets, as an operator sets them."""
    for name in ("ACCESS_TOKEN", "DEVICE_ID", "PASSWORD", "RECOVERY_KEY"):
        monkeypatch.delenv(f"LIAISONBOT_MATRIX_{name}", raising=False)
    monkeypatch.setenv("LIAISONBOT_MATRIX_PICKLE_KEY", PICKLE_KEY)
    monkeypatch.setenv("LIAISONBOT_MATRIX_PASSWORD", bot.password)
    if token:
        monkeypatch.setenv("LIAISONBOT_MATRIX_ACCESS_TOKEN", bot.access_token)
        monkeypatch.setenv("LIAISONBOT_MATRIX_DEVICE_ID", bot.device_id)
    if recovery_key is not None:
        monkeypatch.setenv("LIAISONBOT_MATRIX_RECOVERY_KEY", recovery_key)


def _settings(server: SynapseServer, bot: RegisteredUser, tmp: Path,
              offices: list[dict[str, Any]]) -> Settings:
    """The bot's config, with the product's default spelled out: room keys only for devices
    their owner has cross-signed."""
    return parse({
        "database": {"url": f"sqlite+aiosqlite:///{tmp / 'bot.db'}"},
        "matrix": {"enabled": True, "homeserver": server.base_url, "user_id": bot.user_id,
                   "data_dir": str(tmp / "matrix"), "exclude_insecure_devices": True},
        "offices": offices,
    }, "test")


@contextlib.asynccontextmanager
async def _running(settings: Settings, *, clock: Any = None,
                   grace_seconds: float = 60.0) -> AsyncIterator[RunningBot]:
    """Core + Matrix platform (credentials from the environment) + outbox worker."""
    core = await build_core(settings, clock=clock,
                            retry=RetryPolicy(base_seconds=0.2, cap_seconds=2))
    platform = MatrixPlatform(settings, core, Credentials.from_env(), poll_ms=1000,
                              grace_seconds=grace_seconds)
    core.gateways["matrix"] = platform.gateway
    stop = asyncio.Event()
    worker = asyncio.create_task(core.outbox.run(stop, idle_seconds=0.2))
    try:
        await platform.start()
        yield RunningBot(core, platform, stop, worker)
    finally:
        stop.set()
        await platform.stop()
        await asyncio.wait_for(worker, timeout=10)
        await core.close()


@contextlib.asynccontextmanager
async def _member(server: SynapseServer, user: RegisteredUser, tmp: Path, *,
                  cross_signed: bool = True, mode: Mode | None = None,
                  device_name: str = "Element") -> AsyncIterator[ElementClient]:
    """A member's Element: a new device, cross-signed at login as Element does by default."""
    async with ElementClient.login(server.base_url, user.user_id, password=user.password,
                                   device_name=device_name, log_dir=tmp / "element") as client:
        if cross_signed:
            identity = await client.bootstrap_cross_signing()
            assert identity["ready"] and identity["device_signed"], identity
        if mode is not None:
            await client.set_isolation_mode(mode)
        yield client


def _from(sender: str, text: str | None = None) -> Callable[[ElementEvent], bool]:
    """A message from ``sender``: undecryptable, or decrypted and containing ``text``."""
    def check(e: ElementEvent) -> bool:
        if e.sender != sender or e.type not in ("m.room.message", "m.room.encrypted"):
            return False
        return e.decryption_failure is not None or text is None or text in e.body
    return check


async def _readable_without_warning(client: ElementClient, room: str, sender: str, text: str,
                                    timeout: float = 30) -> ElementEvent:
    """The bot's message with ``text``: decrypted, encrypted, and no shield on it."""
    ev = await client.wait_for(room, _from(sender, text), timeout)
    assert ev.decryption_failure is None, f"cannot decrypt the bot's message: {ev}"
    assert ev.encrypted and ev.msgtype == "m.notice", ev
    info = await client.encryption_info(ev.event_id)
    assert info is not None
    assert info.shield_reason != "UNSIGNED_DEVICE", info
    assert not info.warning, info
    return ev


async def _sees_signed(client: ElementClient, user_id: str, device_id: str,
                       timeout: float = 30) -> dict[str, Any]:
    """Until ``client`` sees ``device_id`` signed by its owner's cross-signing identity."""
    async def poll() -> dict[str, Any]:
        while True:
            status = await client.device_status(user_id, device_id)
            if status is not None and status["signed_by_owner"]:
                return status
            await asyncio.sleep(0.2)
    try:
        return await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        status = await client.device_status(user_id, device_id)
        raise AssertionError(f"{client.user_id} does not see {user_id}'s device {device_id} "
                             f"cross-signed: {status}") from None


async def _master_key(server: SynapseServer, token: str, user_id: str) -> str | None:
    """The user's master cross-signing key as the homeserver publishes it (/keys/query)."""
    async with aiohttp.ClientSession() as http, http.post(
            server.base_url + "/_matrix/client/v3/keys/query",
            json={"device_keys": {user_id: []}},
            headers={"Authorization": f"Bearer {token}"}) as resp:
        body = await resp.json()
    master = (body.get("master_keys") or {}).get(user_id)
    return None if master is None else next(iter(master["keys"].values()))


async def _offices(server: SynapseServer, tmp: Path) -> tuple[RegisteredUser, RegisteredUser,
                                                               RegisteredUser]:
    suffix = tmp.name[-6:].replace("_", "").lower()
    bot = await register_bot(server)
    alice = await server.register(f"alice-{suffix}")
    bob = await server.register(f"bob-{suffix}")
    return bot, alice, bob


async def _two_more_syncs(running: RunningBot, timeout: float = 20) -> None:
    async def syncs() -> None:
        for _ in range(3):
            before = running.platform.sync.state.last_sync
            while running.platform.sync.state.last_sync == before:
                await asyncio.sleep(0.05)
    await asyncio.wait_for(syncs(), timeout)


# ------------------------------------------------------------------------ the harness itself

async def test_harness_sees_unsigned_devices_as_element_does(synapse: SynapseServer,
                                                             tmp_path: Path) -> None:
    """No bot: proves the engine is really judging cross-signing. A cross-signed Element
    shows a red UNSIGNED_DEVICE shield on an unsigned sender's message in "all devices" mode,
    refuses it with UNSIGNED_SENDER_DEVICE in "only signed" mode and withholds its own keys
    from that device (m.room_key.withheld, m.unverified); once the sender cross-signs, no
    shield."""
    _bot, alice_user, bob_user = await _offices(synapse, tmp_path)
    async with _member(synapse, alice_user, tmp_path, mode="all") as alice, \
            _member(synapse, bob_user, tmp_path, cross_signed=False) as bob:
        room = await alice.create_encrypted_room("harness", invite=[bob.user_id])
        await bob.join(room)

        first = await bob.send(room, "from an unsigned device")
        seen = await alice.wait_for(room, lambda e: e.event_id == first)
        assert seen.decrypted and seen.body == "from an unsigned device"
        info = await alice.encryption_info(first)
        assert info is not None and (info.shield_colour, info.shield_reason) == (
            "RED", "UNSIGNED_DEVICE")
        await alice.wait_until(lambda: bool(alice.room_keys_from(bob.user_id, room)),
                               what="bob's room key over Olm")

        await alice.set_isolation_mode("only_signed")
        refused = await bob.send(room, "refused")
        seen = await alice.wait_for(room, lambda e: e.event_id == refused)
        assert seen.decryption_failure == "UNSIGNED_SENDER_DEVICE" and seen.content == {}

        withheld = await alice.send(room, "not for unsigned devices")
        seen = await bob.wait_for(room, lambda e: e.event_id == withheld)
        assert seen.decryption_failure in NO_KEY, seen
        await bob.wait_until(lambda: bool(bob.to_device("m.room_key.withheld", alice.user_id)),
                             what="withheld notice")
        assert {t.code for t in bob.to_device("m.room_key.withheld", alice.user_id)} == {
            "m.unverified"}
        assert not bob.room_keys_from(alice.user_id, room)

        await bob.bootstrap_cross_signing()
        await _sees_signed(alice, bob.user_id, bob.device_id)
        signed = await bob.send(room, "now cross-signed")
        seen = await alice.wait_for(room, lambda e: e.event_id == signed)
        assert seen.decrypted and seen.body == "now cross-signed"
        info = await alice.encryption_info(signed)
        assert info is not None and not info.warning, info


# ---------------------------------------------------------------------------- issue 10 tests

@pytest.mark.parametrize("mode", ["all", "only_signed"])
async def test_command_answered_and_readable_without_warning(
        synapse: SynapseServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        mode: Mode) -> None:
    bot, alice_user, bob_user = await _offices(synapse, tmp_path)
    _env(monkeypatch, bot)
    async with _member(synapse, alice_user, tmp_path, mode=mode) as alice, \
            _member(synapse, bob_user, tmp_path, mode=mode) as bob:
        room_a = await alice.create_encrypted_room("icc", invite=[bot.user_id])
        room_b = await bob.create_encrypted_room("ba", invite=[bot.user_id])
        settings = _settings(synapse, bot, tmp_path, [
            office("icc", room_a, [alice.user_id]), office("ba", room_b, [bob.user_id])])
        async with _running(settings) as running:
            await wait_joined(running.platform, room_a)
            await wait_joined(running.platform, room_b)
            device = str(running.platform.client.device_id)
            status = await _sees_signed(alice, bot.user_id, device)
            assert not status["cross_signing_verified"]  # signed by its owner, not by alice
            await _sees_signed(bob, bot.user_id, device)

            await alice.send(room_a, "!liaison open OP-1 to:ba Bank records of X")
            reply = await _readable_without_warning(alice, room_a, bot.user_id, "R-1")
            assert reply.sender == bot.user_id
            card = await _readable_without_warning(bob, room_b, bot.user_id, "R-1")
            assert "Bank records of X" in card.body

            # and the other way: bob's command in his room is read and answered
            await bob.send(room_b, "!liaison ack R-1", thread_root=card.event_id)
            await _readable_without_warning(bob, room_b, bot.user_id, "acknowledged")
            async with running.core.uow() as uow:
                request = await uow.requests.get(1)
            assert request is not None
            assert (request.case, request.requesting, request.requested, request.summary) == (
                "OP-1", "icc", "ba", "Bank records of X")
            assert request.status.value == "acknowledged"
            for client in (alice, bob):
                assert not [e for e in client.events() if e.sender == bot.user_id
                            and e.decryption_failure], "every bot message decrypts"
            # /healthz shows the identity Element sees: the master key an office compares
            health = await running.platform.health()
            assert health["ok"], health
            assert health["cross_signing"]["cross_signed"] is True, health
            assert health["cross_signing"]["master_key"] == await _master_key(
                synapse, alice.access_token, bot.user_id)


async def test_lost_data_dir_new_device_same_identity(synapse: SynapseServer, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The bot logs in with its password and keeps its identity in secret storage (recovery
    key in Element's format). Its data_dir is lost: it logs in again as a new device, which the
    same master key signs, and Element in "only signed" mode reads it with no warning and no
    identity change to approve. Lost without the recovery key, the identity is kept and health
    says why."""
    bot, alice_user, bob_user = await _offices(synapse, tmp_path)
    async with _member(synapse, alice_user, tmp_path, mode="only_signed") as alice:
        recovery_key = await alice.new_recovery_key()  # any Element-made key will do
        _env(monkeypatch, bot, token=False, recovery_key=recovery_key)
        room_a = await alice.create_encrypted_room("icc", invite=[bot.user_id])
        room_b = await alice.create_encrypted_room("ba", invite=[bot.user_id])
        settings = _settings(synapse, bot, tmp_path, [
            office("icc", room_a, [alice.user_id]), office("ba", room_b, [bob_user.user_id])])

        async with _running(settings) as running:
            await wait_joined(running.platform, room_a)
            first_device = str(running.platform.client.device_id)
            await _sees_signed(alice, bot.user_id, first_device)
            await alice.send(room_a, "!liaison list FIRST-1")
            await _readable_without_warning(alice, room_a, bot.user_id, "FIRST-1")
        master = await _master_key(synapse, alice.access_token, bot.user_id)
        assert master is not None

        shutil.rmtree(settings.matrix.data_dir)

        async with _running(settings) as running:
            await wait_joined(running.platform, room_a)
            second_device = str(running.platform.client.device_id)
            assert second_device != first_device, "a lost data_dir means a new device"
            await _sees_signed(alice, bot.user_id, second_device)
            assert await _master_key(synapse, alice.access_token, bot.user_id) == master
            status = await alice.user_status(bot.user_id)
            assert status["known"] and not status["needs_user_approval"], status
            await alice.send(room_a, "!liaison list AFTER-2")
            reply = await _readable_without_warning(alice, room_a, bot.user_id, "AFTER-2")
            assert reply.sender == bot.user_id
            health = await running.platform.health()
            assert health["ok"], health
            assert health["device"] == second_device
            assert health["cross_signing"]["cross_signed"] is True, health
            assert health["cross_signing"]["master_key"] == master, health
            assert health["cross_signing"].get("in_secret_storage") is True, health

        # Lost again, now without the recovery key: nothing is replaced, health says why.
        shutil.rmtree(settings.matrix.data_dir)
        monkeypatch.delenv("LIAISONBOT_MATRIX_RECOVERY_KEY")
        async with _running(settings) as running:
            await wait_joined(running.platform, room_a)
            health = await running.platform.health()
            assert not health["ok"] and health["cross_signing"]["cross_signed"] is False
            assert health["cross_signing"]["problem"] == msg.IDENTITY_FOREIGN.format(
                master=master), health
        assert await _master_key(synapse, alice.access_token, bot.user_id) == master


async def test_member_device_not_cross_signed_gets_no_room_key(
        synapse: SynapseServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Alice's second device is not cross-signed: the bot's replies stay unreadable there and
    no room key reaches it from the bot, while her signed device reads them. When she signs
    the device from her first one, the bot's next messages reach it."""
    bot, alice_user, bob_user = await _offices(synapse, tmp_path)
    _env(monkeypatch, bot)
    async with _member(synapse, alice_user, tmp_path, mode="all") as alice, \
            _member(synapse, alice_user, tmp_path, cross_signed=False,
                    device_name="Element (unsigned)") as alice2:
        assert alice2.device_id != alice.device_id
        room_a = await alice.create_encrypted_room("icc", invite=[bot.user_id])
        await alice2.wait_until(lambda: any(e.room_id == room_a for e in alice2.events()),
                                what="the room on the second device")
        room_b = await alice.create_encrypted_room("ba", invite=[bot.user_id])
        settings = _settings(synapse, bot, tmp_path, [
            office("icc", room_a, [alice.user_id]), office("ba", room_b, [bob_user.user_id])])
        async with _running(settings) as running:
            await wait_joined(running.platform, room_a)
            await _sees_signed(alice, bot.user_id, str(running.platform.client.device_id))
            assert not (await alice.device_status(alice.user_id, alice2.device_id) or {}).get(
                "signed_by_owner")

            await alice.send(room_a, "!liaison list KEY-1")
            reply = await _readable_without_warning(alice, room_a, bot.user_id, "KEY-1")
            await alice.wait_until(lambda: bool(alice.room_keys_from(bot.user_id, room_a)),
                                   what="the bot's room key on the signed device")
            # a second reply, so anything sent for the first has surely arrived
            await alice.send(room_a, "!liaison list KEY-2")
            second = await _readable_without_warning(alice, room_a, bot.user_id, "KEY-2")
            for ev_id in (reply.event_id, second.event_id):
                seen = await alice2.wait_for(room_a, lambda e, i=ev_id: e.event_id == i)
                assert seen.decryption_failure in NO_KEY, (seen, alice2.to_device())
            assert alice2.room_keys_from(bot.user_id) == []

            # cross-signed from her first device, it gets the bot's keys from then on
            await alice.cross_sign_device(alice2.device_id)
            await _sees_signed(alice, alice.user_id, alice2.device_id)
            for attempt in range(5):
                await alice.send(room_a, f"!liaison list SIGNED-{attempt}")
                ev = await _readable_without_warning(alice, room_a, bot.user_id,
                                                     f"SIGNED-{attempt}")
                seen = await alice2.wait_for(room_a, lambda e, i=ev.event_id: e.event_id == i)
                if seen.decryption_failure is None:
                    break
            else:
                raise AssertionError("the bot never shared its key with the now-signed device")
            assert f"SIGNED-{attempt}" in seen.body
            await alice2.wait_until(lambda: bool(alice2.room_keys_from(bot.user_id, room_a)),
                                    what="the bot's room key on the now-signed device")
            # what the bot sent while the device was unsigned stays unreadable there
            for ev_id in (reply.event_id, second.event_id):
                [early] = [e for e in alice2.events(room_a) if e.event_id == ev_id]
                assert early.decryption_failure is not None, early


def _withheld_sentence() -> re.Pattern[str]:
    template = getattr(msg, "WITHHELD", {}).get("m.unverified")
    assert template, "messages.WITHHELD['m.unverified'] is the sentence for this case"
    parts = [re.escape(p) for p in re.split(r"\{[a-z_]+\}", template)]
    return re.compile(".+".join(parts), re.DOTALL)


async def test_withheld_key_gets_the_clear_sentence_once(
        synapse: SynapseServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Alice's Element withholds its room key from every device she has not verified herself
    (m.room_key.withheld, m.unverified), the bot's included. The bot says why, once, at once
    (not the generic notice after the grace period), and reads her again once she shares."""
    bot, alice_user, bob_user = await _offices(synapse, tmp_path)
    _env(monkeypatch, bot)
    sentence = _withheld_sentence()
    clock = _ShiftClock()
    async with _member(synapse, alice_user, tmp_path, mode="all") as alice:
        room_a = await alice.create_encrypted_room("icc", invite=[bot.user_id])
        room_b = await alice.create_encrypted_room("ba", invite=[bot.user_id])
        settings = _settings(synapse, bot, tmp_path, [
            office("icc", room_a, [alice.user_id]), office("ba", room_b, [bob_user.user_id])])
        async with _running(settings, clock=clock, grace_seconds=60) as running:
            await wait_joined(running.platform, room_a)
            await _sees_signed(alice, bot.user_id, str(running.platform.client.device_id))
            await alice.set_blacklist_unverified(True)
            await alice.send(room_a, "!liaison list HELD-1")
            told = await alice.wait_for(room_a, _from(bot.user_id, "could not read"), 30)
            assert told.decryption_failure is None and sentence.fullmatch(told.body), told.body
            await alice.send(room_a, "!liaison list HELD-2")

            # Past the grace period: no generic notice follows, and nothing is said twice.
            await _two_more_syncs(running)
            clock.offset = timedelta(seconds=61)
            await _two_more_syncs(running)
            await alice.set_blacklist_unverified(False)
            await alice.send(room_a, "!liaison list SHARED-3")
            await _readable_without_warning(alice, room_a, bot.user_id, "SHARED-3")
            metrics = running.core.telemetry.render().decode()  # type: ignore[attr-defined]
            counted = re.search(r'^liaisonbot_matrix_withheld_total\{code="m.unverified"\} '
                                r'([0-9.]+)$', metrics, re.MULTILINE)
            assert counted and float(counted.group(1)) >= 1, metrics

        from_bot = [e for e in alice.events(room_a) if e.sender == bot.user_id
                    and e.type == "m.room.message"]
        bodies = [e.body for e in from_bot]
        assert sum(bool(sentence.fullmatch(b)) for b in bodies) == 1, bodies
        assert msg.UNDECRYPTABLE not in bodies, bodies
        assert not any("HELD-" in b for b in bodies), bodies


async def test_foreign_identity_kept_and_reported(synapse: SynapseServer, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Someone set up cross-signing for the bot's account in Element and the bot has no
    recovery key: the bot replaces nothing, health says why in one sentence, and its device
    stays unsigned. Alice's Element in "only signed" mode withholds her key from it: the bot
    says why once; a classic-mode member reads that (under a red UNSIGNED_DEVICE shield), while
    Alice's Element refuses it (UNSIGNED_SENDER_DEVICE) - the state the issue started from."""
    bot, alice_user, bob_user = await _offices(synapse, tmp_path)
    _env(monkeypatch, bot)
    sentence = _withheld_sentence()
    async with _member(synapse, bot, tmp_path, device_name="Element (bot account)") as other:
        foreign = (await other.own_identity())["master_key"]
    async with _member(synapse, alice_user, tmp_path, mode="only_signed") as alice, \
            _member(synapse, bob_user, tmp_path, mode="all") as bob:
        room_a = await alice.create_encrypted_room("icc", invite=[bot.user_id, bob.user_id])
        await bob.join(room_a)
        room_b = await bob.create_encrypted_room("ba", invite=[bot.user_id])
        settings = _settings(synapse, bot, tmp_path, [
            office("icc", room_a, [alice.user_id]), office("ba", room_b, [bob.user_id])])
        async with _running(settings) as running:
            await wait_joined(running.platform, room_a)
            health = await running.platform.health()
            identity = health["cross_signing"]
            assert not health["ok"] and identity["cross_signed"] is False, health
            assert identity["problem"] == msg.IDENTITY_FOREIGN.format(master=foreign), health
            assert await _master_key(synapse, alice.access_token, bot.user_id) == foreign
            status = await alice.device_status(bot.user_id, str(running.platform.client.device_id))
            assert status is not None and not status["signed_by_owner"], status

            await alice.send(room_a, "!liaison list HELD-1")
            told = await bob.wait_for(room_a, _from(bot.user_id, "could not read"), 30)
            assert told.decryption_failure is None and sentence.fullmatch(told.body), told.body
            info = await bob.encryption_info(told.event_id)
            assert info is not None and info.shield_reason == "UNSIGNED_DEVICE", info
            refused = await alice.wait_for(room_a, lambda e: e.event_id == told.event_id)
            assert refused.decryption_failure == "UNSIGNED_SENDER_DEVICE", refused
            await alice.send(room_a, "!liaison list HELD-2")
            await _two_more_syncs(running)
            await _two_more_syncs(running)
        bodies = [e.body for e in bob.events(room_a) if e.sender == bot.user_id]
        assert sum(bool(sentence.fullmatch(b)) for b in bodies) == 1, bodies
        assert not any("HELD-" in b for b in bodies), bodies
