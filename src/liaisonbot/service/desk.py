"""The desk's use cases: one entry point per inbound thing (a command, a thread message).

Each call runs in one unit of work: the state change, its history entries and every post it
causes (to the outbox) commit together or not at all. Platforms only translate; every decision
(who may, what status, who sees what) is taken here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from liaisonbot.domain import commands as c
from liaisonbot.domain.audit import Entry, state_hash, utc_text
from liaisonbot.domain.cards import Card, Post
from liaisonbot.domain.contacts import at_desk
from liaisonbot.domain.directory import Directory
from liaisonbot.domain.forwarding import Former
from liaisonbot.domain.grammar import CommandError, Phrase, parse
from liaisonbot.domain.holds import hold, release, skip_held_nudges
from liaisonbot.domain.measures import MeasureError, numbered
from liaisonbot.domain.model import (
    ENDED,
    PENDING,
    RULES,
    Office,
    Request,
    Side,
    Status,
    urgency_key,
)
from liaisonbot.domain.refs import format_request_id, platform_of, same_user
from liaisonbot.domain.text import echo, valid_text
from liaisonbot.domain.visibility import (
    Audience,
    Place,
    by_direct_message,
    former_history,
    sees_parallels,
    shows,
)
from liaisonbot.service import clocks as legal
from liaisonbot.service import levels
from liaisonbot.service import measures as measures_use
from liaisonbot.service import messages as m
from liaisonbot.service.i18n import Words
from liaisonbot.service.inbox import Ticket
from liaisonbot.service.ports import (
    AlreadySettled,
    Clock,
    Conflict,
    NullTelemetry,
    OutboxDraft,
    Telemetry,
    UnitOfWork,
    UnitOfWorkFactory,
)
from liaisonbot.service.presenter import Changed, Presenter, Reader

_T = TypeVar("_T")
log = logging.getLogger(__name__)
#: The latest due, eta or snooze date a command may set: dates beyond it are refused.
MAX_HORIZON = timedelta(days=36525)
_RELAY_KEY = "relay:"  # state key prefix: source_ref → where a relayed message came from


@dataclass(frozen=True)
class Actor:
    """Who typed something, where: a user reference, a room reference, maybe a thread."""

    user: str
    room: str
    name: str = ""
    thread_root: str | None = None

    @property
    def platform(self) -> str:
        return platform_of(self.room)

    @property
    def display(self) -> str:
        return self.name or self.user


@dataclass
class Outcome:
    """What a command produced: the reply for the person who typed it, and whether it
    changed anything. ``reply_in_room`` and ``privately`` replies are already in the outbox;
    ``duplicate`` when the command was a repeat answered with the ``replay`` sentence."""

    reply: Post
    ok: bool = True
    verb: str = ""
    request_id: int | None = None
    duplicate: bool = False


@dataclass(frozen=True)
class Privately:
    """A reply only the person who typed sees (Slack's ephemeral messages), queued in the
    outbox with the command's changes: to ``room`` (the person's own queue, a user reference),
    with ``extra`` telling the platform where to show it (its channel, thread, response URL)."""

    room: str
    extra: Mapping[str, Any]


class _FormerParty(Exception):
    """The acting office forwarded the request away: it may read what it saw, nothing more."""

    def __init__(self, former: Former) -> None:
        super().__init__(former.request.ref)
        self.former = former


class Refusal(Exception):
    """A command that is understood but not allowed: a message of ``service.messages`` and
    its values, written in the reader's language when shown; ``str()`` is the English."""

    def __init__(self, template: str, **values: Any) -> None:
        super().__init__(template.format(**values) if values else template)
        self.template, self.values = template, values

    def said(self, w: Words) -> str:
        """The sentence for ``w``'s reader. A sentence raised already formatted (no values)
        is shown as it is when the catalog does not know it."""
        if not self.values:
            return w(self.template)
        values = {k: w(v) if isinstance(v, Phrase | tuple) else v  # tuple: a word in context
                  for k, v in self.values.items()}
        return w(self.template).format(**values)


@dataclass
class _Ctx:
    uow: UnitOfWork
    actor: Actor
    now: datetime
    office: Office | None
    #: The actor's room as a reader (its office's standing, zone and language): replies.
    reader: Reader
    posts: list[tuple[str, Post]] = field(default_factory=list)
    #: The inbox row this unit of work handles: marked done in its transaction.
    settle: Ticket | None = None

    @property
    def words(self) -> Words:
        return self.reader.words


