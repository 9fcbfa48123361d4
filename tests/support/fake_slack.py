"""In-process fake of the Slack Web API, Socket Mode and response_url endpoints for tests.

Point the real ``slack_sdk`` clients at it::

    async with FakeSlack() as slack:
        client = AsyncWebClient(token="xoxb-test", base_url=slack.base_url)
        await client.chat_postMessage(channel="C1", text="hi")
        assert slack.messages("C1")[0]["text"] == "hi"

Only loopback is used; nothing here ever talks to slack.com.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import urlencode

from aiohttp import WSMsgType, web

from support.poll import eventually

T = TypeVar("T")
JSON = dict[str, Any]
JSON_FIELDS = {"blocks", "attachments", "metadata", "view", "unfurls", "users"}
Handler = Callable[["Team", JSON], JSON]


@dataclass
class Call:
    """One recorded request. ``at`` is ``time.monotonic()``; ``status``/``response`` is what was answered
    (``response`` is None for dropped connections)."""

    method: str
    team_id: str | None
    args: JSON
    at: float
    status: int = 200
    response: JSON | None = None


@dataclass
class Team:
    """A fake workspace: bot identity, users, and per-channel message store."""

    team_id: str
    bot_token: str
    bot_user_id: str
    bot_id: str
    name: str
    users: dict[str, JSON] = field(default_factory=dict)
    channels: dict[str, list[JSON]] = field(default_factory=dict)


@dataclass
class _Fault:
    kind: Literal["ratelimit", "fail", "drop"]
    times: int
    retry_after: int = 1
    error: str = ""
    extra: JSON = field(default_factory=dict)
    mode: str = "disconnect"


def _ts_key(ts: Any) -> int:
    """Slack ts ("1700000000.000100") -> integer microseconds, for ordering/filtering."""
    sec, _, frac = str(ts).partition(".")
    return int(sec or 0) * 1_000_000 + int((frac + "000000")[:6])


def _truthy(v: Any) -> bool:
    return v is True or v == 1 or str(v).lower() in ("1", "true")


class FakeSlack:
    """Fake Slack server (Web API under ``/api/``, Socket Mode at ``/socket``, response URLs at ``/response/``).

    Tokens select the workspace (``add_team``); every request is recorded as a :class:`Call`.
    Faults (``rate_limit``, ``fail``, ``delay``, ``drop_after_apply``) are armed per API method.
    Message ``ts`` values follow the wall clock (strictly increasing), so ``oldest=time.time()-N`` works.
    """

    def __init__(self, *, default_team: bool = True, clock: Callable[[], float] = time.time) -> None:
        self.teams: dict[str, Team] = {}
        self._by_token: dict[str, Team] = {}
        self._app_tokens: set[str] = set()
        self._calls: list[Call] = []
        self._faults: dict[str, list[_Fault]] = {}
        self._delays: dict[str, float] = {}
        self._views: dict[str, JSON] = {}
        self._tickets: set[str] = set()
        self._sockets: list[web.WebSocketResponse] = []
        self._acks: dict[str, asyncio.Future[JSON]] = {}
        self._expired: set[str] = set()
        self._clock = clock
        self._last_ts = 0
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._handlers: dict[str, Handler] = {
            "auth.test": self._auth_test, "chat.postMessage": self._post_message,
            "chat.update": self._chat_update, "chat.delete": self._chat_delete,
            "chat.postEphemeral": self._post_ephemeral, "chat.getPermalink": self._permalink,
            "views.open": self._views_open, "views.update": self._views_update,
            "conversations.history": self._history, "conversations.replies": self._replies,
            "conversations.info": self._conv_info, "conversations.open": self._conv_open,
            "users.info": self._users_info,
            "apps.connections.open": lambda team, args: {"ok": False, "error": "not_allowed_token_type"},
        }  # fmt: skip
        if default_team:
            self.add_team("T0DEFAULT", "xoxb-test", "U0BOT", "B0BOT")

    # ---------------------------------------------------------------- lifecycle
    async def start(self) -> FakeSlack:
        """Bind 127.0.0.1 on a free port and start serving."""
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/socket", self._socket)
        app.router.add_post("/response/{name}", self._response_url)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        """Close Socket Mode connections, fail pending acks and shut the server down."""
        for ws in list(self._sockets):
            await ws.close()
        for fut in self._acks.values():
            if not fut.done():
                fut.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSlack:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """Web API base URL for ``AsyncWebClient(base_url=...)`` (trailing slash included)."""
        return f"http://127.0.0.1:{self.port}/api/"

    def expire_response_url(self, name: str) -> None:
        """From now on ``response_url(name)`` answers 404 ``expired_url`` (recorded, not applied)."""
        self._expired.add(name)

    def response_url(self, name: str = "default") -> str:
        """A response_url on this server; POSTs to it are recorded as method ``response_url``."""
        return f"http://127.0.0.1:{self.port}/response/{name}"

    # ---------------------------------------------------------------- setup
    def add_team(self, team_id: str, bot_token: str, bot_user_id: str, bot_id: str, name: str | None = None) -> Team:
        """Register a workspace; requests bearing ``bot_token`` act in it."""
        team = Team(team_id, bot_token, bot_user_id, bot_id, name or team_id.lower())
        team.users[bot_user_id] = self._user(team, bot_user_id, "liaisonbot", "liaisonbot", is_bot=True)
        self.teams[team_id] = self._by_token[bot_token] = team
        return team

    def add_user(self, team_id: str, user_id: str, name: str, real_name: str | None = None, **extra: Any) -> JSON:
        """Register a user for ``users.info`` (unknown users answer ``user_not_found`` like Slack)."""
        team = self.teams[team_id]
        team.users[user_id] = self._user(team, user_id, name, real_name or name, **extra)
        return team.users[user_id]

    def add_app_token(self, token: str) -> None:
        """Register an app-level (``xapp-``) token accepted by ``apps.connections.open``."""
        self._app_tokens.add(token)

    def add_message(
        self, channel: str, text: str, user: str = "U0USER", team_id: str = "T0DEFAULT", **fields: Any
    ) -> JSON:
        """Seed a (human) message into a channel's history, as if posted outside the bot."""
        msg = {"type": "message", "ts": self._next_ts(), "user": user, "team": team_id, "text": text, **fields}
        self._store(self.teams[team_id], channel, msg)
        return msg

    # ---------------------------------------------------------------- faults
    def rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """Next ``times`` calls of ``method`` get HTTP 429 + ``Retry-After`` (recorded, not applied)."""
        self._faults.setdefault(method, []).append(_Fault("ratelimit", times, retry_after=retry_after))

    def fail(self, method: str, error: str = "channel_not_found", times: int = 1, **extra: Any) -> None:
        """Next ``times`` calls of ``method`` answer ``{"ok": false, "error": error, **extra}`` (not applied)."""
        self._faults.setdefault(method, []).append(_Fault("fail", times, error=error, extra=extra))

    def delay(self, method: str, seconds: float) -> None:
        """Delay every subsequent call of ``method`` by ``seconds`` (0 disables)."""
        self._delays[method] = seconds

    def drop_after_apply(self, method: str, times: int = 1, mode: Literal["disconnect", "500"] = "disconnect") -> None:
        """Next ``times`` calls ARE applied, then the connection is aborted (or HTTP 500 is answered)."""
        self._faults.setdefault(method, []).append(_Fault("drop", times, mode=mode))

    # ---------------------------------------------------------------- inspection
    def calls(self, method: str | None = None, team_id: str | None = None) -> list[Call]:
        """Recorded calls (oldest first), optionally filtered by method and/or team."""
        return [c for c in self._calls if method in (None, c.method) and team_id in (None, c.team_id)]

    def messages(self, channel: str, team_id: str | None = None) -> list[JSON]:
        """Current messages (incl. thread replies) in ``channel``, oldest first, after updates/deletes."""
        teams = [self.teams[team_id]] if team_id else self.teams.values()
        found = [dict(m) for t in teams for m in t.channels.get(channel, [])]
        return sorted(found, key=lambda m: _ts_key(m["ts"]))

    async def wait_for(self, predicate: Callable[[], T | Awaitable[T]], timeout: float = 2.0) -> T:
        """Poll ``predicate`` (sync or async) every 5ms until truthy; return its value or raise
        TimeoutError naming the calls seen so far (``support.poll.eventually``)."""
        try:
            return await eventually(predicate, timeout=timeout,  # type: ignore[arg-type]
                                    interval=0.005)
        except TimeoutError:
            seen = [c.method for c in self._calls]
            raise TimeoutError(f"condition not met within {timeout}s; calls so far: {seen}") \
                from None

    async def wait_for_call(self, method: str, count: int = 1, timeout: float = 2.0) -> list[Call]:
        """Wait until at least ``count`` calls of ``method`` were recorded; return them."""

        def enough() -> list[Call]:
            found = self.calls(method)
            return found if len(found) >= count else []

        return await self.wait_for(enough, timeout)

    # ---------------------------------------------------------------- HTTP plumbing
    async def _args(self, request: web.Request) -> JSON:
        args: JSON = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                args.update(await request.json())
            else:
                args.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        for k in JSON_FIELDS & args.keys():
            if isinstance(args[k], str) and args[k][:1] in ("[", "{"):
                args[k] = json.loads(args[k])
        return args

    def _record(self, method: str, team: Team | None, args: JSON, status: int, body: JSON | None) -> None:
        self._calls.append(Call(method, team.team_id if team else None, args, time.monotonic(), status, body))

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        args = await self._args(request)
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else args.get("token")
        args.pop("token", None)
        team = self._by_token.get(token or "")
        if method == "apps.connections.open" and token in self._app_tokens:
            team = None
        elif not token or team is None:
            body = {"ok": False, "error": "not_authed" if not token else "invalid_auth"}
            self._record(method, None, args, 200, body)
            return web.json_response(body)
        if self._delays.get(method):
            await asyncio.sleep(self._delays[method])
        fault = self._take_fault(method)
        if fault and fault.kind == "ratelimit":
            body = {"ok": False, "error": "ratelimited"}
            self._record(method, team, args, 429, body)
            return web.json_response(body, status=429, headers={"Retry-After": str(fault.retry_after)})
        if fault and fault.kind == "fail":
            body = {"ok": False, "error": fault.error, **fault.extra}
            self._record(method, team, args, 200, body)
            return web.json_response(body)
        if team is None:
            body = self._connections_open()
        else:
            handler = self._handlers.get(method)
            body = handler(team, args) if handler else {"ok": True}
        if fault and fault.kind == "drop":
            if fault.mode == "500":
                self._record(method, team, args, 500, None)
                return web.Response(status=500, text="Internal Server Error", content_type="text/html")
            self._record(method, team, args, 0, None)
            assert request.transport is not None
            request.transport.abort()
            raise asyncio.CancelledError  # nothing can be written on an aborted transport
        self._record(method, team, args, 200, body)
        return web.json_response(body)

    def _take_fault(self, method: str) -> _Fault | None:
        queue = self._faults.get(method) or []
        if not queue:
            return None
        fault = queue[0]
        fault.times -= 1
        if fault.times <= 0:
            queue.pop(0)
        return fault

    async def _response_url(self, request: web.Request) -> web.Response:
        if request.match_info["name"] in self._expired:  # as Slack answers after 30 minutes
            self._record("response_url", None, {"name": request.match_info["name"]}, 404, None)
            return web.Response(status=404, text="expired_url")
        try:
            body = await request.json() if request.content_type == "application/json" else dict(await request.post())
        except ValueError:
            body = {"raw": await request.text()}
        self._record("response_url", None, {"name": request.match_info["name"], **body}, 200, None)
        return web.Response(text="ok")

    # ---------------------------------------------------------------- helpers
    def _next_ts(self) -> str:
        self._last_ts = max(int(self._clock() * 1_000_000), self._last_ts + 1)
        return f"{self._last_ts // 1_000_000}.{self._last_ts % 1_000_000:06d}"

    @staticmethod
    def _user(team: Team, user_id: str, name: str, real_name: str, is_bot: bool = False, **extra: Any) -> JSON:
        profile = {"real_name": real_name, "display_name": name, "real_name_normalized": real_name,
                   "display_name_normalized": name}  # fmt: skip
        return {"id": user_id, "team_id": team.team_id, "name": name, "real_name": real_name, "is_bot": is_bot,
                "deleted": False, "tz": "UTC", "profile": profile, **extra}  # fmt: skip

    def _store(self, team: Team, channel: str, msg: JSON) -> None:
        team.channels.setdefault(channel, []).append(msg)
        thread_ts = msg.get("thread_ts")
        if thread_ts and thread_ts != msg["ts"]:
            parent = self._find(team, channel, thread_ts)
            if parent is not None:
                parent["thread_ts"] = thread_ts
                parent["reply_count"] = parent.get("reply_count", 0) + 1
                parent["latest_reply"] = msg["ts"]

    @staticmethod
    def _find(team: Team, channel: str, ts: Any) -> JSON | None:
        return next((m for m in team.channels.get(channel, []) if m["ts"] == ts), None)

    @staticmethod
    def _view_msg(m: JSON, with_metadata: bool) -> JSON:
        return {k: v for k, v in m.items() if with_metadata or k != "metadata"}

    # ---------------------------------------------------------------- Web API methods
    def _auth_test(self, team: Team, args: JSON) -> JSON:
        return {"ok": True, "url": f"https://{team.name}.slack.com/", "team": team.name, "user": "liaisonbot",
                "team_id": team.team_id, "user_id": team.bot_user_id, "bot_id": team.bot_id,
                "is_enterprise_install": False}  # fmt: skip

    def _post_message(self, team: Team, args: JSON) -> JSON:
        channel = args.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not any(args.get(k) for k in ("text", "blocks", "attachments")):
            return {"ok": False, "error": "no_text"}
        msg: JSON = {"type": "message", "ts": self._next_ts(), "user": team.bot_user_id,
                               "bot_id": team.bot_id, "team": team.team_id, "text": args.get("text", "")}  # fmt: skip
        for k in ("blocks", "attachments", "thread_ts", "metadata"):
            if args.get(k):
                msg[k] = args[k]
        if msg.get("thread_ts") and _truthy(args.get("reply_broadcast")):
            msg["subtype"] = "thread_broadcast"
        self._store(team, channel, msg)
        return {"ok": True, "channel": channel, "ts": msg["ts"], "message": dict(msg)}

    def _chat_update(self, team: Team, args: JSON) -> JSON:
        msg = self._find(team, args.get("channel", ""), args.get("ts"))
        if msg is None:
            return {"ok": False, "error": "message_not_found"}
        for k in ("text", "blocks", "attachments", "metadata"):
            if k in args:
                msg[k] = args[k]
        msg["edited"] = {"user": team.bot_user_id, "ts": self._next_ts()}
        return {"ok": True, "channel": args["channel"], "ts": msg["ts"], "text": msg.get("text", ""),
                "message": dict(msg)}  # fmt: skip

    def _chat_delete(self, team: Team, args: JSON) -> JSON:
        msgs = team.channels.get(args.get("channel", ""), [])
        msg = self._find(team, args.get("channel", ""), args.get("ts"))
        if msg is None:
            return {"ok": False, "error": "message_not_found"}
        msgs.remove(msg)
        return {"ok": True, "channel": args["channel"], "ts": msg["ts"]}

    def _post_ephemeral(self, team: Team, args: JSON) -> JSON:
        if not args.get("channel") or not args.get("user"):
            return {"ok": False, "error": "channel_not_found" if not args.get("channel") else "user_not_in_channel"}
        return {"ok": True, "message_ts": self._next_ts()}

    def _permalink(self, team: Team, args: JSON) -> JSON:
        channel, ts = args.get("channel", ""), str(args.get("message_ts", ""))
        if self._find(team, channel, ts) is None:
            return {"ok": False, "error": "message_not_found"}
        url = f"https://{team.name}.slack.com/archives/{channel}/p{ts.replace('.', '')}"
        return {"ok": True, "channel": channel, "permalink": url}

    def _views_open(self, team: Team, args: JSON) -> JSON:
        if not args.get("trigger_id"):
            return {"ok": False, "error": "invalid_arguments"}
        view_id = f"V{next(self._ids):08d}"
        view = {**(args.get("view") or {}), "id": view_id, "team_id": team.team_id, "hash": uuid.uuid4().hex,
                "state": {"values": {}}, "bot_id": team.bot_id}  # fmt: skip
        self._views[view_id] = view
        return {"ok": True, "view": dict(view)}

    def _views_update(self, team: Team, args: JSON) -> JSON:
        view_id = args.get("view_id") or next(
            (
                v["id"]
                for v in self._views.values()
                if args.get("external_id") and v.get("external_id") == args["external_id"]
            ),
            None,
        )
        old = self._views.get(view_id or "")
        if old is None:
            return {"ok": False, "error": "not_found"}
        if args.get("hash") and args["hash"] != old["hash"]:
            return {"ok": False, "error": "hash_conflict"}
        view = {**old, **(args.get("view") or {}), "id": old["id"], "hash": uuid.uuid4().hex}
        self._views[old["id"]] = view
        return {"ok": True, "view": dict(view)}

    def _page(self, msgs: list[JSON], args: JSON) -> JSON:
        incl = int(_truthy(args.get("inclusive")))  # bounds are exclusive unless inclusive=true, like Slack
        lo = _ts_key(args.get("oldest") or 0) - incl
        hi = _ts_key(args["latest"]) + incl if args.get("latest") else None
        selected = [m for m in msgs if lo < _ts_key(m["ts"]) and (hi is None or _ts_key(m["ts"]) < hi)]
        start = int(str(args.get("cursor") or "off:0").split(":")[1])
        limit = int(args.get("limit") or 100)
        page, more = selected[start : start + limit], start + limit < len(selected)
        meta = _truthy(args.get("include_all_metadata"))
        return {"ok": True, "messages": [self._view_msg(m, meta) for m in page], "has_more": more,
                "response_metadata": {"next_cursor": f"off:{start + limit}" if more else ""}}  # fmt: skip

    def _history(self, team: Team, args: JSON) -> JSON:
        """Newest first; like Slack, thread replies are excluded unless broadcast to the channel."""
        msgs = [m for m in team.channels.get(args.get("channel", ""), [])
                if m.get("thread_ts") in (None, m["ts"]) or m.get("subtype") == "thread_broadcast"]  # fmt: skip
        return {**self._page(sorted(msgs, key=lambda m: -_ts_key(m["ts"])), args), "pin_count": 0}

    def _replies(self, team: Team, args: JSON) -> JSON:
        channel, ts = args.get("channel", ""), args.get("ts")
        parent = self._find(team, channel, ts)
        if parent is None:
            return {"ok": False, "error": "thread_not_found"}
        root = parent.get("thread_ts", parent["ts"])
        thread = [m for m in team.channels[channel] if m["ts"] == root or m.get("thread_ts") == root]
        return self._page(sorted(thread, key=lambda m: _ts_key(m["ts"])), args)

    def _conv_info(self, team: Team, args: JSON) -> JSON:
        cid = args.get("channel", "")
        if not cid:
            return {"ok": False, "error": "channel_not_found"}
        dm_user = next((u for u in team.users if self._dm_id(u) == cid), None)
        info = {"id": cid, "name": cid.lower(), "is_channel": cid[0] == "C", "is_group": cid[0] == "G",
                "is_im": cid[0] == "D", "is_private": cid[0] in "GD", "is_member": True, "is_archived": False,
                "context_team_id": team.team_id}  # fmt: skip
        if dm_user:
            info["user"] = dm_user
        return {"ok": True, "channel": info}

    @staticmethod
    def _dm_id(user_id: str) -> str:
        return "D" + hashlib.sha1(user_id.encode()).hexdigest()[:10].upper()

    def _conv_open(self, team: Team, args: JSON) -> JSON:
        users = args.get("users") or ""
        users = users.split(",") if isinstance(users, str) else list(users)
        users = [u.strip() for u in users if u.strip()]
        if not users and args.get("channel"):
            return {"ok": True, "channel": {"id": args["channel"]}}
        if not users:
            return {"ok": False, "error": "users_list_not_supplied"}
        if len(users) == 1:
            cid, extra = self._dm_id(users[0]), {"is_im": True, "user": users[0]}
        else:
            cid, extra = (
                "G" + hashlib.sha1(",".join(sorted(users)).encode()).hexdigest()[:10].upper(),
                {"is_mpim": True},
            )
        already = cid in team.channels
        team.channels.setdefault(cid, [])
        return {"ok": True, "no_op": already, "already_open": already, "channel": {"id": cid, **extra}}

    def _users_info(self, team: Team, args: JSON) -> JSON:
        user = team.users.get(args.get("user", ""))
        return {"ok": True, "user": dict(user)} if user else {"ok": False, "error": "user_not_found"}

    # ---------------------------------------------------------------- Socket Mode
    def _connections_open(self) -> JSON:
        ticket = uuid.uuid4().hex
        self._tickets.add(ticket)
        return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket?ticket={ticket}&app_id=A0FAKE"}

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            raise web.HTTPUnauthorized(text="invalid ticket")
        self._tickets.discard(ticket)  # tickets are single use, like Slack's
        ws = web.WebSocketResponse(autoping=True)  # autoping answers the SDK's "sdk-ping-pong:<t>" pings
        await ws.prepare(request)
        self._sockets.append(ws)
        try:
            await ws.send_json({"type": "hello", "num_connections": len(self._sockets),
                                "debug_info": {"host": "fake-slack", "approximate_connection_time": 18060},
                                "connection_info": {"app_id": "A0FAKE"}})  # fmt: skip
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                self._record("socket_ack", None, data, 200, None)
                fut = self._acks.pop(data.get("envelope_id", ""), None)
                if fut is not None and not fut.done():
                    fut.set_result(data)
        finally:
            self._sockets.remove(ws)
        return ws

    @property
    def socket_connections(self) -> int:
        """Number of currently open Socket Mode connections."""
        return sum(not ws.closed for ws in self._sockets)

    async def socket_send(
        self,
        envelope_type: str,
        payload: JSON,
        accepts_response_payload: bool = False,
        *,
        retry_attempt: int = 0,
        retry_reason: str = "",
        timeout: float = 5.0,
    ) -> asyncio.Future[JSON]:
        """Send an envelope to the newest open Socket Mode connection (waiting up to ``timeout`` for one).

        Returns a future resolved with the client's ack ``{"envelope_id": ..., "payload"?: ...}``.
        """
        await self.wait_for(lambda: self.socket_connections, timeout)
        envelope_id = str(uuid.uuid4())
        envelope: JSON = {"envelope_id": envelope_id, "type": envelope_type, "payload": payload,
                                    "accepts_response_payload": accepts_response_payload}  # fmt: skip
        if envelope_type == "events_api":
            envelope.update(retry_attempt=retry_attempt, retry_reason=retry_reason)
        fut: asyncio.Future[JSON] = asyncio.get_running_loop().create_future()
        self._acks[envelope_id] = fut
        ws = [w for w in self._sockets if not w.closed][-1]
        await ws.send_json(envelope)
        return fut

    async def socket_request(self, envelope_type: str, payload: JSON, timeout: float = 5.0, **kw: Any) -> JSON:
        """``socket_send`` and wait (bounded) for the ack."""
        fut = await self.socket_send(envelope_type, payload, timeout=timeout, **kw)
        return await asyncio.wait_for(fut, timeout)

    async def socket_disconnect(self, reason: str = "refresh_requested") -> None:
        """Send Slack's ``{"type": "disconnect"}``; the SDK then reconnects via ``apps.connections.open``."""
        for ws in [w for w in self._sockets if not w.closed]:
            await ws.send_json({"type": "disconnect", "reason": reason, "debug_info": {"host": "fake-slack"}})


