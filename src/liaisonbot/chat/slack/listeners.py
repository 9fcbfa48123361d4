"""Slack inbound: what each request is (the door), and its work (run from the inbox).

**The door** (:class:`Door`). Bolt verifies a request (signature, workspace) and routes it to a
recorder here, which acknowledges it and names what to keep: an :class:`InboxEntry` with its
Slack identity (``command:TEAM:TRIGGER``, ``event:EVENT``, ``action:TEAM:USER:ACTION_TS``,
``view:VIEW``), the channel, and the payload the work needs (the verified body without its
verification token). Recorders do no I/O; the platform writes the entry before the
acknowledgement leaves (``platform.SlackPlatform``). What the bot never acts on (another
bot's post, a message outside any thread, a reply count changing) is acknowledged without an
entry.

**The work** (:class:`SlackWork`, the inbox's handler for ``slack`` rows) translates an entry
into one desk call, in a lane of :class:`~liaisonbot.chat.slack.priority.AckFirst` (bounded,
behind pending acknowledgements), and hands the desk the row's ticket: the command's changes,
its posts, the person's reply and the row's done mark commit together. Replies to the person who
typed are ephemeral and go through the outbox (``SlackGateway``: the response URL, else
``chat.postEphemeral``). Opening a form is not queued: its ``trigger_id`` expires 3 s after
the click.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import html
import json
import logging
import re
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

from slack_bolt.async_app import AsyncApp

from liaisonbot.bootstrap import Core
from liaisonbot.chat.formatting import from_slack
from liaisonbot.chat.slack import forms, texts
from liaisonbot.chat.slack.priority import AckFirst
from liaisonbot.chat.slack.teams import Teams
from liaisonbot.domain.model import CARD_ACTIONS, changes_state
from liaisonbot.service.desk import Actor, Privately
from liaisonbot.service.i18n import Words, words
from liaisonbot.service.inbox import Ticket
from liaisonbot.service.ports import InboxEntry, InboxItem

log = logging.getLogger(__name__)

IGNORED_SUBTYPES = frozenset({"bot_message", "message_changed", "message_deleted",
                              "channel_join", "channel_leave", "thread_broadcast_deleted"})
BUTTON = re.compile(rf"^lb_({'|'.join(CARD_ACTIONS)})$")
#: Where a recorder leaves its entry on the Bolt request's context for the platform.
ENTRY = "liaisonbot_inbox_entry"
#: What is never kept of a payload: Slack's legacy verification token.
NOT_KEPT = frozenset({"token"})


def unescape(text: str) -> str:
    """Slack sends ``&``, ``<``, ``>`` escaped; the desk keeps raw text (renderers escape)."""
    return html.unescape(text or "") if "&" in (text or "") else (text or "")


def slash_base_key(team: str, user: str, channel: str, text: str) -> str:
    digest = hashlib.sha256(" ".join(text.split()).encode(errors="replace")).hexdigest()[:32]
    return f"slash:{team}:{user}:{channel}:{digest}"


def slash_keys(team: str, user: str, channel: str, text: str, at: datetime) -> list[str]:
    """The dedupe keys of a state-changing slash command that arrived at ``at``: that minute's
    and the next's.

    Both are recorded by the desk in the command's own transaction, under a unique
    constraint, so a repeat in the same or the next calendar minute (at least 60 s, at most
    120 s after the first) collides with one of them and opens nothing, even when the two
    arrive at once on either side of a minute boundary (or are worked minutes later, after a
    restart: the minute is the arrival's).
    """
    minute = int(at.timestamp() // 60)
    base = slash_base_key(team, user, channel, text)
    return [f"{base}:{minute}", f"{base}:{minute + 1}"]


def wanted_message(event: dict[str, Any], bot: str) -> bool:
    """A ``message`` event the desk may act on: a person's reply in a thread (not a command
    to the bot: those come as ``app_mention``), a person's edit of one, or a deletion."""
    subtype = event.get("subtype")
    if subtype == "message_changed":
        message, before = event.get("message") or {}, event.get("previous_message") or {}
        user = message.get("user", "")
        return bool(user and user != bot and not message.get("bot_id")
                    and message.get("thread_ts") and message.get("text") != before.get("text"))
    if subtype == "message_deleted":
        before = event.get("previous_message") or {}
        return not (before.get("bot_id") or (bot and before.get("user") == bot))
    user, thread_ts = event.get("user", ""), event.get("thread_ts")
    return not (subtype in IGNORED_SUBTYPES or event.get("bot_id") or not user
                or user == bot or not thread_ts or thread_ts == event.get("ts")
                or (bot and f"<@{bot}" in event.get("text", "")))


