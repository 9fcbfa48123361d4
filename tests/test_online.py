"""``check-config --online`` against the fake Slack Web API and a real Synapse."""

from __future__ import annotations

import aiohttp
import pytest

from conftest import BASE_CONFIG
from liaisonbot.config import parse
from liaisonbot.online import check_matrix, check_slack
from liaisonbot.service import messages as msg
from support.fake_slack import FakeSlack
from support.synapse import SynapseServer, synapse  # noqa: F401


def _settings(rooms: dict[str, list[str]], **sections: object) -> object:
    offices = [{"slug": slug, "name": slug, "rooms": r} for slug, r in rooms.items()]
    return parse({"policy": BASE_CONFIG["policy"], "offices": offices, **sections}, "online.toml")


async def test_slack_online_names_bad_token_and_unreachable_channel() -> None:
    async with FakeSlack() as slack:
        settings = _settings({"icc": ["slack:C0ICC"], "ba": ["slack:C0GONE"]},
                             slack={"enabled": True, "api_base_url": slack.base_url})
        assert await check_slack(settings, {"LIAISONBOT_SLACK_BOT_TOKEN": "xoxb-test"}) == []  # type: ignore[arg-type]
        slack.fail("conversations.info", error="channel_not_found")
        problems = await check_slack(settings, {  # type: ignore[arg-type]
            "LIAISONBOT_SLACK_BOT_TOKENS": "T0DEFAULT=xoxb-test,T0OTHER=xoxb-wrong"})
    assert "slack: the token for T0OTHER is refused (invalid_auth)" in problems
    assert any(p.startswith("offices[icc].rooms: slack:C0ICC: not reachable (channel_not_found)")
               for p in problems)


async def _create_room(server: SynapseServer, token: str) -> str:
    async with aiohttp.ClientSession() as session, session.post(
            f"{server.base_url}/_matrix/client/v3/createRoom", json={"name": "x"},
            headers={"Authorization": f"Bearer {token}"}) as response:
        return str((await response.json())["room_id"])


async def test_matrix_online_names_rooms_the_bot_has_not_joined(
        synapse: SynapseServer, monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:  # noqa: F811
    bot = await synapse.register("online-bot")
    alice = await synapse.register("online-alice")
    joined = await _create_room(synapse, bot.access_token)
    foreign = await _create_room(synapse, alice.access_token)
    settings = _settings({"icc": [f"matrix:{joined}"], "ba": [f"matrix:{foreign}"]},
                         matrix={"enabled": True, "homeserver": synapse.base_url,
                                 "user_id": bot.user_id, "data_dir": str(tmp_path)})
    monkeypatch.setenv("LIAISONBOT_MATRIX_ACCESS_TOKEN", bot.access_token)
    problems = await check_matrix(settings)  # type: ignore[arg-type]
    assert problems == [f"matrix: {msg.IDENTITY_NONE}",  # never started: not cross-signed
                        f"offices[ba].rooms: matrix:{foreign}: the bot has not joined it "
                        f"(invite {bot.user_id})"]
    monkeypatch.setenv("LIAISONBOT_MATRIX_ACCESS_TOKEN", "syt_wrong")
    assert (await check_matrix(settings))[0].startswith(  # type: ignore[arg-type]
        "matrix: the access token is refused (M_UNKNOWN_TOKEN)")