# -------------------------------------------------------------------- request builders
def signed_headers(signing_secret: str, body: bytes | str, timestamp: int | None = None) -> dict[str, str]:
    """Slack request-signing headers (plus a matching Content-Type) for ``body``."""
    raw = body.encode() if isinstance(body, str) else body
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(signing_secret.encode(), b"v0:" + ts.encode() + b":" + raw, hashlib.sha256).hexdigest()
    ctype = "application/json" if raw.lstrip()[:1] == b"{" else "application/x-www-form-urlencoded"
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}", "Content-Type": ctype}


def slash_command_payload(
    command: str = "/liaison",
    text: str = "",
    user_id: str = "U0USER",
    channel_id: str = "C0CHAN",
    team_id: str = "T0DEFAULT",
    response_url: str = "http://127.0.0.1:9/unset-response-url",
    trigger_id: str | None = None,
    user_name: str = "user",
    channel_name: str = "general",
    api_app_id: str = "A0FAKE",
) -> dict[str, str]:
    """Slash-command fields as Slack sends them (also the Socket Mode ``slash_commands`` payload).
    Each gets a trigger id of its own, as every invocation does on Slack."""
    trigger_id = trigger_id or f"1337.42.{uuid.uuid4().hex[:12]}"
    return {"token": "fake-verification-token", "team_id": team_id, "team_domain": team_id.lower(),
            "channel_id": channel_id, "channel_name": channel_name, "user_id": user_id, "user_name": user_name,
            "command": command, "text": text, "api_app_id": api_app_id, "is_enterprise_install": "false",
            "response_url": response_url, "trigger_id": trigger_id}  # fmt: skip


