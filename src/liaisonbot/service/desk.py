"""The desk's use cases: one entry point per inbound thing (a command, a thread message).

Each call runs in one unit of work: the state change, its history entries and every post it
causes (to the outbox) commit together or not at all. Platforms only translate; every decision
(who may, what status, who sees what) is taken here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from liaisonbot.domain import commands as c
from liaisonbot.domain.audit import utc_text
from liaisonbot.domain.cards import Card, Post
from liaisonbot.domain.directory import Directory
from liaisonbot.domain.followups import business_days_late, next_nudge_at
from liaisonbot.domain.grammar import CommandError, parse
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
from liaisonbot.domain.refs import format_request_id, platform_of
from liaisonbot.domain.text import echo, valid_text
from liaisonbot.domain.timefmt import local_time, when
from liaisonbot.service import messages as m
from liaisonbot.service.ports import (
    Clock,
    Conflict,
    NullTelemetry,
    OutboxDraft,
    Telemetry,
    UnitOfWork,
    UnitOfWorkFactory,
)

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
    changed anything. ``reply_in_room`` replies are already in the outbox."""

    reply: Post
    ok: bool = True
    verb: str = ""
    request_id: int | None = None


class Refusal(Exception):
    """A command that is understood but not allowed; ``str()`` is the sentence to show."""


@dataclass
class _Ctx:
    uow: UnitOfWork
    actor: Actor
    now: datetime
    office: Office | None
    posts: list[tuple[str, Post]] = field(default_factory=list)

    @property
    def tz(self) -> str:
        return self.office.calendar.tz.key if self.office else "UTC"


