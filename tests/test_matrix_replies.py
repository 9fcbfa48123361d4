"""Issue 24 on a real Synapse: the reply to ``!liaison open`` (with its warnings) reaches the
person who typed it, in the room (and thread) they typed it in, while a request confidential
by default shows no particulars in either office's room."""

# ruff: noqa: F811  (fixture imported by name)
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from liaisonbot.config import parse
from support.synapse import PartnerClient, SynapseServer, synapse, thread_root_of  # noqa: F401
from test_matrix_helpers import office, register_bot, running_bot, wait_joined

pytestmark = [pytest.mark.asyncio, pytest.mark.synapse]

ICC = {"name": "Request for cooperation of the International Criminal Court (Rome Statute, "
               "Part 9)", "short": "ICC Part 9", "source": "Rome Statute arts. 86-102",
       "requires": ["basis"], "conf": "confidential", "conf_cite": "art. 87(3)"}
WARNING = "Requests via ICC Part 9 are confidential unless conf: says otherwise (art. 87(3))."


def _notice(pred: Any = lambda e: True) -> Any:
    return lambda e: e.source["content"].get("msgtype") == "m.notice" and pred(e)


async def test_the_reply_to_open_and_its_warnings_reach_the_actor(synapse: SynapseServer,
                                                                  tmp_path: Path) -> None:
    bot = await register_bot(synapse)
    people = {}
    for name in ("alice", "bob"):
        user = await synapse.register(name + "-" + tmp_path.name[-6:].replace("_", ""))
        people[name] = await PartnerClient.login(synapse, user, tmp_path / name, encrypted=True)
    alice, bob = people["alice"], people["bob"]
    room_a = await alice.create_room("icc", encrypted=True, invite=[bot.user_id])
    room_b = await bob.create_room("ba", encrypted=True, invite=[bot.user_id])
    settings = parse({
        "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"},
        "matrix": {"enabled": True, "homeserver": synapse.base_url, "user_id": bot.user_id,
                   "data_dir": str(tmp_path / "matrix"), "exclude_insecure_devices": False},
        "instruments": {"icc": ICC},
        "offices": [office("icc", room_a, [alice.user_id]), office("ba", room_b, [bob.user_id])],
    }, "test")
    try:
        async with running_bot(settings, bot) as running:
            await wait_joined(running.platform, room_a)
            await wait_joined(running.platform, room_b)
            await alice.send_text(room_a, '!liaison open ICC-01/22 to:ba kind:surrender via:icc '
                                  'basis:"art. 89" person:"Suspect M." Surrender of M.')
            reply = await alice.wait_for_message(room_a, _notice(lambda e: WARNING in e.body),
                                                 timeout=30)
            assert reply.sender == bot.user_id and reply.decrypted
            assert "The summary is shown only to the listed members of both offices" \
                in reply.body
            card_a = await alice.wait_for_message(room_a, _notice(lambda e: "R-1" in e.body
                                                                  and e is not reply), 30)
            card_b = await bob.wait_for_message(room_b, _notice(lambda e: "R-1" in e.body), 30)
            for shown in (reply, card_a, card_b):
                assert "Suspect M." not in shown.body and "Surrender of M." not in shown.body
                assert "Suspect M." not in shown.source["content"].get("formatted_body", "")
            assert "confidential" in card_b.body

            # Typed inside the card's thread: the reply follows in that thread.
            await alice.send_text(room_a, '!liaison open ICC-01/22 to:ba via:icc '
                                  'basis:"art. 93" Bank records', thread_root=card_a.event_id)
            second = await alice.wait_for_message(
                room_a, _notice(lambda e: WARNING in e.body), timeout=30)
            assert thread_root_of(second) == card_a.event_id
    finally:
        await alice.close()
        await bob.close()
