"""The Slack platform: a Bolt ``AsyncApp`` served on ``POST /slack/events`` (HTTP mode) or over
Socket Mode, the listeners, and the gateway the outbox posts through.

Acknowledged means kept: Bolt verifies a request and a recorder (``listeners.Door``) names
what to keep; the entry is committed to the inbox (``core.inbox.admit``) and only then is the
request acknowledged (the HTTP 200, the Socket Mode ack); its work starts after that, from the
inbox (``listeners.SlackWork``). When the entry cannot be written (the database is down) the
request is not acknowledged: HTTP 503, no Socket Mode ack, so Slack retries what it retries
(events) and tells the person the command failed (commands, buttons) instead of losing it.
Bolt runs the recorders before it answers (``process_before_response``): they do no I/O.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import send_async_response
from slack_bolt.adapter.socket_mode.internals import build_headers
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.web.async_client import AsyncWebClient

from liaisonbot.bootstrap import Core
from liaisonbot.chat.slack.gateway import SlackGateway
from liaisonbot.chat.slack.listeners import ENTRY, Door, SlackWork
from liaisonbot.chat.slack.priority import AckFirst
from liaisonbot.chat.slack.teams import ENV_APP_TOKEN, ENV_SECRET, Teams, tokens_from_env
from liaisonbot.config import Settings
from liaisonbot.crashpoint import crash_point
from liaisonbot.service.ports import InboxItem

log = logging.getLogger(__name__)
EVENTS_PATH = "/slack/events"


class SlackSetupError(Exception):
    """The Slack adapter cannot start; ``str()`` says why and what to set."""


class FormSafeRequest(AsyncBoltRequest):
    """A Bolt request whose form body is parsed correctly.

    Bolt decides "interactivity payload" by looking for the substring ``payload`` anywhere in a
    form body, so ``/liaison show payload`` became an empty request (404). A form body without a
    real ``payload`` field is re-parsed here as plain fields; the raw body stays untouched for
    the signature check, and copies (Bolt copies the request for work after ``ack``) do the same.
    """

    def __init__(self, *, body: str, query: Any = None, headers: Any = None,
                 context: dict[str, Any] | None = None, mode: str = "http") -> None:
        super().__init__(body=body, query=query, headers=headers, context=context, mode=mode)
        # Without the word anywhere in it, Bolt parsed the form as plain fields already.
        if isinstance(body, str) and "payload" in body and not body.lstrip().startswith("{") \
                and self.content_type != "application/json":
            fields = dict(parse_qsl(body, keep_blank_values=True))
            if "payload" not in fields:
                self.body = fields
                self.context = build_async_context(AsyncBoltContext(context or {}), self.body)

    def to_copyable(self) -> FormSafeRequest:
        return FormSafeRequest(body=self.raw_body, query=self.query, headers=self.headers,
                               context=self.context.to_copyable(), mode=self.mode)


class SlackPlatform:
    """Slack for the runner: ``mount`` the HTTP route, ``start``/``stop`` Socket Mode,
    ``health`` per workspace."""

    name = "slack"

    def __init__(self, *, core: Core, teams: Teams, gateway: SlackGateway, mode: str,
                 signing_secret: str, app_token: str = "", command: str = "/liaison") -> None:
        self.core = core
        self.teams = teams
        self.gateway = gateway
        self.mode = mode
        self.app_token = app_token
        #: Acks first: requests being acknowledged hold back the work after earlier acks and
        #: the gateway's posts (see ``priority``).
        self.priority = AckFirst()
        gateway.priority = self.priority
        self.door = Door(command)
        self.work = SlackWork(core, teams, self.priority)
        core.inbox.handle(self.name, self.work)

        async def authorize(enterprise_id: str | None, team_id: str | None
                            ) -> AuthorizeResult | None:  # Bolt passes arguments by name
            return await self._authorize(enterprise_id, team_id)

        if mode == "http" and not signing_secret:
            # Fail closed: Bolt would verify against whatever stood in for the secret.
            raise SlackSetupError(f"{ENV_SECRET} is not set; http mode verifies every "
                                  "request to /slack/events with it")
        if mode == "socket" and not app_token:
            raise SlackSetupError(f"{ENV_APP_TOKEN} is not set; socket mode connects with "
                                  "this xapp- token")
        self.app = AsyncApp(
            signing_secret=signing_secret, authorize=authorize,  # type: ignore[arg-type]
            client=AsyncWebClient(base_url=teams.base_url), process_before_response=True,
            ssl_check_enabled=True, request_verification_enabled=mode == "http")
        self.door.register(self.app)
        self._socket: AsyncSocketModeHandler | None = None

    async def _authorize(self, enterprise_id: str | None,
                         team_id: str | None) -> AuthorizeResult | None:
        """The bot token for the workspace a request comes from (cached ``auth.test``)."""
        team = self.teams.get(team_id)
        if team is None or not team.ok:
            await self.teams.check()
            team = self.teams.get(team_id)
        if team is None or not team.ok:
            log.warning("slack request from unknown team", extra={"team": team_id})
            return None
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team.team_id,
                               bot_token=team.token, bot_user_id=team.bot_user_id,
                               bot_id=team.bot_id)

    def mount(self, app: web.Application) -> None:
        app.router.add_post(EVENTS_PATH, self.handle_http)

    async def handle_http(self, request: web.Request) -> web.StreamResponse:
        """``POST /slack/events``: commands, events and interactivity, signature-verified;
        each kept in the inbox before its 200 is written, worked after it."""
        self.priority.ack_started()
        try:
            raw = await request.text()
            bolt_request = FormSafeRequest(body=raw, query=request.query_string,
                                           headers={k: v for k, v in request.headers.items()})
            response = await self.app.async_dispatch(bolt_request)
            try:
                item = await self._keep(bolt_request, response.status)
            except Exception:
                log.exception("slack request not kept: not acknowledged")
                return web.Response(status=503)
            answer = web.Response(status=response.status, body=response.body,
                                  headers=response.first_headers())
            await answer.prepare(request)
            await answer.write_eof()
        finally:
            self.priority.ack_done()
        self._acknowledged(item)
        return answer

    async def _keep(self, bolt_request: AsyncBoltRequest, status: int) -> InboxItem | None:
        """Commit the recorder's entry, if it named one, before the acknowledgement."""
        entry = bolt_request.context.get(ENTRY)
        if entry is None or status != 200:
            return None
        return await self.core.inbox.admit(entry)

    def _acknowledged(self, item: InboxItem | None) -> None:
        crash_point("acked")
        if item is not None:
            self.core.inbox.start(item)

    async def handle_socket(self, client: AsyncBaseSocketModeClient,
                            req: SocketModeRequest) -> None:
        """A Socket Mode envelope: kept in the inbox before its ack is sent, worked after it.
        One not kept is not acknowledged (Slack sends an event again)."""
        self.priority.ack_started()
        try:
            bolt_request = AsyncBoltRequest(mode="socket_mode", body=req.payload,
                                            headers=build_headers(req))
            response = await self.app.async_dispatch(bolt_request)
            try:
                item = await self._keep(bolt_request, response.status)
            except Exception:
                log.exception("slack envelope not kept: not acknowledged")
                return
            await send_async_response(client, req, response, 0.0)
        finally:
            self.priority.ack_done()
        self._acknowledged(item)

    async def start(self) -> None:
        await self.teams.check()
        if self.mode == "socket":
            self._socket = _KeepingSocketModeHandler(
                self, self.app, self.app_token,
                web_client=AsyncWebClient(base_url=self.teams.base_url))
            await self._socket.connect_async()

    async def quiesce(self, timeout: float) -> None:  # noqa: ASYNC109 (a drain budget)
        """Nothing to wait for: acknowledged work lives in the inbox (``core.inbox.stop``)."""

    async def stop(self) -> None:
        if self._socket is not None:
            await self._socket.close_async()
            self._socket = None

    async def health(self) -> dict[str, Any]:
        if any(not t.ok for t in self.teams.by_id.values()) or not self.teams.by_id:
            await self.teams.check()
        teams = self.teams.health()
        ok = bool(teams) and all(t["ok"] for t in teams)
        report: dict[str, Any] = {"mode": self.mode, "teams": teams}
        if self.mode == "socket":
            connected = self._socket is not None and await self._socket.client.is_connected()
            report["socket_connected"] = connected
            ok = ok and connected
        return {"ok": ok, **report}