class Desk:
    """The request desk. ``on_posted`` is called after a commit that queued posts."""

    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock, directory: Directory,
                 on_posted: Callable[[], None] | None = None,
                 telemetry: Telemetry | None = None) -> None:
        self.uow = uow
        self.telemetry = telemetry or NullTelemetry()
        self.clock = clock
        self.directory = directory
        self.on_posted = on_posted or (lambda: None)

    # ----------------------------------------------------------------- entry points

    async def handle_command(self, actor: Actor, text: str, *, event_id: str | None = None,
                             reply_in_room: bool = True,
                             also_mark: Sequence[str] = ()) -> Outcome | None:
        """Run one command. With ``event_id`` an inbound event is handled at most once (None
        is returned for a replay). ``also_mark`` are further dedupe keys recorded in the same
        transaction: the command is a replay when any of them was recorded before (a platform
        uses them for time windows). With ``reply_in_room`` the reply is queued to the room."""
        actor, text = _valid(actor), valid_text(text)  # the edge: every platform comes here
        try:
            command = parse(text)
        except CommandError as error:
            command, refusal = None, str(error)
        verb = text.split(maxsplit=1)[0].lower()[:16] if command and text.strip() else "invalid"
        try:
            outcome = await self._attempts(actor, command, refusal if command is None else None,
                                           event_id=event_id, reply_in_room=reply_in_room,
                                           also_mark=also_mark)
        except Exception:
            # Never a traceback in chat: log it, answer one sentence, change nothing.
            log.exception("command failed", extra={"verb": verb, "platform": actor.platform})
            self.telemetry.command(verb, actor.platform, "error")
            outcome = await self._run(actor, None, m.INTERNAL_ERROR, event_id=None,
                                      reply_in_room=reply_in_room)
            assert outcome is not None
            return outcome
        result = "duplicate" if outcome is None else "ok" if outcome.ok else "refused"
        self.telemetry.command(verb, actor.platform, result)
        log.info("command", extra={"verb": verb, "platform": actor.platform, "outcome": result,
                                   "request": format_request_id(outcome.request_id)
                                   if outcome and outcome.request_id else None})
        return outcome

    async def _attempts(self, actor: Actor, command: c.Command | None, refusal: str | None, *,
                        event_id: str | None, reply_in_room: bool,
                        also_mark: Sequence[str]) -> Outcome | None:
        """Run the command; a lost race re-runs it on the new state (three times at most)."""
        for _attempt in range(3):
            try:
                return await self._run(actor, command, refusal, event_id=event_id,
                                       reply_in_room=reply_in_room, also_mark=also_mark)
            except Conflict:
                continue
        return await self._run(actor, None, m.CHANGED_MEANWHILE.format(
            ref=format_request_id(getattr(command, "request_id", 0))), event_id=event_id,
            reply_in_room=reply_in_room, also_mark=also_mark)

    async def relay(self, actor: Actor, text: str, *, event_id: str | None = None,
                    files: list[tuple[str, int]] | None = None,
                    source_ref: str | None = None) -> bool:
        """A plain message in a room: relayed when it sits in a request's thread. True if it
        was relayed (or recorded as a file notice).

        ``text`` is neutral markup (``chat.formatting``); ``source_ref`` names the original
        message (``ROOM#native-id``) so that its later edit or deletion can follow it."""
        actor, text = _valid(actor), valid_text(text)
        if actor.thread_root is None:
            return False
        files = [(valid_text(name, 255), size) for name, size in files or []]
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
            ctx = _Ctx(uow, actor, self.clock.now(), office)
            await self._relay_into_threads(ctx, request, link.room, text, files or [],
                                           source_ref=source_ref)
            if source_ref and text:
                await uow.state.put(_RELAY_KEY + source_ref, json.dumps(
                    {"request": request.id, "room": link.room, "user": actor.user}), ctx.now)
            await self._commit(ctx)
        return True

    async def tell_unreadable(self, actor: Actor, event_id: str) -> None:
        """A message the platform could not read (its decryption keys never came): answer
        once in its room and thread, so it is never silently dropped."""
        await self._run(actor, None, m.UNDECRYPTABLE, event_id=f"unreadable:{event_id}",
                        reply_in_room=True)

    async def relay_edit(self, actor: Actor, source_ref: str, text: str, *,
                         event_id: str | None = None) -> bool:
        """The author edited a relayed message: record it and queue the edit of every copy.
        Only the original author's edit counts (Matrix lets anyone send an ``m.replace``)."""
        return await self._relay_change(actor, source_ref, text, event_id=event_id,
                                        kind="relay_edit")

    async def relay_delete(self, actor: Actor, source_ref: str, *,
                           event_id: str | None = None) -> bool:
        """A relayed message was deleted (the platform authorised it): record it and queue
        the deletion of every copy."""
        return await self._relay_change(actor, source_ref, "", event_id=event_id,
                                        kind="relay_delete")

    async def _relay_change(self, actor: Actor, source_ref: str, text: str, *,
                            event_id: str | None, kind: str) -> bool:
        actor, text = _valid(actor), valid_text(text)
        async with self.uow() as uow:
            known = await uow.state.get(_RELAY_KEY + source_ref)
            if known is None:
                return False  # not a relayed message (or one of the bot's own copies)
            origin = json.loads(known)
            if kind == "relay_edit" and origin.get("user") != actor.user:
                return False
            if event_id and not await uow.inbound.first_time(actor.platform, event_id,
                                                              self.clock.now()):
                return False
            request = await uow.requests.get(int(origin["request"]))
            office = self.directory.office_for_room(actor.room)
            if request is None or office is None or not request.is_party(office.slug):
                return False
            ctx = _Ctx(uow, actor, self.clock.now(), office)
            await self._history(ctx, request, "relay edited" if text else "relay deleted",
                                room=origin["room"], source=source_ref, text=text)
            author = f"{actor.display} · {office.slug}"
            for room in await self._request_rooms(ctx, request):
                if room != origin["room"]:
                    self._post(ctx, room, Post(
                        kind=kind, text=text, tz=self._tz_of_room(room),
                        as_of=ctx.now.isoformat(), request_id=request.id, in_thread=True,
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

    async def _run(self, actor: Actor, command: c.Command | None, refusal: str | None, *,
                   event_id: str | None, reply_in_room: bool,
                   also_mark: Sequence[str] = ()) -> Outcome | None:
        now = self.clock.now()
        keys = [k for k in (event_id, *also_mark) if k]
        async with self.uow() as uow:
            if not await self._mark(uow, actor.platform, keys, now):
                return None
            ctx = _Ctx(uow, actor, now, self.directory.office_for_room(actor.room))
            outcome = self._refused(ctx, refusal) if refusal else None
            if outcome is None:
                assert command is not None
                try:
                    outcome = await self._dispatch(ctx, command)
                except Refusal as error:
                    await uow.rollback()  # nothing half-stored; keep only the event marks
                    await self._mark(uow, actor.platform, keys, now)
                    ctx = _Ctx(uow, actor, now, ctx.office)
                    outcome = self._refused(ctx, str(error))
            if reply_in_room and not outcome.reply.extra.get("skip"):
                self._post(ctx, self._room_key(actor.room), replace(
                    outcome.reply, in_thread=False,
                    extra={**outcome.reply.extra, "reply_to_thread": actor.thread_root}))
            await self._commit(ctx)
        return outcome

    def _refused(self, ctx: _Ctx, sentence: str) -> Outcome:
        return Outcome(self._text(ctx, "reply", sentence), ok=False)

    async def _commit(self, ctx: _Ctx) -> None:
        await ctx.uow.outbox.add_many([
            OutboxDraft(platform=platform_of(room), room=room, post=post,
                        request_id=post.request_id, at=ctx.now) for room, post in ctx.posts])
        await ctx.uow.commit()
        if ctx.posts:
            self.on_posted()

    def _text(self, ctx: _Ctx, kind: str, text: str, **kw: Any) -> Post:
        return Post(kind=kind, text=text, tz=ctx.tz, as_of=ctx.now.isoformat(), **kw)

    def _post(self, ctx: _Ctx, room: str, post: Post) -> None:
        ctx.posts.append((room, post))

    async def _history(self, ctx: _Ctx, request: Request | None, action: str,
                       **detail: Any) -> None:
        await ctx.uow.history.append(
            request_id=request.id if request else None, at=ctx.now, actor=ctx.actor.user,
            platform=ctx.actor.platform, action=action,
            detail={k: v for k, v in detail.items() if v not in (None, "")})

    async def _dispatch(self, ctx: _Ctx, command: c.Command) -> Outcome:
        if isinstance(command, c.Help):
            return Outcome(self._text(ctx, "reply", m.help_text(command.topic)), verb="help")
        office = self._acting_office(ctx)
        if isinstance(command, c.OpenRequest):
            return await self._open(ctx, office, command)
        if isinstance(command, c.ListCase):
            return await self._list(ctx, office, command)
        if isinstance(command, c.ListOverdue):
            return await self._overdue(ctx, office)
        request = await self._visible(ctx, office, command.request_id)
        if isinstance(command, c.Show):
            return await self._show(ctx, office, request)
        return await self._change(ctx, office, request, command)

    def _acting_office(self, ctx: _Ctx) -> Office:
        if ctx.office is None:
            raise Refusal(m.NOT_BOUND)
        if not ctx.office.may_act(ctx.actor.user):
            raise Refusal(m.NOT_MEMBER.format(office=ctx.office.name))
        return ctx.office

    async def _visible(self, ctx: _Ctx, office: Office, request_id: int) -> Request:
        request = await ctx.uow.requests.get(request_id)
        if request is None or not request.is_party(office.slug):
            raise Refusal(m.NOT_PARTY.format(ref=format_request_id(request_id),
                                             office=office.name))
        return request

    # ----------------------------------------------------------------- cards and posts

    def card(self, request: Request, *, now: datetime, reveal: bool = False) -> Card:
        """The neutral card; the summary only when not confidential (or ``reveal``)."""
        calendar = self._calendar(request)
        show_summary = reveal or not request.confidential
        return Card(
            request_id=request.id, case=request.case, kind=request.kind.value,
            requesting=request.requesting, requesting_name=self.directory.name(request.requesting),
            requested=request.requested, requested_name=self.directory.name(request.requested),
            status=request.status.value, due_at=request.due_at.isoformat(),
            urgent=request.urgent, confidential=request.confidential,
            summary=request.summary if show_summary else None,
            basis=request.basis if show_summary else "", assignee=request.assignee,
            eta=request.eta.isoformat() if request.eta else None,
            days_late=business_days_late(request, calendar, now))

    def _calendar(self, request: Request) -> Any:
        office = self.directory.office(request.requested)
        assert office is not None, f"office {request.requested} left the config"
        return office.calendar

    def _tz_of_room(self, room: str) -> str:
        office = self.directory.office_for_room(room)
        return office.calendar.tz.key if office else "UTC"

    def _members(self, request: Request) -> list[str]:
        found: list[str] = []
        for slug in (request.requesting, request.requested):
            office = self.directory.office(slug)
            found.extend(u for u in (office.members if office else ()) if u not in found)
        return found

    async def _fan_out(self, ctx: _Ctx, request: Request, headline: str, *,
                       private: str = "", mentions_for: dict[str, tuple[str, ...]] | None = None,
                       update_card: bool = True) -> None:
        """A thread note (and a card update) in every room the request was posted to; the
        private text goes by direct message to listed members when the request is
        confidential, else into the note itself."""
        rooms = await self._request_rooms(ctx, request)
        shown = headline if not private else (
            f"{headline} {m.CONF_TEXT_IN_DM}" if request.confidential
            else f"{headline}:\n{private}")
        for room in rooms:
            tz = self._tz_of_room(room)
            if update_card:
                self._post(ctx, room, Post(kind="card_update", text=headline, tz=tz,
                                           as_of=ctx.now.isoformat(), request_id=request.id,
                                           card=self.card(request, now=ctx.now)))
            self._post(ctx, room, Post(kind="note", text=shown, tz=tz, as_of=ctx.now.isoformat(),
                                       request_id=request.id, in_thread=True,
                                       mentions=(mentions_for or {}).get(room, ())))
        if private and request.confidential:
            self._direct(ctx, request, lambda _tz: f"{headline}:\n{private}")

    def _direct(self, ctx: _Ctx, request: Request, text: Callable[[str], str]) -> None:
        """The request in full, by direct message to each listed member of both offices;
        ``text`` is composed in each member's office time zone."""
        for member in self._members(request):
            office = next((o for o in (self.directory.office(request.requesting),
                                       self.directory.office(request.requested))
                           if o and member in o.members), None)
            tz = office.calendar.tz.key if office else "UTC"
            self._post(ctx, member, Post(kind="direct", text=text(tz), tz=tz,
                                         as_of=ctx.now.isoformat(), request_id=request.id,
                                         card=self.card(request, now=ctx.now, reveal=True)))

    async def _request_rooms(self, ctx: _Ctx, request: Request) -> list[str]:
        """Rooms holding the request's card: the requested office's rooms and the room it
        was opened from (from the thread map, else from the config)."""
        links = await ctx.uow.threads.for_request(request.id)
        rooms = [link.room for link in links]
        for room in self._card_rooms(request, origin=None):
            if room not in rooms:
                rooms.append(room)
        return rooms

    def _card_rooms(self, request: Request, origin: str | None) -> list[str]:
        requested = self.directory.office(request.requested)
        rooms = list(requested.rooms if requested else ())
        if origin and origin not in rooms:
            rooms.insert(0, origin)
        return rooms

    async def _relay_into_threads(self, ctx: _Ctx, request: Request, from_room: str, text: str,
                                  files: list[tuple[str, int]], *,
                                  source_ref: str | None = None) -> None:
        office = ctx.office
        assert office is not None
        author = f"{ctx.actor.display} · {office.slug}"
        await self._history(ctx, request, "relayed", room=from_room, text=text,
                            source=source_ref,
                            files=[{"name": n, "size": s} for n, s in files] or None)
        for room in await self._request_rooms(ctx, request):
            if room == from_room:
                continue
            tz = self._tz_of_room(room)
            if text:
                self._post(ctx, room, Post(kind="relay", text=text, tz=tz,
                                           as_of=ctx.now.isoformat(), request_id=request.id,
                                           in_thread=True, author=author,
                                           source_ref=source_ref))
            for name, size in files:
                notice = m.RELAYED_FILE.format(who=author, ref=request.ref, name=name,
                                               size=_size(size), office=office.name)
                self._post(ctx, room, Post(kind="note", text=notice, tz=tz,
                                           as_of=ctx.now.isoformat(), request_id=request.id,
                                           in_thread=True))

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
            raise Refusal(m.PAST_DATE.format(what=what, value=spec))
        if due is None or due - now > MAX_HORIZON:
            raise Refusal(m.TOO_FAR.format(what=what, value=spec, years=MAX_HORIZON.days // 365))
        if due <= now:
            raise Refusal(m.PAST_DATE.format(what=what, value=spec))
        return due

    def _reschedule(self, request: Request) -> None:
        request.next_nudge_at = next_nudge_at(request, self.directory.policy,
                                              self._calendar(request))

    async def _open(self, ctx: _Ctx, office: Office, cmd: c.OpenRequest) -> Outcome:
        target = self.directory.office(cmd.to)
        if target is None:
            known = ", ".join(o.slug for o in self.directory.offices if o.slug != office.slug)
            raise Refusal(m.UNKNOWN_OFFICE.format(slug=echo(cmd.to), known=known))
        if target.slug == office.slug:
            raise Refusal(m.SAME_OFFICE.format(slug=office.slug))
        policy, now = self.directory.policy, ctx.now
        due_spec = cmd.due or c.DueSpec(after=policy.due_for(cmd.kind, urgent=cmd.urgent))
        due = self._resolve_due(due_spec, target, now, "The due date")
        request = Request(
            id=0, case=cmd.case, kind=cmd.kind, requesting=office.slug, requested=target.slug,
            summary=cmd.summary, status=Status.OPEN, created_at=now, updated_at=now, due_at=due,
            ack_due_at=target.calendar.deadline(now, policy.ack_within), opened_by=ctx.actor.user,
            basis=cmd.basis, urgent=cmd.urgent, confidentiality=cmd.confidentiality)
        self._reschedule(request)
        await ctx.uow.requests.add(request)
        await self._history(ctx, request, "opened", case=cmd.case, kind=cmd.kind.value,
                            to=target.slug, due=utc_text(due), urgent=cmd.urgent or None,
                            basis=cmd.basis, confidentiality=cmd.confidentiality.value,
                            summary=cmd.summary)
        def headline(tz: str) -> str:
            return m.OPENED.format(ref=request.ref, case=request.case, kind=request.kind.value,
                                   requesting=office.name, requested=target.name,
                                   due=when(due, tz, now))

        origin = self._room_key(ctx.actor.room)
        for room in self._card_rooms(request, origin):
            tz = self._tz_of_room(room)
            self._post(ctx, room, Post(kind="card", text=headline(tz), tz=tz,
                                       as_of=now.isoformat(), request_id=request.id,
                                       card=self.card(request, now=now)))
        notes = [headline(ctx.tz)]
        if request.confidential:
            self._direct(ctx, request, headline)  # the card in the DM shows the summary
            notes.append(m.CONF_OPENED)
            notes.extend(m.CONF_NO_MEMBERS.format(office=o.name) for o in (office, target)
                         if not o.members)
        # In a room the card itself answers the command; the reply is for ephemeral use.
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
            requests = [r for r in requests if ctx.actor.user in (r.assignee, r.opened_by)
                        and r.status not in ENDED]
        if not requests:
            return Outcome(self._text(ctx, "reply", m.NOTHING_OPEN.format(
                scope=scope if scope != "all" else "", case=cmd.case, office=office.name)
                .replace("  ", " ")), verb="list")
        requests.sort(key=lambda r: urgency_key(r, ctx.now))
        title = f"{cmd.case}: {m.plural(len(requests), 'request')} ({scope}) for {office.name}"
        cards = tuple(self.card(r, now=ctx.now) for r in requests)
        return Outcome(self._text(ctx, "list", title, cards=cards), verb="list")

    async def _overdue(self, ctx: _Ctx, office: Office) -> Outcome:
        requests = await ctx.uow.requests.overdue(office.slug, ctx.now)
        if not requests:
            return Outcome(self._text(ctx, "reply", m.NOTHING_OVERDUE.format(office=office.name)),
                           verb="overdue")
        requests.sort(key=lambda r: urgency_key(r, ctx.now))
        title = f"Overdue for {office.name}: {m.plural(len(requests), 'request')}"
        cards = tuple(self.card(r, now=ctx.now) for r in requests)
        return Outcome(self._text(ctx, "list", title, cards=cards), verb="overdue")

    async def _show(self, ctx: _Ctx, office: Office, request: Request) -> Outcome:
        entries = await ctx.uow.history.for_request(request.id)
        lines = [f"{request.ref} history:"]
        lines += [self._history_line(e, ctx.tz, ctx.now, hide=request.confidential)
                  for e in entries]
        if request.confidential and ctx.actor.user in self._members(request):
            full = [m.SHOW_DM.format(ref=request.ref, office=office.name),
                    f"Summary: {request.summary}"]
            full += [self._history_line(e, ctx.tz, ctx.now, hide=False) for e in entries]
            self._post(ctx, ctx.actor.user, self._text(ctx, "direct", "\n".join(full),
                                                       request_id=request.id))
        return Outcome(self._text(ctx, "show", "\n".join(lines), request_id=request.id,
                                  card=self.card(request, now=ctx.now)), verb="show",
                       request_id=request.id)

    @staticmethod
    def _history_line(entry: Any, tz: str, now: datetime, *, hide: bool) -> str:
        moment = datetime.fromisoformat(entry.at)
        detail = dict(entry.detail)
        if hide:
            for secret in ("summary", "text", "note", "answer", "reason", "basis"):
                if secret in detail:
                    detail[secret] = "(confidential)"
        else:
            detail.pop("summary", None)
        shown = ", ".join(f"{k}: {_value(v, tz)}" for k, v in sorted(detail.items()))
        return f"- {when(moment, tz, now)} · {entry.action} by {entry.actor}" + (
            f" · {shown}" if shown else "")

    async def _change(self, ctx: _Ctx, office: Office, request: Request,
                      cmd: c.Command) -> Outcome:
        verb = getattr(cmd, "verb", None) or type(cmd).__name__.lower()
        rule = RULES[verb]
        side = request.side_of(office.slug)
        assert side is not None
        if side not in rule.sides:
            owner = request.requesting if Side.REQUESTING in rule.sides else request.requested
            raise Refusal(m.WRONG_SIDE.format(side=next(iter(rule.sides)).value,
                                              office=self.directory.name(owner), verb=verb,
                                              ref=request.ref))
        if request.status not in rule.from_statuses:
            raise Refusal(m.WRONG_STATUS.format(ref=request.ref, status=request.status.value,
                                                done=m.STATUS_VERB[verb]))
        old_status = request.status
        detail, private = self._apply(ctx, request, cmd, verb)
        if rule.to_status is not None:
            request.status = rule.to_status
        request.updated_at = ctx.now
        self._reschedule(request)
        await ctx.uow.requests.update(request)
        if request.status is not old_status:
            detail["status"] = [old_status.value, request.status.value]
        await self._history(ctx, request, m.STATUS_VERB[verb], **detail)
        headline = m.NOTE_BY.format(ref=request.ref, done=m.STATUS_VERB[verb],
                                    who=ctx.actor.display, office=office.slug)
        summary = self._change_summary(ctx, request, verb, detail)
        await self._fan_out(ctx, request, headline + summary, private=private)
        reply = m.DONE.format(ref=request.ref, status=request.status.value) \
            if rule.to_status else m.DONE_FIELD.format(ref=request.ref, what=summary.strip(" ·"))
        return Outcome(self._text(ctx, "reply", reply, request_id=request.id), verb=verb,
                       request_id=request.id)

    def _change_summary(self, ctx: _Ctx, request: Request, verb: str,
                        detail: dict[str, Any]) -> str:
        tz = self._tz_of_room(self._room_key(ctx.actor.room))
        if verb == "extend":
            return f" · due now {when(request.due_at, tz, ctx.now)}"
        if verb == "snooze" and request.snoozed_until:
            return f" · nudges held until {when(request.snoozed_until, tz, ctx.now)}"
        if verb == "assign":
            return f" · handled by {request.assignee}"
        if verb == "ack" and request.eta:
            return f" · answer expected {when(request.eta, tz, ctx.now)}"
        return ""

    def _apply(self, ctx: _Ctx, request: Request, cmd: c.Command,
               verb: str) -> tuple[dict[str, Any], str]:
        """Change ``request`` for ``cmd``; returns the history detail and the private text."""
        calendar_office = self.directory.office(request.requested)
        assert calendar_office is not None
        if isinstance(cmd, c.Extend):
            old = request.due_at
            request.due_at = self._resolve_due(cmd.due, calendar_office, ctx.now, "The new due date")
            request.answer_nudges_sent = 0
            return {"due": [utc_text(old), utc_text(request.due_at)],
                    "reason": cmd.reason}, cmd.reason
        if isinstance(cmd, c.Snooze):
            request.snoozed_until = self._resolve_due(cmd.until, calendar_office, ctx.now,
                                                      "The snooze date")
            return {"until": utc_text(request.snoozed_until), "reason": cmd.reason}, cmd.reason
        if isinstance(cmd, c.Assign):
            old_assignee, request.assignee = request.assignee, cmd.user
            return {"assignee": [old_assignee, cmd.user]}, ""
        assert isinstance(cmd, c.Transition)
        if cmd.eta is not None:
            request.eta = self._resolve_due(cmd.eta, calendar_office, ctx.now, "The eta")
        if verb == "answer":
            request.answer = cmd.text
        key = {"answer": "answer", "reopen": "reason", "decline": "reason",
               "withdraw": "reason"}.get(verb, "note")
        return {key: cmd.text, "eta": utc_text(request.eta) if cmd.eta and request.eta
                else None}, cmd.text


def _valid(actor: Actor) -> Actor:
    """The actor with its display name and thread made valid like any inbound text."""
    return replace(actor, name=valid_text(actor.name, 255),
                   thread_root=valid_text(actor.thread_root, 255) if actor.thread_root else None)


def _value(value: Any, tz: str) -> str:
    """A history detail value for people: ``a → b`` for changes, local times for moments."""
    if isinstance(value, list) and len(value) == 2 and not isinstance(value[0], dict):
        return f"{_value(value[0], tz)} → {_value(value[1], tz)}"
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and "T" in value:
        try:
            return local_time(datetime.fromisoformat(value), tz)
        except ValueError:
            return value
    return "—" if value is None else str(value)


def _size(size: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return str(size)


__all__ = ["PENDING", "Actor", "Desk", "Outcome", "Refusal"]