def _kept(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in NOT_KEPT}


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _recorder(record: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """A recorder that cannot fail into Bolt: a payload it cannot read is logged and
    acknowledged without an entry (Slack would only send it again)."""

    @functools.wraps(record)  # Bolt reads the recorder's signature to pick its arguments
    async def safe(self: Door, **kwargs: Any) -> None:
        try:
            await record(self, **kwargs)
        except Exception as error:
            log.exception("slack request not understood", extra={
                "listener": record.__name__, "error": type(error).__name__})
            kwargs["context"].pop(ENTRY, None)
            ack = kwargs.get("ack")
            if ack is not None:
                await ack()

    return safe


class Door:
    """The Bolt listeners: each acknowledges its request and names its inbox entry."""

    def __init__(self, command: str = "/liaison") -> None:
        self.command = command

    def register(self, app: AsyncApp) -> None:
        app.command(self.command)(self.command_received)
        # Bolt acknowledges events itself once the recorder returned.
        app.event("app_mention")(self.mention_received)
        app.event("message")(self.message_received)
        app.action(BUTTON)(self.button_received)
        app.view(forms.OPEN_CALLBACK)(self.view_received)
        app.view(forms.ACTION_CALLBACK)(self.view_received)

    @_recorder
    async def command_received(self, ack: Any, body: dict[str, Any], context: Any) -> None:
        team, channel = body.get("team_id", ""), body.get("channel_id", "")
        trigger = body.get("trigger_id") or hashlib.sha256(_json(body).encode()).hexdigest()
        form = unescape(body.get("text", "")).strip().lower() == "open"
        context[ENTRY] = InboxEntry("slack", f"command:{team}:{trigger}",
                                    "form" if form else "command", f"slack:{team}/{channel}",
                                    _json(_kept(body)))
        await ack()

    @_recorder
    async def mention_received(self, body: dict[str, Any], event: dict[str, Any],
                               context: Any) -> None:
        if event.get("user") and not event.get("bot_id"):
            context[ENTRY] = self._event(body, event, "mention")

    @_recorder
    async def message_received(self, body: dict[str, Any], event: dict[str, Any],
                               context: Any) -> None:
        if wanted_message(event, context.get("bot_user_id") or ""):
            context[ENTRY] = self._event(body, event, "message")

    @staticmethod
    def _event(body: dict[str, Any], event: dict[str, Any], kind: str) -> InboxEntry:
        team = body.get("team_id") or event.get("team", "")
        payload = {"team_id": team, "event_id": body.get("event_id"), "event": event}
        return InboxEntry("slack", f"event:{body.get('event_id')}", kind,
                          f"slack:{team}/{event.get('channel', '')}", _json(payload))

    @_recorder
    async def button_received(self, ack: Any, body: dict[str, Any], action: dict[str, Any],
                              context: Any) -> None:
        verb = BUTTON.match(action["action_id"]).group(1)  # type: ignore[union-attr]
        team = (body.get("team") or {}).get("id") or body["user"].get("team_id", "")
        user, channel = body["user"]["id"], (body.get("channel") or {}).get("id", "")
        payload = {"team": team, "user": body["user"], "channel": body.get("channel") or {},
                   "message_ts": (body.get("message") or {}).get("ts"),
                   "trigger_id": body.get("trigger_id"),
                   "action": {k: action.get(k) for k in ("action_id", "value", "action_ts")}}
        context[ENTRY] = InboxEntry(
            "slack", f"action:{team}:{user}:{action.get('action_ts')}",
            "form" if verb in forms.TEXT_VERBS else "action", f"slack:{team}/{channel}",
            _json(payload))
        await ack()

    @_recorder
    async def view_received(self, ack: Any, body: dict[str, Any], view: dict[str, Any],
                            context: Any) -> None:
        origin = forms.Origin.load(view.get("private_metadata", ""))
        team = origin.team or body["user"].get("team_id", "")
        payload = {"user": body["user"], "view": {
            k: view.get(k) for k in ("id", "callback_id", "private_metadata", "state")}}
        context[ENTRY] = InboxEntry("slack", f"view:{view.get('id')}", "view",
                                    f"slack:{team}/{origin.channel}", _json(payload))
        await ack()


class SlackWork:
    """The inbox's handler for ``slack`` rows: each one through the desk (see the module)."""

    def __init__(self, core: Core, teams: Teams, priority: AckFirst | None = None) -> None:
        self.core = core
        self.teams = teams
        self.priority = priority or AckFirst()
        self._names: dict[str, str] = {}
        self._kinds: dict[str, Callable[[dict[str, Any], InboxItem, Ticket],
                                        Awaitable[None]]] = {
            "command": self.command, "form": self.form, "mention": self.mention,
            "message": self.message, "action": self.button, "view": self.submitted}

    def lane(self, item: InboxItem) -> AbstractAsyncContextManager[None]:
        if item.kind == "form":  # its trigger_id expires 3 s after the click: never queued
            return contextlib.nullcontext()
        return self.priority.lane()

    async def work(self, item: InboxItem, ticket: Ticket) -> None:
        run = self._kinds.get(item.kind)
        if run is None:  # a kind a newer release wrote: nothing this one can do
            log.warning("slack inbox row of an unknown kind", extra={
                "inbox_id": item.id, "kind": item.kind})
            return
        await run(json.loads(item.payload), item, ticket)

    # ---------------------------------------------------------------- slash command

    async def command(self, body: dict[str, Any], item: InboxItem, ticket: Ticket) -> None:
        team, user, channel = body.get("team_id", ""), body["user_id"], body["channel_id"]
        self.teams.seen(team, channel)
        text = unescape(body.get("text", "")).strip()
        keys: list[str] = []
        if changes_state(text.split(" ", 1)[0].lower()):
            keys = slash_keys(team, user, channel, text, item.received_at)
        actor = Actor(f"slack:{team}/{user}", f"slack:{team}/{channel}",
                      body.get("user_name") or await self._name(team, user))
        await self.core.desk.handle_command(
            actor, text, event_id=keys[0] if keys else None, also_mark=keys[1:],
            reply_in_room=False, replay=texts.DUPLICATE_COMMAND, settle=ticket,
            privately=self._privately(team, user, channel,
                                      response_url=body.get("response_url")))

    async def form(self, body: dict[str, Any], item: InboxItem, ticket: Ticket) -> None:
        """``/liaison open`` alone, or a button that asks for text: open the form. A trigger
        that expired meanwhile (a restart) cannot open it any more: logged, and done."""
        try:
            if "action" in body:
                await self._action_form(body)
            else:
                self.teams.seen(body.get("team_id", ""), body.get("channel_id", ""))
                await self._open_form(body.get("team_id", ""), body.get("channel_id", ""),
                                      body.get("trigger_id", ""))
        except Exception as error:
            log.warning("slack form could not be opened", extra={
                "inbox_id": item.id, "error": type(error).__name__})

    async def _open_form(self, team: str, channel: str, trigger_id: str,
                         thread_ts: str | None = None) -> None:
        directory = self.core.settings.directory
        own = directory.office_for_room(f"slack:{team}/{channel}")
        offices = [(o.slug, o.name) for o in directory.offices if own is None or o is not own]
        origin = forms.Origin(team, channel, thread_ts)
        await self._client(team).views_open(trigger_id=trigger_id, view=forms.open_view(
            origin, offices, self._words(team, channel)))

    async def _action_form(self, body: dict[str, Any]) -> None:
        action = body["action"]
        verb = BUTTON.match(action["action_id"]).group(1)  # type: ignore[union-attr]
        team, channel = body["team"], body["channel"].get("id", "")
        origin = forms.Origin(team, channel, body.get("message_ts"), verb,
                              str(action.get("value", "")))
        await self._client(team).views_open(
            trigger_id=body["trigger_id"],
            view=forms.action_view(origin, self._words(team, channel)))

    # ---------------------------------------------------------------- events

    async def mention(self, body: dict[str, Any], item: InboxItem, ticket: Ticket) -> None:
        event = body["event"]
        team = body.get("team_id") or event.get("team", "")
        channel, user = event.get("channel", ""), event.get("user", "")
        if not user or event.get("bot_id"):
            return
        self.teams.seen(team, channel)
        bot = await self._bot(team)
        text = re.sub(rf"<@{re.escape(bot)}(?:\|[^>]*)?>", " ", event.get("text", "")) if bot \
            else event.get("text", "")
        text = re.sub(r"^\s*[!/]?liaison\b", "", unescape(text).strip()).strip()
        thread_ts = event.get("thread_ts")
        actor = Actor(f"slack:{team}/{user}", f"slack:{team}/{channel}",
                      await self._name(team, user), thread_ts)
        await self.core.desk.handle_command(
            actor, text, event_id=f"event:{body.get('event_id')}", reply_in_room=False,
            settle=ticket, privately=self._privately(team, user, channel, thread_ts=thread_ts))

    async def message(self, body: dict[str, Any], item: InboxItem, ticket: Ticket) -> None:
        event = body["event"]
        team = body.get("team_id") or event.get("team", "")
        bot = await self._bot(team)
        if not wanted_message(event, bot):
            return
        if event.get("subtype") in ("message_changed", "message_deleted"):
            await self._changed(team, bot, body, event, ticket)
            return
        channel, user = event.get("channel", ""), event.get("user", "")
        self.teams.seen(team, channel)
        files = [(str(f.get("name") or f.get("title") or "file"), int(f.get("size") or 0))
                 for f in event.get("files") or []]
        actor = Actor(f"slack:{team}/{user}", f"slack:{team}/{channel}",
                      await self._name(team, user), event.get("thread_ts"))
        await self.core.desk.relay(actor, await self._neutral(team, event.get("text", "")),
                                   event_id=f"event:{body.get('event_id')}", files=files,
                                   source_ref=f"slack:{team}/{channel}#{event.get('ts')}",
                                   settle=ticket)

    async def _changed(self, team: str, bot: str, body: dict[str, Any],
                       event: dict[str, Any], ticket: Ticket) -> None:
        """An edited or deleted message: carried over when it was a person's relayed message.
        The bot's own edits and deletions (its relay copies, its cards) are never followed."""
        channel = event.get("channel", "")
        room, event_id = f"slack:{team}/{channel}", f"event:{body.get('event_id')}"
        if event.get("subtype") == "message_changed":
            message = event.get("message") or {}
            actor = Actor(f"slack:{team}/{message.get('user', '')}", room,
                          await self._name(team, message.get("user", "")),
                          message.get("thread_ts"))
            await self.core.desk.relay_edit(
                actor, f"{room}#{message.get('ts')}",
                await self._neutral(team, message.get("text", "")), event_id=event_id,
                settle=ticket)
            return
        before = event.get("previous_message") or {}
        user = before.get("user", "")
        actor = Actor(f"slack:{team}/{user}", room, user, before.get("thread_ts"))
        ts = event.get("deleted_ts") or before.get("ts")
        await self.core.desk.relay_delete(actor, f"{room}#{ts}", event_id=event_id,
                                          settle=ticket)

    async def _neutral(self, team: str, text: str) -> str:
        """Slack mrkdwn → the desk's neutral markup, user mentions as display names."""
        names = {uid: await self._name(team, uid)
                 for uid in set(re.findall(r"<@([UW][A-Z0-9]+)", text or ""))}
        return from_slack(text or "", names.get)

    # ---------------------------------------------------------------- buttons and forms

    async def button(self, body: dict[str, Any], item: InboxItem, ticket: Ticket) -> None:
        action = body["action"]
        verb = BUTTON.match(action["action_id"]).group(1)  # type: ignore[union-attr]
        team, user = body["team"], body["user"]["id"]
        channel = body["channel"].get("id", "")
        actor = Actor(f"slack:{team}/{user}", f"slack:{team}/{channel}",
                      await self._name(team, user), body.get("message_ts"))
        await self.core.desk.handle_command(
            actor, f"{verb} {action.get('value', '')}",
            event_id=f"action:{team}:{user}:{action.get('action_ts')}", reply_in_room=False,
            settle=ticket, privately=self._privately(team, user, channel))

    async def submitted(self, body: dict[str, Any], item: InboxItem, ticket: Ticket) -> None:
        view = body["view"]
        origin = forms.Origin.load(view.get("private_metadata") or "")
        user = body["user"]["id"]
        team = origin.team or body["user"].get("team_id", "")
        text = forms.open_command(forms.values(view)) \
            if view.get("callback_id") == forms.OPEN_CALLBACK \
            else forms.action_command(origin, forms.values(view))
        actor = Actor(f"slack:{team}/{user}", f"slack:{team}/{origin.channel}",
                      await self._name(team, user), origin.thread_ts)
        await self.core.desk.handle_command(
            actor, text, event_id=f"view:{view.get('id')}", reply_in_room=False,
            settle=ticket, privately=self._privately(team, user, origin.channel))

    # ---------------------------------------------------------------- plumbing

    @staticmethod
    def _privately(team: str, user: str, channel: str, *, thread_ts: str | None = None,
                   response_url: str | None = None) -> Privately:
        """The person's ephemeral reply: through the command's ``response_url`` when it has
        one (valid 30 minutes, so a reply worked after a restart still reaches them), else
        ``chat.postEphemeral`` in the channel (and thread)."""
        where: dict[str, Any] = {"channel": channel, "user": user}
        if thread_ts:
            where["thread_ts"] = thread_ts
        if response_url:
            where["response_url"] = response_url
        return Privately(f"slack:{team}/{user}", {"ephemeral": where})

    def _words(self, team: str, channel: str) -> Words:
        """The channel's office's language (English for an unbound channel)."""
        office = self.core.settings.directory.office_for_room(f"slack:{team}/{channel}")
        return words(office.language if office else "en")

    def _client(self, team: str) -> Any:
        found = self.teams.get(team)
        if found is None:
            raise LookupError(f"no token for Slack team {team}")
        return found.client

    async def _bot(self, team: str) -> str:
        """The bot's own user id in ``team`` (its workspace checked when not known yet)."""
        found = self.teams.get(team)
        if found is None or not found.ok:
            await self.teams.check()
            found = self.teams.get(team)
        return found.bot_user_id if found is not None else ""

    async def _name(self, team: str, user: str) -> str:
        """The person's display name (``users.info``, cached), else their id."""
        key = f"{team}/{user}"
        if key not in self._names:
            try:
                info = await self._client(team).users_info(user=user)
                profile = info["user"].get("profile") or {}
                self._names[key] = (profile.get("display_name") or profile.get("real_name")
                                    or info["user"].get("name") or user)
            except Exception:
                return user
        return self._names[key]