class _KeepingSocketModeHandler(AsyncSocketModeHandler):
    """Bolt's Socket Mode handler with the inbox between the dispatch and the ack."""

    def __init__(self, platform: SlackPlatform, app: AsyncApp, app_token: str,
                 web_client: AsyncWebClient) -> None:
        super().__init__(app, app_token, web_client=web_client)
        self.platform = platform

    async def handle(self, client: Any, req: SocketModeRequest) -> None:  # type: ignore[override]
        await self.platform.handle_socket(client, req)


def build_slack(settings: Settings, core: Core, *, env: Mapping[str, str] | None = None,
                pace_seconds: float = 1.0,
                sleep: Callable[[float], Awaitable[None]] | None = None) -> SlackPlatform:
    """The Slack platform from ``[slack]`` and the environment (see the package docstring)."""
    env = os.environ if env is None else env
    teams = Teams(tokens_from_env(env), settings.slack.api_base_url)
    extra: dict[str, Any] = {"sleep": sleep} if sleep else {}
    gateway = SlackGateway(teams=teams, directory=settings.directory,
                           pace_seconds=pace_seconds, **extra)
    try:
        return SlackPlatform(core=core, teams=teams, gateway=gateway, mode=settings.slack.mode,
                             signing_secret=(env.get(ENV_SECRET) or "").strip(),
                             app_token=(env.get(ENV_APP_TOKEN) or "").strip(),
                             command=settings.slack.command)
    except SlackSetupError as error:
        raise SystemExit(f"liaisonbot: slack: {error}") from None