def slash_command_body(command: str = "/liaison", text: str = "", **kw: Any) -> bytes:
    """Form-encoded slash-command HTTP body (see ``slash_command_payload`` for keyword args)."""
    return urlencode(slash_command_payload(command, text, **kw)).encode()


def event_envelope(
    event: JSON,
    team_id: str = "T0DEFAULT",
    event_id: str | None = None,
    api_app_id: str = "A0FAKE",
    bot_user_id: str = "U0BOT",
) -> JSON:
    """``event_callback`` envelope (also the Socket Mode ``events_api`` payload)."""
    return {"token": "fake-verification-token", "team_id": team_id, "api_app_id": api_app_id, "event": event,
            "type": "event_callback", "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
            "event_time": int(time.time()), "is_ext_shared_channel": False,
            "authorizations": [{"enterprise_id": None, "team_id": team_id, "user_id": bot_user_id,
                                "is_bot": True, "is_enterprise_install": False}]}  # fmt: skip


def event_body(
    event: JSON, team_id: str = "T0DEFAULT", event_id: str | None = None, api_app_id: str = "A0FAKE"
) -> bytes:
    """JSON ``event_callback`` HTTP body."""
    return json.dumps(event_envelope(event, team_id, event_id, api_app_id)).encode()


def interaction_body(payload: JSON) -> bytes:
    """Form-encoded interactivity body (``payload=<json>``)."""
    return urlencode({"payload": json.dumps(payload)}).encode()
