"""Workspaces: bot tokens from the environment, their identities (``auth.test``), clients."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from liaisonbot.domain.refs import slack_team

log = logging.getLogger(__name__)

ENV_TOKEN = "LIAISONBOT_SLACK_BOT_TOKEN"
ENV_TOKENS = "LIAISONBOT_SLACK_BOT_TOKENS"
ENV_SECRET = "LIAISONBOT_SLACK_SIGNING_SECRET"
ENV_APP_TOKEN = "LIAISONBOT_SLACK_APP_TOKEN"


def tokens_from_env(env: Mapping[str, str]) -> list[tuple[str | None, str]]:
    """``[(team or None, token)]`` from ``LIAISONBOT_SLACK_BOT_TOKEN(S)``."""
    found: list[tuple[str | None, str]] = []
    for part in (env.get(ENV_TOKENS) or "").split(","):
        part = part.strip()
        if not part:
            continue
        team, sep, token = part.partition("=")
        found.append((team.strip(), token.strip()) if sep else (None, part))
    single = (env.get(ENV_TOKEN) or "").strip()
    if single and all(token != single for _, token in found):
        found.insert(0, (None, single))
    return found


@dataclass
class Team:
    """One workspace the bot is installed in."""

    team_id: str
    token: str
    client: AsyncWebClient
    bot_user_id: str = ""
    bot_id: str = ""
    ok: bool = False
    error: str = ""


class Teams:
    """The bot's workspaces, by team id, with one posting client each (no automatic retries:
    a re-sent ``chat.postMessage`` would post twice)."""

    def __init__(self, tokens: list[tuple[str | None, str]], base_url: str) -> None:
        self.base_url = base_url
        self._pending = tokens
        self.by_id: dict[str, Team] = {}
        self.default: str | None = None
        self._seen_rooms: dict[str, str] = {}  # channel id -> team it was last seen from

    async def check(self) -> None:
        """``auth.test`` for every token not yet known; learns each team's bot identity."""
        still: list[tuple[str | None, str]] = []
        for hinted, token in self._pending:
            client = AsyncWebClient(token=token, base_url=self.base_url, retry_handlers=[])
            try:
                auth = await client.auth_test()
            except Exception as error:  # an unreachable API must not stop the bot starting
                log.warning("slack auth.test failed", extra={"team": hinted, "error": str(error)})
                if hinted:
                    reason = error.response.get("error", "") if isinstance(
                        error, SlackApiError) else type(error).__name__
                    self.by_id.setdefault(hinted, Team(hinted, token, client, error=reason))
                still.append((hinted, token))
                continue
            team = Team(str(auth["team_id"]), token, client, str(auth["user_id"]),
                        str(auth.get("bot_id") or ""), ok=True)
            if hinted and hinted != team.team_id:
                log.warning("slack token team mismatch", extra={"hinted": hinted,
                                                                "actual": team.team_id})
            self.by_id[team.team_id] = team
            self.default = self.default or team.team_id
        self._pending = still

    def get(self, team_id: str | None) -> Team | None:
        return self.by_id.get(team_id or "") if team_id else None

    def seen(self, team_id: str, channel: str) -> None:
        self._seen_rooms[channel] = team_id

    def for_ref(self, ref: str) -> Team | None:
        """The workspace a ``slack:[T/]ID`` reference lives in."""
        from liaisonbot.domain.refs import native_id

        team = slack_team(ref) or self._seen_rooms.get(native_id(ref)) or self.default
        return self.by_id.get(team or "")

    def health(self) -> list[dict[str, object]]:
        return [{"team": t.team_id, "ok": t.ok, **({"error": t.error} if t.error else {})}
                for t in self.by_id.values()] + [
            {"team": hint or "?", "ok": False} for hint, _ in self._pending
            if not hint or hint not in self.by_id]
