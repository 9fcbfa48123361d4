"""Bolt listeners: they translate Slack payloads into desk calls and send the replies back.

Every listener acknowledges first (Slack gives 3 s) and works after, in a lane of
:class:`~liaisonbot.chat.slack.priority.AckFirst` (bounded, behind pending acknowledgements), so
the work never delays the next ack. Opening a modal is the exception: its ``trigger_id`` expires
3 s after the click, so it is not queued. Replies to the person who typed are ephemeral;
everything lasting (cards, notes, relays) goes through the outbox.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import html
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp

from liaisonbot.bootstrap import Core
from liaisonbot.chat.formatting import from_slack
from liaisonbot.chat.slack import forms, texts
from liaisonbot.chat.slack.gateway import reply_payload
from liaisonbot.chat.slack.priority import AckFirst
from liaisonbot.chat.slack.teams import Teams
from liaisonbot.domain.cards import Post
from liaisonbot.domain.model import CARD_ACTIONS, changes_state
from liaisonbot.service import messages as m
from liaisonbot.service.desk import Actor, Outcome
from liaisonbot.service.i18n import Words, words

log = logging.getLogger(__name__)

IGNORED_SUBTYPES = frozenset({"bot_message", "message_changed", "message_deleted",
                              "channel_join", "channel_leave", "thread_broadcast_deleted"})
BUTTON = re.compile(rf"^lb_({'|'.join(CARD_ACTIONS)})$")


def unescape(text: str) -> str:
    """Slack sends ``&``, ``<``, ``>`` escaped; the desk keeps raw text (renderers escape)."""
    return html.unescape(text or "") if "&" in (text or "") else (text or "")


def slash_base_key(team: str, user: str, channel: str, text: str) -> str:
    digest = hashlib.sha256(" ".join(text.split()).encode(errors="replace")).hexdigest()[:32]
    return f"slash:{team}:{user}:{channel}:{digest}"


class Inbound:
    """Registers the listeners on a Bolt app and runs what they receive through the desk."""

    def __init__(self, core: Core, teams: Teams, command: str = "/liaison",
                 priority: AckFirst | None = None) -> None:
        self.core = core
        self.teams = teams
        self.command = command
        self.priority = priority or AckFirst()
        self._names: dict[str, str] = {}
        #: Listener runs still working after their ack (Bolt finishes them in the background).
        self.inflight: set[asyncio.Task[Any]] = set()

    def register(self, app: AsyncApp) -> None:
        app.command(self.command)(self._tracked(self.on_command))
        # Bolt acknowledges events itself before the listener runs: all of it is after-ack work.
        app.event("app_mention")(self._tracked(self.on_mention, acked=True))
        app.event("message")(self._tracked(self.on_message, acked=True))
        app.action(BUTTON)(self._tracked(self.on_button))
        app.view(forms.OPEN_CALLBACK)(self._tracked(self.on_open_form))
        app.view(forms.ACTION_CALLBACK)(self._tracked(self.on_action_form))

    def _tracked(self, listener: Callable[..., Awaitable[None]],
                 acked: bool = False) -> Callable[..., Awaitable[None]]:
        """The listener, counted in ``inflight`` while it runs (Bolt reads the wrapped
        signature to pick the arguments it passes by name); ``acked`` (Bolt acknowledged
        already) runs all of it in a lane."""

        @functools.wraps(listener)
        async def run(**kwargs: Any) -> None:
            task = asyncio.current_task()
            if task is not None:
                self.inflight.add(task)
            try:
                if acked:
                    async with self.priority.lane():
                        await listener(**kwargs)
                else:
                    await listener(**kwargs)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # never up into Bolt: one event cannot end the loop
                log.exception("slack listener failed", extra={
                    "listener": listener.__name__, "error": type(error).__name__})
            finally:
                if task is not None:
                    self.inflight.discard(task)

        return run

    async def quiesce(self, timeout: float) -> None:  # noqa: ASYNC109 (a drain budget)
        """Wait (bounded) for acknowledged commands and events to finish their work."""
        if self.inflight:
            await asyncio.wait(set(self.inflight), timeout=timeout)

    # ---------------------------------------------------------------- slash command

    async def on_command(self, ack: Any, body: dict[str, Any], respond: Any) -> None:
        await ack()
        team, user, channel = body.get("team_id", ""), body["user_id"], body["channel_id"]
        self.teams.seen(team, channel)
        text = unescape(body.get("text", "")).strip()
        if text.lower() == "open":
            await self._open_form(team, channel, body.get("trigger_id", ""))
            return
        keys: list[str] = []
        if changes_state(text.split(" ", 1)[0].lower()):
            keys = self.slash_keys(team, user, channel, text)  # the minute it arrived
        async with self.priority.lane():
            actor = Actor(f"slack:{team}/{user}", f"slack:{team}/{channel}",
                          body.get("user_name") or await self._name(team, user))
            outcome = await self._run(actor, text, keys[0] if keys else None,
                                      also_mark=keys[1:])
            reply = outcome.reply if outcome else None
            payload = reply_payload(reply, team) if reply else \
                {"text": self._words(team, channel)(texts.DUPLICATE_COMMAND)}
            await respond(response_type="ephemeral", **payload)

    def slash_keys(self, team: str, user: str, channel: str, text: str) -> list[str]:
        """The dedupe keys of a state-changing slash command: this minute's and the next's.

        Both are recorded by the desk in the command's own transaction, under a unique
        constraint, so a repeat in the same or the next calendar minute (at least 60 s, at most
        120 s after the first) collides with one of them and opens nothing, even when the two
        arrive at once on either side of a minute boundary.
        """
        minute = int(self.core.clock.now().timestamp() // 60)
        base = slash_base_key(team, user, channel, text)
        return [f"{base}:{minute}", f"{base}:{minute + 1}"]

    async def _open_form(self, team: str, channel: str, trigger_id: str,
                         thread_ts: str | None = None) -> None:
        directory = self.core.settings.directory
        own = directory.office_for_room(f"slack:{team}/{channel}")
        offices = [(o.slug, o.name) for o in directory.offices if own is None or o is not own]
        origin = forms.Origin(team, channel, thread_ts)
        client = self._client(team)
        await client.views_open(trigger_id=trigger_id, view=forms.open_view(
            origin, offices, self._words(team, channel)))

    # ---------------------------------------------------------------- events

    async def on_mention(self, body: dict[str, Any], event: dict[str, Any],
                         context: Any) -> None:
        team = body.get("team_id") or event.get("team", "")
        channel, user = event.get("channel", ""), event.get("user", "")
        if not user or event.get("bot_id"):
            return
        self.teams.seen(team, channel)
        bot = context.get("bot_user_id") or ""
        text = re.sub(rf"<@{re.escape(bot)}(?:\|[^>]*)?>", " ", event.get("text", "")) if bot \
            else event.get("text", "")
        text = re.sub(r"^\s*[!/]?liaison\b", "", unescape(text).strip()).strip()
        thread_ts = event.get("thread_ts")
        actor = Actor(f"slack:{team}/{user}", f"slack:{team}/{channel}",
                      await self._name(team, user), thread_ts)
        outcome = await self._run(actor, text, f"event:{body.get('event_id')}")
        if outcome is not None:
            await self._ephemeral(team, channel, user, outcome.reply, thread_ts)

    async def on_message(self, body: dict[str, Any], event: dict[str, Any],
                         context: Any) -> None:
        team = body.get("team_id") or event.get("team", "")
        bot = context.get("bot_user_id") or ""
        if event.get("subtype") in ("message_changed", "message_deleted"):
            await self._changed(team, bot, body, event)
            return
        user, thread_ts = event.get("user", ""), event.get("thread_ts")
        if (event.get("subtype") in IGNORED_SUBTYPES or event.get("bot_id") or not user
                or user == bot or not thread_ts or thread_ts == event.get("ts")
                or (bot and f"<@{bot}" in event.get("text", ""))):
            return  # not a person's reply in a thread, or a command (handled as app_mention)
        channel = event.get("channel", "")
        self.teams.seen(team, channel)
        files = [(str(f.get("name") or f.get("title") or "file"), int(f.get("size") or 0))
                 for f in event.get("files") or []]
        actor = Actor(f"slack:{team}/{user}", f"slack:{team}/{channel}",
                      await self._name(team, user), thread_ts)
        await self.core.desk.relay(actor, await self._neutral(team, event.get("text", "")),
                                   event_id=f"event:{body.get('event_id')}", files=files,
                                   source_ref=f"slack:{team}/{channel}#{event.get('ts')}")

    async def _changed(self, team: str, bot: str, body: dict[str, Any],
                       event: dict[str, Any]) -> None:
        """An edited or deleted message: carried over when it was a person's relayed message.
        The bot's own edits and deletions (its relay copies, its cards) are never followed."""
        channel = event.get("channel", "")
        room, event_id = f"slack:{team}/{channel}", f"event:{body.get('event_id')}"
        if event.get("subtype") == "message_changed":
            message, before = event.get("message") or {}, event.get("previous_message") or {}
            user = message.get("user", "")
            if (not user or user == bot or message.get("bot_id") or not message.get("thread_ts")
                    or message.get("text") == before.get("text")):
                return  # not a person's words that changed (a reply count, an unfurl…)
            actor = Actor(f"slack:{team}/{user}", room, await self._name(team, user),
                          message.get("thread_ts"))
            await self.core.desk.relay_edit(
                actor, f"{room}#{message.get('ts')}",
                await self._neutral(team, message.get("text", "")), event_id=event_id)
            return
        before = event.get("previous_message") or {}
        user = before.get("user", "")
        if before.get("bot_id") or (bot and user == bot):
            return
        actor = Actor(f"slack:{team}/{user}", room, user, before.get("thread_ts"))
        ts = event.get("deleted_ts") or before.get("ts")
        await self.core.desk.relay_delete(actor, f"{room}#{ts}", event_id=event_id)

    async def _neutral(self, team: str, text: str) -> str:
        """Slack mrkdwn → the desk's neutral markup, user mentions as display names."""
        names = {uid: await self._name(team, uid)
                 for uid in set(re.findall(r"<@([UW][A-Z0-9]+)", text or ""))}
        return from_slack(text or "", names.get)

    # ---------------------------------------------------------------- buttons and forms

    async def on_button(self, ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        verb = BUTTON.match(action["action_id"]).group(1)  # type: ignore[union-attr]
        team = (body.get("team") or {}).get("id") or body["user"].get("team_id", "")
        channel, user = body["channel"]["id"], body["user"]["id"]
        card_ts = (body.get("message") or {}).get("ts")
        ref = str(action.get("value", ""))
        if verb in forms.TEXT_VERBS:
            origin = forms.Origin(team, channel, card_ts, verb, ref)
            await self._client(team).views_open(trigger_id=body["trigger_id"],
                                                view=forms.action_view(
                                                    origin, self._words(team, channel)))
            return
        async with self.priority.lane():
            actor = Actor(f"slack:{team}/{user}", f"slack:{team}/{channel}",
                          await self._name(team, user), card_ts)
            outcome = await self._run(actor, f"{verb} {ref}",
                                      f"action:{team}:{user}:{action.get('action_ts')}")
            if outcome is not None:
                await self._ephemeral(team, channel, user, outcome.reply, None)

    async def on_open_form(self, ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        await ack()
        origin = forms.Origin.load(view.get("private_metadata", ""))
        await self._submitted(body, view, origin, forms.open_command(forms.values(view)))

    async def on_action_form(self, ack: Any, body: dict[str, Any],
                             view: dict[str, Any]) -> None:
        await ack()
        origin = forms.Origin.load(view.get("private_metadata", ""))
        await self._submitted(body, view, origin,
                              forms.action_command(origin, forms.values(view)))

    async def _submitted(self, body: dict[str, Any], view: dict[str, Any],
                         origin: forms.Origin, text: str) -> None:
        user = body["user"]["id"]
        team = origin.team or body["user"].get("team_id", "")
        async with self.priority.lane():
            actor = Actor(f"slack:{team}/{user}", f"slack:{team}/{origin.channel}",
                          await self._name(team, user), origin.thread_ts)
            outcome = await self._run(actor, text, f"view:{view.get('id')}")
            if outcome is not None:
                await self._ephemeral(team, origin.channel, user, outcome.reply, None)

    # ---------------------------------------------------------------- plumbing

    async def _run(self, actor: Actor, text: str, key: str | None,
                   also_mark: list[str] | None = None) -> Outcome | None:
        try:
            return await self.core.desk.handle_command(actor, text, event_id=key,
                                                       reply_in_room=False,
                                                       also_mark=also_mark or ())
        except Exception:  # the person must hear something, never silence
            log.exception("slack command failed", extra={"room": actor.room})
            return Outcome(Post(kind="reply", text=m.INTERNAL_ERROR), ok=False)

    def _words(self, team: str, channel: str) -> Words:
        """The channel's office's language (English for an unbound channel)."""
        office = self.core.settings.directory.office_for_room(f"slack:{team}/{channel}")
        return words(office.language if office else "en")

    def _client(self, team: str) -> Any:
        found = self.teams.get(team)
        if found is None:
            raise LookupError(f"no token for Slack team {team}")
        return found.client

    async def _ephemeral(self, team: str, channel: str, user: str, post: Post,
                         thread_ts: str | None) -> None:
        extra = {"thread_ts": thread_ts} if thread_ts else {}
        try:
            await self._client(team).chat_postEphemeral(channel=channel, user=user, **extra,
                                                        **reply_payload(post, team))
        except Exception:
            log.exception("slack ephemeral reply failed", extra={"room": channel})

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
