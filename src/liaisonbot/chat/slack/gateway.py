"""Posting to Slack: Block Kit cards and notes, card updates, DMs; idempotent and paced.

Idempotency. ``chat.postMessage`` has no idempotency key, so every post carries message
metadata ``{event_type: "liaisonbot_delivery", event_payload: {delivery_id}}``. When a
delivery comes back ``in_doubt`` (the outbox keeps that in SQL, so it holds across
restarts), an earlier attempt may have reached Slack (a dropped connection,
an HTTP 500, a crash of this process): the channel's recent history (``conversations.history``,
or ``conversations.replies`` for a thread) is searched for the delivery id and its ``ts``
returned instead of posting again. An answer that proves nothing was posted (429,
``ok: false``) is ``DeliveryError.not_sent``, so the next try skips the search. A first attempt
costs no transaction and no history call (history is rate limited to ~50 calls/min, so
searching on every post would not scale).

Ephemeral replies (a post whose ``extra`` carries ``ephemeral``: where to show it) are the
answer to the person who typed a command, queued in the outbox with the command's changes: to
the command's ``response_url`` when it has one (``response_type: ephemeral``), else (or when
that URL has expired or is used up) ``chat.postEphemeral`` in its channel (and thread).
Neither can be looked for afterwards, so a reply whose earlier attempt may have been shown is
shown again rather than never; they are not paced (they are not ``chat.postMessage`` calls).

Pacing: at most one post per ``pace_seconds`` per channel (Slack allows about 1/s); a 429
holds the channel for ``Retry-After`` seconds and returns ``DeliveryError(retry_after=…)`` to
the outbox, which reschedules the entry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook.async_client import AsyncWebhookClient

from liaisonbot.chat.slack.blocks import render
from liaisonbot.chat.slack.priority import AckFirst
from liaisonbot.chat.slack.teams import Team, Teams
from liaisonbot.domain.cards import Post
from liaisonbot.domain.directory import Directory
from liaisonbot.domain.refs import native_id
from liaisonbot.service.ports import Delivery, DeliveryError, Receipt

log = logging.getLogger(__name__)

EVENT_TYPE = "liaisonbot_delivery"
PERMANENT_ERRORS = frozenset({
    "channel_not_found", "not_in_channel", "is_archived", "invalid_auth", "account_inactive",
    "token_revoked", "no_permission", "missing_scope", "user_not_found", "cannot_dm_bot",
    "msg_too_long", "msg_blocks_too_long", "invalid_blocks", "restricted_action"})


class SlackGateway:
    """The ``ChatGateway`` for ``slack:`` rooms and users."""

    platform = "slack"

    def __init__(self, *, teams: Teams, directory: Directory,
                 pace_seconds: float = 1.0,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.teams = teams
        self.directory = directory
        self.pace_seconds = pace_seconds
        self._sleep = sleep
        self._monotonic = monotonic
        self._next_slot: dict[str, float] = {}
        self.history_checks = 0
        #: Set by the platform: each post waits (bounded) behind acknowledgements in progress.
        self.priority: AckFirst | None = None

    async def deliver(self, delivery: Delivery) -> Receipt:
        if self.priority is not None:
            await self.priority.quiet()
        team = self.teams.for_ref(delivery.room)
        if team is None:
            await self.teams.check()
            team = self.teams.for_ref(delivery.room)
        if team is None or not team.ok:
            raise DeliveryError(f"no working Slack workspace for {delivery.room}")
        post = delivery.post
        if post.extra.get("ephemeral"):
            return await self._ephemeral(team, delivery)
        if post.kind == "card_update":
            return await self._update(team, delivery)
        if post.kind in ("relay_edit", "relay_delete"):
            return await self._relay_change(team, delivery)
        channel = await self._channel(team, delivery)
        thread_ts = self._thread_ts(delivery)
        if delivery.in_doubt:
            found = await self._find(team, channel, thread_ts, delivery.delivery_id)
            if found:
                return Receipt(found)
        text, blocks = render(post, side=self._side(delivery), team=team.team_id)
        args: dict[str, Any] = {"channel": channel, "text": text, "blocks": blocks,
                                "metadata": {"event_type": EVENT_TYPE, "event_payload": {
                                    "delivery_id": delivery.delivery_id}},
                                "unfurl_links": False, "unfurl_media": False}
        if thread_ts:
            args["thread_ts"] = thread_ts
        await self._pace(team, channel)
        response = await self._call(team, channel, team.client.chat_postMessage(**args))
        return Receipt(str(response["ts"]))

    # ------------------------------------------------------------------ parts

    def _thread_ts(self, delivery: Delivery) -> str | None:
        post = delivery.post
        if post.kind == "direct":
            return None
        if post.in_thread and delivery.thread is not None:
            return delivery.thread.thread_root
        reply_to = post.extra.get("reply_to_thread")
        return str(reply_to) if reply_to else None

    def _side(self, delivery: Delivery) -> str | None:
        card = delivery.post.card
        office = self.directory.office_for_room(delivery.room)
        if card is None or office is None or delivery.post.kind not in ("card", "card_update"):
            return None
        return {card.requesting: "requesting", card.requested: "requested"}.get(office.slug)

    async def _channel(self, team: Team, delivery: Delivery) -> str:
        if delivery.post.kind != "direct":
            return native_id(delivery.room)
        opened = await self._call(team, "", team.client.conversations_open(
            users=native_id(delivery.room)))
        return str(opened["channel"]["id"])

    async def _update(self, team: Team, delivery: Delivery) -> Receipt:
        if delivery.thread is None:  # the card never reached this room: nothing to update
            return Receipt("")
        channel = native_id(delivery.room)
        text, blocks = render(delivery.post, side=self._side(delivery), team=team.team_id)
        await self._pace(team, channel)
        await self._call(team, channel, team.client.chat_update(
            channel=channel, ts=delivery.thread.message_ref, text=text, blocks=blocks))
        return Receipt(delivery.thread.message_ref)

    async def _relay_change(self, team: Team, delivery: Delivery) -> Receipt:
        """Edit (``chat.update``) or delete (``chat.delete``) this channel's copy of a relayed
        message. No copy, or one already gone, leaves nothing to do; both calls are safe to
        repeat, so a retry needs no marker."""
        target = delivery.target_ref
        if not target:
            return Receipt("")
        channel = native_id(delivery.room)
        await self._pace(team, channel)
        if delivery.post.kind == "relay_delete":
            call = team.client.chat_delete(channel=channel, ts=target)
        else:
            text, blocks = render(replace(delivery.post, kind="relay"), side=None,
                                  team=team.team_id)
            call = team.client.chat_update(channel=channel, ts=target, text=text, blocks=blocks)
        try:
            await self._call(team, channel, call)
        except DeliveryError as error:
            if "message_not_found" in str(error) or "cant_delete_message" in str(error):
                return Receipt("")
            raise
        return Receipt(target)

    async def _ephemeral(self, team: Team, delivery: Delivery) -> Receipt:
        """The person's reply: through the response URL, else ``chat.postEphemeral``."""
        where = dict(delivery.post.extra["ephemeral"])
        payload = reply_payload(delivery.post, team.team_id)
        url = where.get("response_url")
        if url:
            try:
                await self._respond(str(url), {"response_type": "ephemeral",
                                                "replace_original": False, **payload})
                return Receipt("")
            except DeliveryError as error:
                if not error.permanent:
                    raise
                # Expired (30 minutes: a command worked long after it came) or used up:
                # the channel's ephemeral message reaches the person all the same.
                log.info("response_url refused; replying with chat.postEphemeral",
                         extra={"error": str(error)})
        args: dict[str, Any] = {"channel": where["channel"], "user": where["user"], **payload}
        if where.get("thread_ts"):
            args["thread_ts"] = where["thread_ts"]
        await self._call(team, str(where["channel"]), team.client.chat_postEphemeral(**args))
        return Receipt("")

    async def _respond(self, url: str, body: dict[str, Any]) -> None:
        """POST to a ``response_url``; Slack's answers become ``DeliveryError``s (an expired or
        used-up URL is permanent: the reply cannot be shown any more)."""
        try:
            answer = await AsyncWebhookClient(url, retry_handlers=[]).send_dict(body)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise DeliveryError(f"slack unreachable: {type(error).__name__}") from error
        if answer.status_code == 200:
            return
        if answer.status_code == 429:
            retry_after = float((answer.headers or {}).get("Retry-After", 1) or 1)
            raise DeliveryError("slack ratelimited", retry_after=retry_after)
        if answer.status_code >= 500:
            raise DeliveryError(f"slack response_url: http_{answer.status_code}")
        raise DeliveryError(f"slack response_url: {answer.body or answer.status_code}",
                            permanent=True, not_sent=True)

    async def _pace(self, team: Team, channel: str) -> None:
        key = f"{team.team_id}/{channel}"
        wait = self._next_slot.get(key, 0.0) - self._monotonic()
        if wait > 0:
            await self._sleep(wait)
        self._next_slot[key] = self._monotonic() + self.pace_seconds

    async def _call(self, team: Team, channel: str, call: Awaitable[Any]) -> Any:
        """Run one Web API call; Slack's answers become ``DeliveryError``s."""
        try:
            return await call
        except SlackApiError as error:
            status = error.response.status_code
            code = str(error.response.get("error", "")) if status < 500 else f"http_{status}"
            not_sent = status < 500  # a clear "no": nothing was posted
            if status == 429:
                retry_after = float(error.response.headers.get("Retry-After", 1) or 1)
                self._next_slot[f"{team.team_id}/{channel}"] = self._monotonic() + retry_after
                raise DeliveryError("slack ratelimited", retry_after=retry_after) from error
            raise DeliveryError(f"slack: {code}", permanent=code in PERMANENT_ERRORS,
                                not_sent=not_sent) from error
        except (aiohttp.ClientError, TimeoutError) as error:
            raise DeliveryError(f"slack unreachable: {type(error).__name__}") from error

    async def _find(self, team: Team, channel: str, thread_ts: str | None,
                    delivery_id: str) -> str | None:
        """The ts of an earlier post of ``delivery_id`` in the channel (or thread), if any."""
        self.history_checks += 1
        try:
            if thread_ts:
                page = await team.client.conversations_replies(
                    channel=channel, ts=thread_ts, include_all_metadata=True, limit=200)
            else:
                page = await team.client.conversations_history(
                    channel=channel, include_all_metadata=True, limit=100)
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as error:
            raise DeliveryError(f"slack history check failed: {error}") from error
        for message in page.get("messages") or []:
            meta = message.get("metadata") or {}
            if meta.get("event_type") == EVENT_TYPE and \
                    (meta.get("event_payload") or {}).get("delivery_id") == delivery_id:
                return str(message["ts"])
        return None


def reply_payload(post: Post, team: str | None) -> dict[str, Any]:
    """An ephemeral reply (``respond`` / ``chat.postEphemeral``) for the person who typed."""
    text, blocks = render(post, side=None, team=team)
    return {"text": text, "blocks": blocks}
