
"""Self-tests for the real-Synapse harness (tests/support/synapse.py)."""

# ruff: noqa: F811  (the `synapse` fixture is imported and then used by name)
from __future__ import annotations

import aiohttp
import pytest

from .synapse import (  # noqa: F401  (the `synapse` fixture is used by name)
    PartnerClient,
    SynapseServer,
    own_echo_latency,
    require_synapse,
    synapse,
    thread_root_of,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.synapse]


async def _get_json(server: SynapseServer, path: str, token: str) -> dict:
    async with aiohttp.ClientSession() as http:
        async with http.get(
            server.base_url + path, headers={"Authorization": f"Bearer {token}"}
        ) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()


async def test_server_is_up(synapse: SynapseServer) -> None:
    assert synapse.running
    assert synapse.base_url.startswith("http://127.0.0.1:")
    assert synapse.last_start_seconds is not None
    print(f"synapse started in {synapse.last_start_seconds:.2f}s")  # visible with -s


async def test_register_and_override_ratelimit(synapse: SynapseServer) -> None:
    admin = await synapse.register("harness-admin", admin=True)
    user = await synapse.register("harness-user")
    assert admin.user_id == "@harness-admin:localhost"
    assert user.user_id == synapse.user_id("harness-user")
    assert user.access_token and user.device_id and user.password
    who = await _get_json(synapse, "/_matrix/client/v3/account/whoami", user.access_token)
    assert who["user_id"] == user.user_id
    await synapse.override_ratelimit(user.user_id, admin.access_token)
    rl = await _get_json(
        synapse,
        f"/_synapse/admin/v1/users/{user.user_id}/override_ratelimit",
        admin.access_token,
    )
    assert rl == {"messages_per_second": 0, "burst_count": 0}


async def test_encrypted_room_message_and_thread(synapse: SynapseServer, tmp_path) -> None:
    alice_u = await synapse.register("alice")
    bob_u = await synapse.register("bob")
    alice = await PartnerClient.login(synapse, alice_u, tmp_path / "alice")
    bob = await PartnerClient.login(synapse, bob_u, tmp_path / "bob")
    try:
        room_id = await alice.create_room("harness e2ee", encrypted=True, invite=[bob.user_id])
        assert alice.client.rooms[room_id].encrypted

        # Room id format: whatever Synapse's default room version produces.
        create = await _get_json(
            synapse,
            f"/_matrix/client/v3/rooms/{room_id}/state/m.room.create/",
            alice_u.access_token,
        )
        version = create.get("room_version", "1")
        assert room_id.startswith("!")
        if version == "12":
            assert ":" not in room_id, room_id  # v12: room id = "!" + create event hash
        else:
            assert room_id.endswith(":" + synapse.server_name), room_id

        await bob.join(room_id)
        assert bob.client.rooms[room_id].encrypted

        root_id = await alice.send_text(room_id, "hello bob, this is secret")
        got = await bob.wait_for_message(room_id, lambda e: e.body == "hello bob, this is secret")
        assert got.event_id == root_id
        assert got.sender == alice.user_id
        assert got.decrypted, "message should have arrived encrypted and been decrypted"

        reply_id = await alice.send_text(room_id, "in the thread", thread_root=root_id)
        reply = await bob.wait_for_message(room_id, lambda e: e.body == "in the thread")
        assert reply.event_id == reply_id
        assert reply.decrypted
        assert thread_root_of(reply) == root_id
        rel = reply.source["content"]["m.relates_to"]
        assert rel["rel_type"] == "m.thread"
        assert rel["is_falling_back"] is True
        assert rel["m.in_reply_to"] == {"event_id": root_id}

        # And the other way round: bob answers in the thread, alice decrypts it.
        back_id = await bob.send_text(room_id, "got it", thread_root=root_id)
        back = await alice.wait_for_message(room_id, lambda e: e.body == "got it")
        assert back.event_id == back_id and back.decrypted
        assert thread_root_of(back) == root_id

        # Server-side thread view agrees.
        threads = await _get_json(
            synapse, f"/_matrix/client/v1/rooms/{room_id}/threads", alice_u.access_token
        )
        assert [t["event_id"] for t in threads["chunk"]] == [root_id]
    finally:
        await alice.close()
        await bob.close()


async def test_megolm_sharing_with_invitees_and_late_joiners(
    synapse: SynapseServer, tmp_path
) -> None:
    """nio shares the room key with *invited* members' devices too; someone
    invited only after a message was sent cannot read that message, but gets
    a fresh session for what follows (membership change -> session rotated)."""
    erin_u = await synapse.register("erin")
    finn_u = await synapse.register("finn")
    gwen_u = await synapse.register("gwen")
    erin = await PartnerClient.login(synapse, erin_u, tmp_path / "erin")
    finn = await PartnerClient.login(synapse, finn_u, tmp_path / "finn")
    gwen = await PartnerClient.login(synapse, gwen_u, tmp_path / "gwen")
    try:
        room_id = await erin.create_room("late joiner", encrypted=True, invite=[finn.user_id])
        await erin.send_text(room_id, "finn only invited")
        await finn.join(room_id)
        got = await finn.wait_for_message(room_id, lambda e: e.body == "finn only invited")
        assert got.decrypted

        await erin.invite(room_id, gwen.user_id)
        await gwen.join(room_id)
        await erin.send_text(room_id, "after gwen joined")
        got = await gwen.wait_for_message(room_id, lambda e: e.body == "after gwen joined")
        assert got.decrypted
        # Sent before gwen was invited: no key for her (history_visibility=shared
        # lets her see the event, but it stays a MegolmEvent).
        assert all(
            getattr(e, "body", None) != "finn only invited" for e in gwen.buffered_events(room_id)
        )
        assert len(gwen.undecryptable_events(room_id)) == 1
    finally:
        for c in (erin, finn, gwen):
            await c.close()


async def test_plain_room_and_echo_latency(synapse: SynapseServer, tmp_path) -> None:
    carol_u = await synapse.register("carol")
    carol = await PartnerClient.login(synapse, carol_u, tmp_path / "carol", encrypted=False)
    try:
        room_id = await carol.create_room("plain", encrypted=False, invite=[])
        ev_id = await carol.send_text(room_id, "plain text", msgtype="m.notice")
        got = await carol.wait_for_message(room_id, lambda e: e.event_id == ev_id)
        assert got.body == "plain text"
        lat = await own_echo_latency(carol, room_id, 5)
        assert len(lat) == 5 and all(0 < x < 10 for x in lat)
        print("own echo latency (s):", [round(x, 4) for x in lat])
    finally:
        await carol.close()


async def test_restart_keeps_data() -> None:
    """A separate, short-lived server: restart() keeps port and database.

    start/stop/restart are synchronous (they block this loop for a few
    seconds, which is fine in a test)."""
    require_synapse()
    with SynapseServer(server_name="restart.test") as server:
        user = await server.register("dora")
        port = server.port
        server.restart()
        assert server.port == port and server.running
        who = await _get_json(server, "/_matrix/client/v3/account/whoami", user.access_token)
        assert who["user_id"] == "@dora:restart.test"
        print(f"restart took {server.last_start_seconds:.2f}s")
    assert not server.running and server.data_dir is None