class Desk:
    """The request desk. ``on_posted`` is called after a commit that queued posts.

    ``claim_posts`` (the outbox worker's ``claim_in``), when given, leases the rooms' due posts
    inside the command's own transaction and returns what delivers them once it committed (in
    place of ``on_posted``): a reply goes out with no claim transaction of its own."""

    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock, directory: Directory,
                 on_posted: Callable[[], None] | None = None,
                 telemetry: Telemetry | None = None,
                 claim_posts: Callable[[UnitOfWork, list[str]],
                                       Awaitable[Callable[[], None] | None]] | None = None
                 ) -> None:
        self.uow = uow
        self.claim_posts = claim_posts
        self.telemetry = telemetry or NullTelemetry()
        self.clock = clock
        self.directory = directory
        self.present = Presenter(directory)
        self.on_posted = on_posted or (lambda: None)

    # ----------------------------------------------------------------- entry points

    async def handle_command(self, actor: Actor, text: str, *, event_id: str | None = None,
                             reply_in_room: bool = True,
                             also_mark: Sequence[str] = (),
                             privately: Privately | None = None,
                             replay: str | None = None,
                             settle: Ticket | None = None) -> Outcome | None:
        """Run one command. With ``event_id`` an inbound event is handled at most once (None
        is returned for a replay, or, given a ``replay`` sentence, that sentence as a
        refusal). ``also_mark`` are further dedupe keys recorded in the same transaction: the
        command is a replay when any of them was recorded before (a platform uses them for
        time windows). With ``reply_in_room`` the reply is queued to the room; ``privately``
        queues it to the person alone instead. ``settle`` marks the inbox row the command came
        from done in the same transaction."""
        actor, text = _valid(actor), valid_text(text)  # the edge: every platform comes here
        refusal: CommandError | None = None
        try:
            command = parse(text)
        except CommandError as error:
            command, refusal = None, error
        verb = text.split(maxsplit=1)[0].lower()[:16] if command and text.strip() else "invalid"
        how = _How(reply_in_room, privately, replay, settle)
        try:
            outcome = await self._attempts(actor, command, refusal if command is None else None,
                                           event_id=event_id, how=how, also_mark=also_mark)
        except AlreadySettled:
            raise  # another process did it: nothing of this may be kept, nothing said
        except Exception:
            # Never a traceback in chat: log it, answer one sentence, change nothing.
            log.exception("command failed", extra={"verb": verb, "platform": actor.platform})
            self.telemetry.command(verb, actor.platform, "error")
            outcome = await self._run(actor, None, m.INTERNAL_ERROR, event_id=None, how=how)
            assert outcome is not None
            return outcome
        result = "duplicate" if outcome is None or outcome.duplicate else \
            "ok" if outcome.ok else "refused"
        self.telemetry.command(verb, actor.platform, result)
        if log.isEnabledFor(logging.INFO):  # the record is built only when it is written
            log.info("command", extra={"verb": verb, "platform": actor.platform,
                                       "outcome": result,
                                       "request": format_request_id(outcome.request_id)
                                       if outcome and outcome.request_id else None})
        return outcome

    async def run_command(self, actor: Actor, command: c.Command) -> Outcome:
        """Run a command already parsed (``postpone R-n/k`` routes its ``PostponeMeasure``
        here, as the grammar's verbs go through ``handle_command``): one unit of work, the
        reply queued to the actor's room, a refusal in one sentence."""
        outcome = await self._attempts(_valid(actor), command, None, event_id=None, how=_How(),
                                       also_mark=())
        assert outcome is not None
        return outcome

    async def _attempts(self, actor: Actor, command: c.Command | None,
                        refusal: CommandError | None, *,
                        event_id: str | None, how: _How,
                        also_mark: Sequence[str]) -> Outcome | None:
        """Run the command; a lost race re-runs it on the new state (``_retrying``), and a
        command that lost every time is answered that the request changed meanwhile."""
        try:
            return await _retrying(lambda: self._run(
                actor, command, refusal, event_id=event_id, how=how, also_mark=also_mark))
        except Conflict:
            pass
        return await self._run(actor, None, Refusal(
            m.CHANGED_MEANWHILE, ref=format_request_id(getattr(command, "request_id", 0))),
            event_id=event_id, how=how, also_mark=also_mark)

    async def relay(self, actor: Actor, text: str, *, event_id: str | None = None,
                    files: list[tuple[str, int]] | None = None,
                    source_ref: str | None = None, settle: Ticket | None = None) -> bool:
        """A plain message in a room: relayed when it sits in a request's thread. True if it
        was relayed (or recorded as a file notice).

        ``text`` is neutral markup (``chat.formatting``); ``source_ref`` names the original
        message (``ROOM#native-id``) so that its later edit or deletion can follow it.
        ``settle`` marks the inbox row it came from done with the relay (not when nothing is
        relayed: the caller marks it then)."""
        actor, text = _valid(actor), valid_text(text)
        if actor.thread_root is None:
            return False
        files = [(valid_text(name, 255), size) for name, size in files or []]
        return await _retrying(lambda: self._relay_once(actor, text, event_id, files,
                                                        source_ref, settle))

    async def _relay_once(self, actor: Actor, text: str, event_id: str | None,
                          files: list[tuple[str, int]], source_ref: str | None,
                          settle: Ticket | None) -> bool:
        assert actor.thread_root is not None
        async with self.uow() as uow:
            link = await uow.threads.find(self._room_key(actor.room), actor.thread_root)
            if link is None:
                return False
            if event_id and not await uow.inbound.first_time(actor.platform, event_id,
                                                              self.clock.now()):
                return False
            request = await uow.requests.get(link.request_id)
            office = self.directory.office_for_room(actor.room)
            if request is None or office is None or not request.is_party(office.slug):
                return False
            ctx = self._ctx(uow, actor, self.clock.now(), settle)
            await self._relay_into_threads(ctx, request, link.room, text, files or [],
                                           source_ref=source_ref)
            if source_ref and text:
                await uow.state.put(_RELAY_KEY + source_ref, json.dumps(
                    {"request": request.id, "room": link.room, "user": actor.user}), ctx.now)
            await self._commit(ctx)
        return True

    async def tell_unreadable(self, actor: Actor, event_id: str, *,
                              withheld: str | None = None, session: str | None = None) -> None:
        """A message the platform could not read (its decryption keys never came): answer
        once in its room and thread, so it is never silently dropped. When the sender's
        client ``withheld`` the key (a code with a sentence of its own), say why, once per
        room and key ``session``."""
        sentence: str | Refusal = m.UNDECRYPTABLE
        marks: tuple[str, ...] = ()
        if withheld in m.WITHHELD:  # in the room's language, like any refusal
            sentence = Refusal(m.WITHHELD[withheld], sender=actor.name or actor.user)
            marks = (f"withheld:{actor.room}:{session or event_id}",)
        await self._run(actor, None, sentence, event_id=f"unreadable:{event_id}",
                        how=_How(), also_mark=marks)

    async def tell_untrusted(self, actor: Actor, event_id: str, *,
                             device: str | None) -> None:
        """A message not acted on because it did not come encrypted from a device its owner
        verified (Matrix, encrypted rooms): say so in its room and thread, once per room,
        sender and ``device`` (None: it came unencrypted), remembered in core state
        (``untrusted-told:…``) so a restart or a replay does not repeat it. Nothing else is
        stored: no request, no history, no relay."""
        told = f"untrusted-told:{actor.room}:{actor.user}:{device or '-'}"
        sender = actor.name or actor.user
        sentence = Refusal(m.UNTRUSTED_DEVICE, sender=sender, device=device) if device \
            else Refusal(m.UNENCRYPTED_IN_ENCRYPTED_ROOM, sender=sender)
        await self._tell_once(actor, told, sentence, event_id)

    async def tell_identity_changed(self, actor: Actor, master: str) -> None:
        """A member's cross-signing identity is not the one first seen (Matrix): the room is
        told once per member and new ``master`` key (core state ``identity-told:…``)."""
        told = f"identity-told:{actor.room}:{actor.user}:{master}"
        user = actor.user.split(":", 1)[1] if ":" in actor.user else actor.user
        await self._tell_once(actor, told, Refusal(
            m.IDENTITY_CHANGED, sender=actor.name or user, user=user), master)

    async def _tell_once(self, actor: Actor, told: str, sentence: Refusal, value: str
                         ) -> None:
        now = self.clock.now()
        async with self.uow() as uow:
            if await uow.state.get(told) is not None:
                return
            await uow.state.put(told, value, now)
            ctx = self._ctx(uow, actor, now)
            outcome = self._refused(ctx, sentence)
            self._post(ctx, self._room_key(actor.room), replace(
                outcome.reply, in_thread=False,
                extra={**outcome.reply.extra, "reply_to_thread": actor.thread_root}))
            await self._commit(ctx)

    async def relay_edit(self, actor: Actor, source_ref: str, text: str, *,
                         event_id: str | None = None, settle: Ticket | None = None) -> bool:
        """The author edited a relayed message: record it and queue the edit of every copy.
        Only the original author's edit counts (Matrix lets anyone send an ``m.replace``)."""
        return await self._relay_change(actor, source_ref, text, event_id=event_id,
                                        kind="relay_edit", settle=settle)

    async def relay_delete(self, actor: Actor, source_ref: str, *,
                           event_id: str | None = None, moderator: bool = True,
                           settle: Ticket | None = None) -> bool:
        """A relayed message was deleted: record it and queue the deletion of every copy.
        ``moderator``: the platform says the actor may delete other members' messages
        (Slack only sends deletions it authorised); when False (Matrix: a sender below the
        room's ``redact`` power level) only the author's own deletion counts."""
        return await self._relay_change(actor, source_ref, "", event_id=event_id,
                                        kind="relay_delete", moderator=moderator, settle=settle)

    async def _relay_change(self, actor: Actor, source_ref: str, text: str, *,
                            event_id: str | None, kind: str, moderator: bool = False,
                            settle: Ticket | None = None) -> bool:
        actor, text = _valid(actor), valid_text(text)
        return await _retrying(lambda: self._relay_change_once(actor, source_ref, text,
                                                               event_id, kind, moderator,
                                                               settle))

    async def _relay_change_once(self, actor: Actor, source_ref: str, text: str,
                                 event_id: str | None, kind: str, moderator: bool,
                                 settle: Ticket | None) -> bool:
        async with self.uow() as uow:
            known = await uow.state.get(_RELAY_KEY + source_ref)
            if known is None:
                return False  # not a relayed message (or one of the bot's own copies)
            origin = json.loads(known)
            if origin.get("user") != actor.user and (kind == "relay_edit" or not moderator):
                return False
            if event_id and not await uow.inbound.first_time(actor.platform, event_id,
                                                              self.clock.now()):
                return False
            request = await uow.requests.get(int(origin["request"]))
            office = self.directory.office_for_room(actor.room)
            if request is None or office is None or not request.is_party(office.slug):
                return False
            ctx = self._ctx(uow, actor, self.clock.now(), settle)
            await self._history(ctx, request, "relay edited" if text else "relay deleted",
                                room=origin["room"], source=source_ref, text=text)
            author = self.present.relay_author(actor.display, office)
            for room in await self._request_rooms(ctx, request):
                reader = self.present.room_reader(room)
                if room != origin["room"] and shows(request, reader.audience, "thread"):
                    self._post(ctx, room, reader.post(
                        kind, text, ctx.now, request_id=request.id, in_thread=True,
                        author=author, source_ref=source_ref, extra={"target": source_ref}))
            await self._commit(ctx)
        return True

    # ----------------------------------------------------------------- plumbing

    def _room_key(self, room: str) -> str:
        return self.directory.bound_room(room) or room

    async def _mark(self, uow: UnitOfWork, platform: str, keys: Sequence[str],
                    now: datetime) -> bool:
        """Record every dedupe key; False (a replay) when any was recorded before."""
        for key in keys:
            if not await uow.inbound.first_time(platform, key, now):
                return False
        return True

    async def _run(self, actor: Actor, command: c.Command | None,
                   refusal: str | Refusal | CommandError | None, *,
                   event_id: str | None, how: _How,
                   also_mark: Sequence[str] = ()) -> Outcome | None:
        now = self.clock.now()
        keys = [k for k in (event_id, *also_mark) if k]
        async with self.uow() as uow:
            if not await self._mark(uow, actor.platform, keys, now):
                if how.replay is None:
                    return None
                await uow.rollback()  # no mark of this repeat is kept
                ctx = self._ctx(uow, actor, now, how.settle)
                outcome: Outcome | None = self._refused(ctx, how.replay)
                assert outcome is not None
                outcome.duplicate = True
            else:
                ctx = self._ctx(uow, actor, now, how.settle)
                outcome = self._refused(ctx, refusal) if refusal else None
            if outcome is None:
                assert command is not None
                try:
                    outcome = await self._dispatch(ctx, command)
                except Refusal as error:
                    await uow.rollback()  # nothing half-stored; keep only the event marks
                    await self._mark(uow, actor.platform, keys, now)
                    ctx = self._ctx(uow, actor, now, how.settle)
                    outcome = self._refused(ctx, error)
            self._reply(ctx, outcome.reply, how)
            await self._commit(ctx)
        return outcome

    def _reply(self, ctx: _Ctx, reply: Post, how: _How) -> None:
        """Queue the reply where ``how`` says: to the person alone, or to the room."""
        extra = {k: v for k, v in reply.extra.items() if k != "skip"}
        if how.privately is not None:
            self._post(ctx, how.privately.room, replace(
                reply, in_thread=False, extra={**extra, **how.privately.extra}))
        elif how.reply_in_room:
            # ``skip``: the card just posted in this room says the reply's first line, so only
            # the lines after it (warnings, where the summary went) follow it there.
            text = reply.text.partition("\n")[2] if reply.extra.get("skip") else reply.text
            if text:
                self._post(ctx, self._room_key(ctx.actor.room), replace(
                    reply, text=text, in_thread=False,
                    extra={**extra, "reply_to_thread": ctx.actor.thread_root}))

    def _refused(self, ctx: _Ctx, refusal: str | Refusal | CommandError) -> Outcome:
        """The refusal in the reader's language (a bare string is a message's msgid)."""
        w = ctx.words
        sentence = refusal.said(w) if isinstance(refusal, Refusal) else \
            w(refusal) if isinstance(refusal, str) else refusal.said(w)
        return Outcome(self._text(ctx, "reply", sentence), ok=False)

    async def _commit(self, ctx: _Ctx) -> None:
        await ctx.uow.outbox.add_many([
            OutboxDraft(platform=platform_of(room), room=room, post=post,
                        request_id=post.request_id, at=ctx.now) for room, post in ctx.posts])
        deliver = None
        if ctx.posts and self.claim_posts is not None:  # leased here, sent right after commit
            deliver = await self.claim_posts(ctx.uow, [room for room, _ in ctx.posts])
        if ctx.settle is not None:  # the inbox row: done with what its work changed
            await ctx.settle.settle_in(ctx.uow)
        await ctx.uow.commit()
        if ctx.settle is not None:
            ctx.settle.settled = True
        if ctx.posts:
            (deliver or self.on_posted)()

    def _ctx(self, uow: UnitOfWork, actor: Actor, now: datetime,
             settle: Ticket | None = None) -> _Ctx:
        return _Ctx(uow, actor, now, self.directory.office_for_room(actor.room),
                    self.present.room_reader(self._room_key(actor.room)), settle=settle)

    def _text(self, ctx: _Ctx, kind: str, text: str, **kw: Any) -> Post:
        return ctx.reader.post(kind, text, ctx.now, **kw)

    def _post(self, ctx: _Ctx, room: str, post: Post) -> None:
        ctx.posts.append((room, post))

    async def _history(self, ctx: _Ctx, request: Request | None, action: str,
                       **detail: Any) -> None:
        await ctx.uow.history.append(
            request_id=request.id if request else None, at=ctx.now, actor=ctx.actor.user,
            platform=ctx.actor.platform, action=action,
            detail={k: v for k, v in detail.items() if v not in (None, "")},
            state=state_hash(request) if request else None)

    async def _dispatch(self, ctx: _Ctx, command: c.Command) -> Outcome:
        if isinstance(command, c.Help):
            return Outcome(self._text(ctx, "reply", m.help_text(command.topic, ctx.words)),
                           verb="help")
        office = self._acting_office(ctx)
        if isinstance(command, c.OpenRequest):
            return await self._open(ctx, office, command)
        if isinstance(command, c.ListCase):
            return await self._list(ctx, office, command)
        if isinstance(command, c.ListOverdue):
            return await self._overdue(ctx, office)
        if isinstance(command, c.Who):
            return self._who(ctx, command)
        try:
            request = await self._visible(ctx, office, command.request_id)
        except _FormerParty as former:
            return await self._as_former(ctx, office, former.former, command)
        if isinstance(command, c.Show):
            return await self._show(ctx, office, request)
        return await self._change(ctx, office, request, command)

    def _acting_office(self, ctx: _Ctx) -> Office:
        if ctx.office is None:
            raise Refusal(m.NOT_BOUND)
        if not ctx.office.may_act(ctx.actor.user):
            raise Refusal(m.NOT_MEMBER, office=ctx.office.name)
        return ctx.office

    async def _visible(self, ctx: _Ctx, office: Office, request_id: int) -> Request:
        request = await ctx.uow.requests.get(request_id)
        if request is None or not request.is_party(office.slug):
            former = await ctx.uow.former.get(request_id, office.slug) if request else None
            if former is not None:
                raise _FormerParty(former)
            raise Refusal(m.NOT_PARTY, ref=format_request_id(request_id), office=office.name)
        return request

    # ----------------------------------------------------------------- cards and posts

    def card(self, request: Request, *, now: datetime, reveal: bool = False) -> Card:
        """The neutral card as a party's room sees it (``reveal``: as a listed member does)."""
        return self.present.card(request, now=now, audience=Audience(
            Place.MEMBER_DM if reveal else Place.ROOM, request.requested, member=reveal))

    def _calendar(self, request: Request) -> Any:
        office = self.directory.office(request.requested)
        assert office is not None, f"office {request.requested} left the config"
        return office.calendar

    def _tz_of_room(self, room: str) -> str:
        return self.present.room_reader(room).tz

    async def _fan_out(self, ctx: _Ctx, change: Changed, *,
                       mentions_for: dict[str, tuple[str, ...]] | None = None,
                       update_card: bool = True, rooms: list[str] | None = None) -> None:
        """A thread note (and a card update) in every room the request was posted to, each
        written for its room's reader; the private text goes by direct message to listed
        members when the rooms may not see it, else into the note itself."""
        request = change.request
        for room in rooms if rooms is not None else await self._request_rooms(ctx, request):
            reader = self.present.room_reader(room)
            if update_card:
                self._post(ctx, room, reader.post(
                    "card_update", self.present.change_headline(change, reader), ctx.now,
                    request_id=request.id,
                    card=self.present.card(request, now=ctx.now, audience=reader.audience)))
            self._post(ctx, room, reader.post(
                "note", self.present.change_note(change, reader, ctx.now), ctx.now,
                request_id=request.id, in_thread=True,
                mentions=(mentions_for or {}).get(room, ())))
        if change.private and by_direct_message(request, "note"):
            self._direct(ctx, request, lambda reader: self.present.change_note(
                change, reader, ctx.now))

    def _direct(self, ctx: _Ctx, request: Request, text: str | Callable[[Reader], str], *,
                author: str | None = None, card: bool = True,
                skip: str | None = None) -> None:
        """By direct message to each listed member of both offices (but ``skip``): ``text`` is
        written for each member as its reader (their office's zone and language); with
        ``card`` the request's card in full follows."""
        for member in self.present.members(request):
            if skip is not None and same_user(member, skip):
                continue
            reader = self.present.member_reader(request, member)
            said = text if isinstance(text, str) else text(reader)
            self._post(ctx, member, reader.post(
                "direct", said, ctx.now, request_id=request.id, author=author,
                card=self.present.card(request, now=ctx.now, audience=reader.audience)
                if card else None))

    async def _request_rooms(self, ctx: _Ctx, request: Request) -> list[str]:
        """Rooms holding the request's card: the requested office's rooms and the room it
        was opened from (from the thread map, else from the config)."""
        rooms = [room for room in await ctx.uow.threads.rooms_of(request.id)
                 if self.party_room(request, room)]
        for room in self._card_rooms(request, origin=None):
            if room not in rooms:
                rooms.append(room)
        return rooms

    def party_room(self, request: Request, room: str) -> bool:
        """A room of one of the request's parties (not of an office it was forwarded away
        from); a room bound to no office counts as it always did."""
        office = self.directory.office_for_room(room)
        return office is None or request.is_party(office.slug)

    def _card_rooms(self, request: Request, origin: str | None) -> list[str]:
        requested = self.directory.office(request.requested)
        rooms = list(requested.rooms if requested else ())
        if origin and origin not in rooms:
            rooms.insert(0, origin)
        return rooms

    async def _relay_into_threads(self, ctx: _Ctx, request: Request, from_room: str, text: str,
                                  files: list[tuple[str, int]], *,
                                  source_ref: str | None = None) -> None:
        """A thread message (and file notices) into the request's threads in the other rooms
        that may see it; when the rooms may not (a confidential request), to the parties'
        listed members by direct message instead, never to a room."""
        office = ctx.office
        assert office is not None
        author = self.present.relay_author(ctx.actor.display, office)
        await self._history(ctx, request, "relayed", room=from_room, text=text,
                            source=source_ref,
                            files=[{"name": n, "size": s} for n, s in files] or None)
        hidden = False
        for room in await self._request_rooms(ctx, request):
            reader = self.present.room_reader(room)
            hidden = hidden or not shows(request, reader.audience, "thread")
            if room == from_room:
                continue
            if text and shows(request, reader.audience, "thread"):
                self._post(ctx, room, reader.post("relay", text, ctx.now, request_id=request.id,
                                                  in_thread=True, author=author,
                                                  source_ref=source_ref))
            for name, size in files if shows(request, reader.audience, "file") else ():
                notice = self.present.file_notice(request, author, office, name, size, reader)
                self._post(ctx, room, reader.post("note", notice, ctx.now,
                                                  request_id=request.id, in_thread=True))
        if hidden:  # the rooms may not see it: the parties' listed members get it directly
            if text:
                self._direct(ctx, request, text, card=False, author=f"{author} · {request.ref}",
                             skip=ctx.actor.user)
            for name, size in files:
                self._direct(ctx, request, lambda reader, name=name, size=size:  # type: ignore[misc]
                             self.present.file_notice(request, author, office, name, size,
                                                      reader),
                             card=False, skip=ctx.actor.user)

    # ----------------------------------------------------------------- commands

    def _resolve_due(self, spec: c.DueSpec, office: Office, now: datetime, what: str) -> datetime:
        calendar, after = office.calendar, spec.after
        due: datetime | None = None
        # N business days span at least N calendar days: refuse before counting them out.
        days = after.amount * (7 if after.unit == "w" else 1) if after else 0
        if days <= MAX_HORIZON.days:
            try:
                due = (calendar.due_on(spec.on) if spec.on is not None
                       else calendar.deadline(now, after))  # type: ignore[arg-type]
            except (OverflowError, ValueError):  # year 1 or 9999: beyond the calendar
                due = None
        if due is None and spec.on is not None and spec.on < now.date():
            raise Refusal(m.PAST_DATE, what=Phrase(what), value=spec)
        if due is None or due - now > MAX_HORIZON:
            raise Refusal(m.TOO_FAR, what=Phrase(what), value=spec,
                          years=MAX_HORIZON.days // 365)
        if due <= now:
            raise Refusal(m.PAST_DATE, what=Phrase(what), value=spec)
        return due

    def _reschedule(self, request: Request) -> None:
        legal.reschedule(self.directory, request)

    def _target(self, office: Office, slug: str) -> Office:
        """The office a request goes to: a known one, not the acting office itself."""
        target = self.directory.office(slug)
        if target is None:
            known = ", ".join(o.slug for o in self.directory.offices if o.slug != office.slug)
            raise Refusal(m.UNKNOWN_OFFICE, slug=echo(slug), known=known)
        if target.slug == office.slug:
            raise Refusal(m.SAME_OFFICE, slug=office.slug)
        return target

    async def _open(self, ctx: _Ctx, office: Office, cmd: c.OpenRequest) -> Outcome:
        if not cmd.also_to:
            return await self._open_to(ctx, office, cmd, cmd.to)
        # Several offices: one parallel request each, all or none. Every office is checked
        # before anything is stored; a later refusal rolls the whole command back.
        for slug in cmd.offices:
            target = self._target(office, slug)
            try:
                legal.check_scope(legal.instrument_for(self.directory, cmd), office, target)
            except legal.ClockRefusal as error:
                raise Refusal(error.template, **error.values) from None
        outcomes: list[Outcome] = []
        for slug in cmd.offices:
            first = outcomes[0].request_id if outcomes else None
            outcomes.append(await self._open_to(ctx, office, cmd, slug, parallel_of=first))
        refs = ", ".join(format_request_id(o.request_id or 0) for o in outcomes)
        head = ctx.words(m.OPENED_PARALLEL).format(
            refs=refs, case=cmd.case,
            offices=", ".join(self.directory.name(slug) for slug in cmd.offices))
        # Each request's own line is on its card in this room; the notices (confidential by
        # default, where the summary went) are said once.
        notices = dict.fromkeys(line for o in outcomes
                                for line in o.reply.text.split("\n")[1:] if line)
        text = "\n".join([head, *notices])
        return Outcome(self._text(ctx, "reply", text, request_id=outcomes[0].request_id),
                       verb="open", request_id=outcomes[0].request_id)

    async def _open_to(self, ctx: _Ctx, office: Office, cmd: c.OpenRequest, to: str, *,
                       parallel_of: int | None = None) -> Outcome:
        target = self._target(office, to)
        now = ctx.now
        try:
            instrument = legal.instrument_for(self.directory, cmd)
            legal.check_scope(instrument, office, target)
            events = {name: legal.moment_of(when, target, now, name)
                      for name, when in cmd.events}
            level = levels.level_for(cmd.confidentiality, instrument, requesting=office,
                                     requested=target, actor=ctx.actor.user)
        except legal.ClockRefusal as error:
            raise Refusal(error.template, **error.values) from None
        try:
            measures = numbered(cmd.measures)
        except MeasureError as error:
            raise Refusal(error.template, **error.values) from None
        due_spec, ack_within = legal.open_clocks(self.directory, cmd, instrument)
        due = self._resolve_due(due_spec, target, now, m.DUE_DATE)
        # The requesting office's own deadline, kept beside the legal ones (art. 12(2) EIO).
        asked = due if cmd.due is not None or (cmd.urgent and not (
            instrument and instrument.deadlines and instrument.urgent)) else None
        request = Request(
            id=0, case=cmd.case, kind=cmd.kind, requesting=office.slug, requested=target.slug,
            summary=cmd.summary, status=Status.OPEN, created_at=now, updated_at=now, due_at=due,
            ack_due_at=target.calendar.deadline(now, ack_within), opened_by=ctx.actor.user,
            basis=cmd.basis, urgent=cmd.urgent, confidentiality=level.level,
            instrument=instrument.slug if instrument else None, person=cmd.person,
            measure=cmd.measure, events=events, asked_due=asked, measures=measures,
            parallel_of=parallel_of)
        legal.refresh_due(self.directory, request)
        due = request.due_at
        self._reschedule(request)
        await ctx.uow.requests.add(request)
        await self._history(ctx, request, "opened", case=cmd.case, kind=cmd.kind.value,
                            to=target.slug, due=utc_text(due), urgent=cmd.urgent or None,
                            basis=cmd.basis, confidentiality=level.level.value,
                            summary=cmd.summary, via=cmd.via, person=cmd.person,
                            measure=None if measures else cmd.measure,
                            measures=[{"number": x.number, "text": x.text}
                                      for x in measures] or None,
                            events={k: utc_text(v) for k, v in events.items()} or None,
                            parallel=format_request_id(parallel_of) if parallel_of else None)
        origin = self._room_key(ctx.actor.room)
        for room in self._card_rooms(request, origin):
            reader = self.present.room_reader(room)
            self._post(ctx, room, reader.post(
                "card", self.present.opened(request, reader, now), now, request_id=request.id,
                card=self.present.card(request, now=now, audience=reader.audience)))
        notes = [self.present.opened(request, ctx.reader, now)]
        if level.by_default and instrument is not None:
            notes.append(levels.default_notice(instrument, ctx.words))
        if by_direct_message(request, "summary"):  # the card in the DM shows the summary
            self._direct(ctx, request, lambda reader: self.present.opened(request, reader, now))
            notes.append(ctx.words(m.CONF_OPENED))
        # In the room the card says the first line; the rest (warnings) follows it there.
        return Outcome(self._text(ctx, "reply", "\n".join(notes), request_id=request.id,
                                  extra={"skip": True}), verb="open", request_id=request.id)

    async def _list(self, ctx: _Ctx, office: Office, cmd: c.ListCase) -> Outcome:
        requests = await ctx.uow.requests.for_case(cmd.case, office.slug)
        scope = cmd.scope
        if scope == "open":
            requests = [r for r in requests if r.status not in ENDED]
        elif scope == "overdue":
            requests = [r for r in requests if r.is_overdue(ctx.now)]
        elif scope == "mine":
            requests = [r for r in requests if (same_user(ctx.actor.user, r.assignee)
                                                or same_user(ctx.actor.user, r.opened_by))
                        and r.status not in ENDED]
        if not requests:
            nothing = self.present.nothing_listed(cmd.case, scope, office, ctx.reader)
            return Outcome(self._text(ctx, "reply", "\n".join(
                [nothing, *await self._forwarded_away(ctx, office, cmd.case)])), verb="list")
        requests.sort(key=lambda r: urgency_key(r, ctx.now))
        title = self.present.list_title(cmd.case, len(requests), scope, office,
                                        ctx.reader)
        title = "\n".join([title, *self._list_marks(ctx, requests),
                           *await self._forwarded_away(ctx, office, cmd.case)])
        cards = self._cards(ctx, requests)
        return Outcome(self._text(ctx, "list", title, cards=cards), verb="list")

    def _list_marks(self, ctx: _Ctx, requests: list[Request]) -> list[str]:
        """``Opened in parallel: R-3, R-4`` for each group of parallel requests the reader
        may know of together (the requesting office: ``sees_parallels``)."""
        groups: dict[int, list[Request]] = {}
        for request in requests:
            if sees_parallels(request, ctx.reader.audience):
                groups.setdefault(request.parallel_of or request.id, []).append(request)
        return [ctx.words(m.LIST_PARALLEL).format(refs=", ".join(
                    r.ref for r in sorted(group, key=lambda r: r.id)))
                for group in groups.values() if len(group) > 1]

    async def _forwarded_away(self, ctx: _Ctx, office: Office, case: str) -> list[str]:
        """The requests of ``case`` that ``office`` forwarded to another office (read only)."""
        formers = [f for f in await ctx.uow.former.for_case(case, office.slug)]
        if not formers:
            return []
        return [ctx.words(m.LIST_FORWARDED).format(requests=", ".join(
            ctx.words(m.PARALLEL_ITEM).format(ref=f.request.ref,
                                              office=self.directory.name(f.to),
                                              status=ctx.words.status(f.request.status.value))
            for f in formers))]

    async def _overdue(self, ctx: _Ctx, office: Office) -> Outcome:
        requests = await ctx.uow.requests.overdue(office.slug, ctx.now)
        waiting = await ctx.uow.requests.incomplete_for(office.slug)
        held = await ctx.uow.requests.held_for(office.slug)
        if not requests and not waiting and not held:
            return Outcome(self._text(ctx, "reply", ctx.words(m.NOTHING_OVERDUE).format(
                office=office.name)), verb="overdue")
        requests.sort(key=lambda r: urgency_key(r, ctx.now))
        title = self.present.overdue_title(len(requests), office, ctx.reader)
        if waiting:  # listed apart: their clocks are stopped, so they are not overdue
            title += "; " + ctx.words.count(m.LIST_INCOMPLETE, len(waiting))
            requests += sorted(waiting, key=lambda r: r.id)
        if held:  # listed apart too: postponed or consulting, not chased, not overdue
            title += "; " + ctx.words.count(m.LIST_HELD, len(held))
            requests += sorted(held, key=lambda r: r.id)
        cards = self._cards(ctx, requests)
        return Outcome(self._text(ctx, "list", title, cards=cards), verb="overdue")

    def _who(self, ctx: _Ctx, cmd: c.Who) -> Outcome:
        """Points of contact: read-only, answered to the actor like ``show`` (contact details
        reach members of configured offices only: ``_acting_office`` let them through)."""
        if cmd.office is None:
            desks = [at_desk(self.directory, o, ctx.now) for o in self.directory.offices]
            return Outcome(self._text(ctx, "reply", self.present.who_all(desks, ctx.reader)),
                           verb="who")
        office = self.directory.office(cmd.office)
        if office is None:
            raise Refusal(m.WHO_UNKNOWN, slug=echo(cmd.office),
                          known=", ".join(o.slug for o in self.directory.offices))
        desk = at_desk(self.directory, office, ctx.now)
        return Outcome(self._text(ctx, "reply", self.present.who(desk, ctx.reader)),
                       verb="who")

    def _cards(self, ctx: _Ctx, requests: list[Request]) -> tuple[Card, ...]:
        audience = ctx.reader.audience
        return tuple(self.present.card(r, now=ctx.now, audience=audience) for r in requests)

    async def _show(self, ctx: _Ctx, office: Office, request: Request) -> Outcome:
        entries = await ctx.uow.history.for_request(request.id)
        reader = ctx.reader
        lines = [reader.words(m.SHOW_HISTORY).format(ref=request.ref),
                 *self.present.history_lines(request, entries, reader, ctx.now)]
        lines[:0] = await self._parallel_lines(ctx, request)
        return self._shown(ctx, office, request, entries, lines)

    def _shown(self, ctx: _Ctx, office: Office, request: Request, entries: list[Entry],
               lines: list[str]) -> Outcome:
        """``show``'s answer: ``lines`` to the room with the card as it may see it, and to a
        listed member of a confidential request the summary and history in full by DM."""
        if by_direct_message(request, "summary") \
                and self.present.is_listed_member(request, ctx.actor.user):
            member = self.present.member_reader(request, ctx.actor.user)
            mw = member.words
            full = [mw(m.SHOW_DM).format(ref=request.ref, office=office.name),
                    mw(m.CARD_SUMMARY).format(summary=request.summary),
                    *self.present.history_lines(request, entries, member, ctx.now)]
            self._post(ctx, ctx.actor.user, member.post("direct", "\n".join(full), ctx.now,
                                                        request_id=request.id))
        return Outcome(self._text(ctx, "show", "\n".join(lines), request_id=request.id,
                                  card=self.present.card(request, now=ctx.now,
                                                         audience=ctx.reader.audience)),
                       verb="show", request_id=request.id)

    async def _parallel_lines(self, ctx: _Ctx, request: Request) -> list[str]:
        """``Parallel requests in CASE: R-4 to NL OM (open)``, for the requesting office."""
        if not sees_parallels(request, ctx.reader.audience):
            return []
        others = [r for r in await ctx.uow.requests.parallels(request) if r.id != request.id]
        if not others:
            return []
        w = ctx.words
        return [w(m.SHOW_PARALLEL).format(case=request.case, requests=", ".join(
            w(m.PARALLEL_ITEM).format(ref=r.ref, office=self.directory.name(r.requested),
                                      status=w.status(r.status.value)) for r in others))]

    async def _as_former(self, ctx: _Ctx, office: Office, former: Former,
                         command: c.Command) -> Outcome:
        """An office the request was forwarded away from: ``show`` reads the request as it
        stood then and its history up to the forwarding; anything else is refused."""
        w, request = ctx.words, former.request
        at = w.when(former.at, ctx.reader.tz, ctx.now)
        if not isinstance(command, c.Show):
            raise Refusal(m.FORWARDED_AWAY, ref=request.ref, office=self.directory.name(
                former.to), at=at, former=office.name)
        entries = former_history(await ctx.uow.history.for_request(request.id), former.upto)
        lines = [w(m.SHOW_FORMER).format(ref=request.ref, former=office.name, at=at,
                                         office=self.directory.name(former.to)),
                 *self.present.history_lines(request, entries, ctx.reader, ctx.now)]
        return self._shown(ctx, office, request, entries, lines)

    async def _forward(self, ctx: _Ctx, office: Office, request: Request,
                       cmd: c.Forward) -> Outcome:
        """The request moves to the competent office (EIO art. 7(6)): it becomes the
        requested office, gets the card and the thread from now on, and must acknowledge it;
        the forwarding office keeps read access to what it saw (``former_party``)."""
        target = self.directory.office(cmd.to)
        if target is None:
            known = ", ".join(o.slug for o in self.directory.offices if o.slug != office.slug)
            raise Refusal(m.UNKNOWN_OFFICE, slug=echo(cmd.to), known=known)
        if target.slug == request.requested:
            raise Refusal(m.FORWARD_SAME, ref=request.ref, office=target.name)
        if target.slug == request.requesting:
            raise Refusal(m.FORWARD_TO_REQUESTING, ref=request.ref, office=target.name)
        if request.confidential and not target.members:  # as on open: nobody could read it
            raise Refusal(m.FORWARD_CONF_NO_MEMBERS, ref=request.ref, office=target.name)
        requesting = self.directory.office(request.requesting)
        assert requesting is not None
        try:
            legal.check_scope(legal.instrument_of(self.directory, request), requesting, target)
        except legal.ClockRefusal as error:
            raise Refusal(error.template, **error.values) from None
        before, upto = replace(request), len(await ctx.uow.history.for_request(request.id)) + 1
        old_rooms = await self._request_rooms(ctx, request)
        old_status = request.status
        instrument = legal.instrument_of(self.directory, request)
        ack_within = instrument.ack_within if instrument and instrument.ack_within \
            else self.directory.policy.ack_within
        # The new office acknowledges it afresh: Annex B, the officer and a promised date
        # were the first office's.
        request.requested, request.status = target.slug, Status.OPEN
        request.ack_due_at = min(target.calendar.deadline(ctx.now, ack_within), request.due_at)
        request.ack_nudges_sent, request.ack_ref, request.ack_contact = 0, "", ""
        request.assignee = request.eta = None
        request.eta_reminded = False
        request.updated_at = ctx.now
        self._reschedule(request)
        detail: dict[str, Any] = {"from": office.slug, "to": target.slug, "reason": cmd.reason}
        if request.status is not old_status:
            detail["status"] = [old_status.value, request.status.value]
        await self._history(ctx, request, m.STATUS_VERB["forward"], **detail)
        await ctx.uow.former.add(before, office=office.slug, to=target.slug, upto=upto,
                                 at=ctx.now)
        await ctx.uow.requests.update(request)
        change = Changed(request=request, verb="forward", who=ctx.actor.display,
                         office=office.slug, detail=detail, private=cmd.reason)
        await self._fan_out(ctx, change, rooms=[
            room for room in old_rooms if self.party_room(request, room)])
        for room in self._card_rooms(request, origin=None):
            reader = self.present.room_reader(room)
            self._post(ctx, room, reader.post(
                "card", reader.words(m.FORWARDED_HERE).format(
                    ref=request.ref, office=target.name, former=office.name, case=request.case,
                    kind=reader.words.kind(request.kind.value), requesting=requesting.name,
                    due=reader.words.when(request.due_at, reader.tz, ctx.now)),
                ctx.now, request_id=request.id,
                card=self.present.card(request, now=ctx.now, audience=reader.audience)))
        reply = self.present.change_reply(change, ctx.reader, ctx.now)
        return Outcome(self._text(ctx, "reply", reply, request_id=request.id), verb="forward",
                       request_id=request.id)

    async def end_postponements(self, *, batch: int = 100) -> int:
        """The tick: postponements whose date has come end by themselves; each request goes
        back to the status it was postponed from (and is chased again), both sides told.
        Returns the number of posts queued."""
        now, queued = self.clock.now(), 0
        while True:
            async with self.uow() as uow:
                requests = await uow.requests.postponements_due(now, batch)
                ctx = self._ctx(uow, Actor(user="liaisonbot", room="system:tick"), now)
                for request in requests:
                    await self._end_postponement(ctx, request)
                queued += len(ctx.posts)
                await self._commit(ctx)
            if len(requests) < batch:
                return queued

    async def _end_postponement(self, ctx: _Ctx, request: Request) -> None:
        until, old = request.hold_until, request.status
        assert until is not None
        moved = legal.end_hold(self.directory, request, ctx.now)
        release(request)
        office = self.directory.office(request.requested)
        if office is not None:
            skip_held_nudges(request, self.directory.policy, office.calendar, ctx.now)
        request.updated_at = ctx.now
        self._reschedule(request)
        await self._history(ctx, request, m.STATUS_VERB["resume"], until=utc_text(until),
                            status=[old.value, request.status.value],
                            deadline=moved or None)
        await ctx.uow.requests.update(request)
        for room in await self._request_rooms(ctx, request):
            reader = self.present.room_reader(room)
            w = reader.words
            text = w(m.POSTPONEMENT_ENDED).format(ref=request.ref,
                                                  until=w.when(until, reader.tz, ctx.now),
                                                  status=w.status(request.status.value))
            card = self.present.card(request, now=ctx.now, audience=reader.audience)
            self._post(ctx, room, reader.post("card_update", text, ctx.now,
                                              request_id=request.id, card=card))
            self._post(ctx, room, reader.post("note", text, ctx.now, request_id=request.id,
                                              in_thread=True))

    async def _change(self, ctx: _Ctx, office: Office, request: Request,
                      cmd: c.Command) -> Outcome:
        verb = getattr(cmd, "verb", None) or type(cmd).__name__.lower()
        if isinstance(cmd, c.PostponeMeasure):
            verb = "postpone"
        rule = measures_use.rule_for(cmd) or RULES[verb]  # one measure (R-n/k): its own
        side = request.side_of(office.slug)
        assert side is not None
        if side not in rule.sides:
            owner = request.requesting if Side.REQUESTING in rule.sides else request.requested
            side_name = ctx.words(m.SIDE_NAMES[next(iter(rule.sides)).value])
            raise Refusal(m.WRONG_SIDE, side=side_name,
                          office=self.directory.name(owner), verb=verb, ref=request.ref)
        if request.status not in rule.from_statuses:
            raise Refusal(m.WRONG_STATUS, ref=request.ref,
                          status=ctx.words.status(request.status.value),
                          done=ctx.words.done(verb))
        if isinstance(cmd, c.Forward):
            return await self._forward(ctx, office, request, cmd)
        old_status = request.status
        try:
            detail, private = self._apply(ctx, request, cmd, verb, side)
        except legal.ClockRefusal as error:
            raise Refusal(error.template, **error.values) from None
        except MeasureError as error:
            raise Refusal(error.template, **measures_use.refusal_values(error)) from None
        measured = measures_use.touches_measures(request, cmd, verb)
        implied = measures_use.implied_status(request) if measured and verb != "reopen" \
            else None
        if implied is not None:
            request.status = implied
        elif rule.to_status is not None:
            request.status = rule.to_status
        request.updated_at = ctx.now
        self._reschedule(request)
        if request.status is not old_status:
            detail["status"] = [old_status.value, request.status.value]
        # The entry first: the request's update then carries its chain's new end (one
        # statement, under the version lock).
        one = "measure_no" in detail  # one measure: its own action (``measures_use.action``)
        await self._history(ctx, request, measures_use.action(verb, cmd, request) if one
                            else m.STATUS_VERB[verb], **detail)
        await ctx.uow.requests.update(request)
        change = Changed(request=request, verb=verb, who=ctx.actor.display, office=office.slug,
                         detail=detail, private=private,
                         transition=rule.to_status is not None or implied is not None)
        await self._fan_out(ctx, change)
        reply = self.present.change_reply(change, ctx.reader, ctx.now)
        return Outcome(self._text(ctx, "reply", reply, request_id=request.id), verb=verb,
                       request_id=request.id)

    def _apply(self, ctx: _Ctx, request: Request, cmd: c.Command,
               verb: str, side: Side) -> tuple[dict[str, Any], str]:
        """Change ``request`` for ``cmd``; returns the history detail and the private text."""
        calendar_office = self.directory.office(request.requested)
        assert calendar_office is not None
        if isinstance(cmd, c.Extend):
            old = request.due_at
            new_due = self._resolve_due(cmd.due, calendar_office, ctx.now, m.NEW_DUE_DATE)
            request.answer_nudges_sent = 0
            extended = legal.extend_legal(self.directory, request, side, new_due, cmd.reason,
                                          ctx.words)
            if extended is not None:
                return extended, cmd.reason
            request.due_at = new_due
            return {"due": [utc_text(old), utc_text(request.due_at)],
                    "reason": cmd.reason}, cmd.reason
        if isinstance(cmd, c.Record):
            moment = legal.moment_of(cmd.when, calendar_office, ctx.now, cmd.event)
            legal.check_event(self.directory, request, cmd.event)
            old_events = dict(request.events)
            request.events = {**request.events, cmd.event: moment}
            legal.refresh_due(self.directory, request)
            return {"event": cmd.event, "at": utc_text(moment),
                    "was": utc_text(old_events[cmd.event]) if cmd.event in old_events
                    else None, "note": cmd.note, "due": utc_text(request.due_at)}, cmd.note
        if isinstance(cmd, c.Snooze):
            request.snoozed_until = self._resolve_due(cmd.until, calendar_office, ctx.now,
                                                      m.SNOOZE_DATE)
            return {"until": utc_text(request.snoozed_until), "reason": cmd.reason}, cmd.reason
        if isinstance(cmd, c.Assign):
            old_assignee, request.assignee = request.assignee, cmd.user
            return {"assignee": [old_assignee, cmd.user]}, ""
        if isinstance(cmd, c.PostponeMeasure):
            until = self._resolve_due(cmd.until, calendar_office, ctx.now, m.POSTPONE_DATE)
            return measures_use.postpone_measure(request, cmd.measure, until=until,
                                                 reason=cmd.reason), cmd.reason
        if isinstance(cmd, c.Postpone):
            until = self._resolve_due(cmd.until, calendar_office, ctx.now, m.POSTPONE_DATE)
            hold(request, Status.POSTPONED, ctx.now, reason=cmd.reason, until=until)
            return {"until": utc_text(until), "reason": cmd.reason}, cmd.reason
        assert isinstance(cmd, c.Transition)
        if verb == "consult":
            hold(request, Status.CONSULTING, ctx.now, reason=cmd.text)
            return {"text": cmd.text}, cmd.text
        if verb == "resume":
            held_until = request.hold_until
            moved = legal.end_hold(self.directory, request, ctx.now)
            release(request)
            skip_held_nudges(request, self.directory.policy, calendar_office.calendar, ctx.now)
            return {"note": cmd.text, "until": utc_text(held_until) if held_until else None,
                    "deadline": moved or None}, cmd.text
        if verb in ("incomplete", "complete"):
            return legal.transition(self.directory, request, verb, cmd.text, ctx.now), cmd.text
        if cmd.eta is not None:
            request.eta = self._resolve_due(cmd.eta, calendar_office, ctx.now, m.ETA_DATE)
            request.eta_reminded = False  # a new promised date: its own reminder, once
        extra: dict[str, Any] = {}
        if cmd.at is not None:  # the real moment, through the official channel
            extra["at"] = utc_text(legal.moment_of(cmd.at, calendar_office, ctx.now, "at"))
        if cmd.received is not None:
            received = legal.moment_of(cmd.received, calendar_office, ctx.now, "received")
            request.events = {**request.events, "received": received}
            extra["received"] = utc_text(received)
        if cmd.ref:
            request.ack_ref = extra["ref"] = cmd.ref
        if cmd.contact:
            request.ack_contact = extra["contact"] = cmd.contact
        if verb == "answer" and cmd.measure is None:
            request.answer = cmd.text
            request.conditions = cmd.conditions
        if measures_use.touches_measures(request, cmd, verb):  # issue 24: R-n/k, or all
            extra.update(measures_use.apply(request, cmd, verb, at=datetime.fromisoformat(
                extra["at"]) if "at" in extra else ctx.now))
        if cmd.conditions:
            extra["conditions"] = cmd.conditions
        if cmd.received is not None or verb == "answer":
            legal.refresh_due(self.directory, request)
            if cmd.received is not None:
                extra["due"] = utc_text(request.due_at)
        key = {"answer": "answer", "reopen": "reason", "decline": "reason",
               "withdraw": "reason"}.get(verb, "note")
        return {key: cmd.text, "eta": utc_text(request.eta) if cmd.eta and request.eta
                else None, **extra}, cmd.text


@dataclass(frozen=True)
class _How:
    """How a command is answered and settled (``Desk.handle_command``'s keywords)."""

    reply_in_room: bool = True
    privately: Privately | None = None
    replay: str | None = None
    settle: Ticket | None = None


async def _retrying(attempt: Callable[[], Awaitable[_T]], tries: int = 3) -> _T:
    """Run ``attempt`` again on the new state when it lost a race for its request (a
    ``Conflict``: the request or its audit chain moved meanwhile); after ``tries`` the last
    Conflict propagates. Every unit of work of the desk that changes a request runs in it."""
    for left in range(tries - 1, -1, -1):
        try:
            return await attempt()
        except Conflict:
            if not left:
                raise
    raise AssertionError("unreachable")


def _valid(actor: Actor) -> Actor:
    """The actor with its display name and thread made valid like any inbound text."""
    return replace(actor, name=valid_text(actor.name, 255),
                   thread_root=valid_text(actor.thread_root, 255) if actor.thread_root else None)


__all__ = ["PENDING", "Actor", "Desk", "Outcome", "Privately", "Refusal"]
