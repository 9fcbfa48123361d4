"""``liaisonbot check-config --online``: are the credentials good and every bound room reachable?

Read-only calls only: Slack ``auth.test`` per token and ``conversations.info`` per bound
channel; Matrix ``whoami``, ``joined_rooms`` and ``keys/query`` (is the bot's device
cross-signed?) with the access token (from the environment, or the session the bot saved in
``data_dir``). Each problem is one line naming the key and why.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from liaisonbot.chat.matrix.crosssigning import identity_report
from liaisonbot.config import Settings, secret
from liaisonbot.domain.refs import native_id, platform_of, slack_team


def _bound(settings: Settings, platform: str) -> list[tuple[str, str]]:
    return [(office.slug, room) for office in settings.directory.offices for room in office.rooms
            if platform_of(room) == platform]


async def check_slack(settings: Settings, env: dict[str, str] | None = None) -> list[str]:
    from liaisonbot.chat.slack.teams import tokens_from_env

    tokens = tokens_from_env(env if env is not None else dict(os.environ))
    if not tokens:
        return ["slack: no bot token (set LIAISONBOT_SLACK_BOT_TOKEN or "
                "LIAISONBOT_SLACK_BOT_TOKENS)"]
    problems: list[str] = []
    clients: dict[str, AsyncWebClient] = {}
    for hint, token in tokens:
        client = AsyncWebClient(token=token, base_url=settings.slack.api_base_url,
                                retry_handlers=[])
        try:
            auth = await client.auth_test()
            clients[str(auth["team_id"])] = client
        except SlackApiError as error:
            problems.append(f"slack: the token for {hint or 'the workspace'} is refused "
                            f"({error.response.get('error')})")
        except aiohttp.ClientError as error:
            problems.append(f"slack.api_base_url: {settings.slack.api_base_url} is not "
                            f"reachable ({type(error).__name__})")
            return problems
    default = next(iter(clients.values()), None)
    for slug, room in _bound(settings, "slack"):
        team_client = clients.get(slack_team(room) or "") or default
        if team_client is None:
            problems.append(f"offices[{slug}].rooms: {room}: no working token for its workspace")
            continue
        try:
            info = await team_client.conversations_info(channel=native_id(room))
            if not info["channel"].get("is_member", True):
                problems.append(f"offices[{slug}].rooms: {room}: the bot is not a member; "
                                "invite it to the channel")
        except SlackApiError as error:
            problems.append(f"offices[{slug}].rooms: {room}: not reachable "
                            f"({error.response.get('error')})")
    return problems


def _matrix_token(settings: Settings) -> str | None:
    token = secret("LIAISONBOT_MATRIX_ACCESS_TOKEN")
    if token:
        return token
    try:
        saved = json.loads((Path(settings.matrix.data_dir) / "session.json").read_text())
    except (OSError, ValueError):
        return None
    return str(saved.get("access_token") or "") or None


async def _get(session: aiohttp.ClientSession, url: str, token: str) -> tuple[int, Any]:
    async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
        return response.status, await response.json(content_type=None)


async def check_matrix(settings: Settings, notes: list[str] | None = None) -> list[str]:
    token = _matrix_token(settings)
    if not token:
        return ["matrix: no access token to check with (set LIAISONBOT_MATRIX_ACCESS_TOKEN, or "
                "run the bot once with LIAISONBOT_MATRIX_PASSWORD)"]
    base = settings.matrix.homeserver.rstrip("/") + "/_matrix/client/v3"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
            status, who = await _get(session, f"{base}/account/whoami", token)
            if status != 200:
                return [f"matrix: the access token is refused ({who.get('errcode', status)})"]
            if who.get("user_id") != settings.matrix.user_id:
                return [f"matrix.user_id: the token belongs to {who.get('user_id')}, not "
                        f"{settings.matrix.user_id}"]
            _, joined = await _get(session, f"{base}/joined_rooms", token)
            async with session.post(f"{base}/keys/query",
                                    json={"device_keys": {settings.matrix.user_id: []}},
                                    headers={"Authorization": f"Bearer {token}"}) as response:
                own_keys = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError) as error:
        return [f"matrix.homeserver: {settings.matrix.homeserver} is not reachable "
                f"({type(error).__name__})"]
    identity = identity_report(own_keys if isinstance(own_keys, dict) else {},
                               settings.matrix.user_id, str(who.get("device_id") or ""))
    problems = [f"matrix: {identity.problem}"] if identity.problem else []
    if notes is not None and identity.cross_signed:
        notes.append(f"matrix: device {who.get('device_id')} is cross-signed; master key "
                     f"{identity.master_key}")
    rooms = set(joined.get("joined_rooms", []))
    return problems + [f"offices[{slug}].rooms: {room}: the bot has not joined it (invite "
            f"{settings.matrix.user_id})" for slug, room in _bound(settings, "matrix")
            if native_id(room) not in rooms]


async def check_online(settings: Settings, notes: list[str] | None = None) -> list[str]:
    """Problems, one line each; facts worth showing (the Matrix identity) go to ``notes``."""
    problems: list[str] = []
    if settings.slack.enabled:
        problems += await check_slack(settings)
    if settings.matrix.enabled:
        problems += await check_matrix(settings, notes)
    return problems



