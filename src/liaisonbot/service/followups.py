"""The follow-up tick: nudges for late requests and each office's morning digest.

The scheduler (or the console's ``:advance``) only calls ``Ticker.tick``; every fact lives in
SQL. A request is claimed, its nudge recorded and its posts queued in one transaction
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so two processes, a restart or a clock jump never
send a nudge twice; a digest day is claimed per office the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from liaisonbot.domain.audit import state_hash
from liaisonbot.domain.cards import Post
from liaisonbot.domain.deadlines import Deadline
from liaisonbot.domain.followups import (
    NudgeDue,
    apply_nudge,
    business_days_late,
    nudge_due,
)
from liaisonbot.domain.model import Office, Request, Status
from liaisonbot.domain.refs import distinct_users, platform_of
from liaisonbot.service import clocks as legal
from liaisonbot.service import messages as m
from liaisonbot.service.i18n import Words, words
from liaisonbot.service.ports import (
    HistoryDraft,
    OutboxDraft,
    ThreadLink,
    UnitOfWork,
    UnitOfWorkFactory,
)
from liaisonbot.service.reports import (
    has_history,
    take_checkpoint,
    weekly_figures,
    weekly_text,
)
from liaisonbot.service.stats import REPORT_ACTIONS, statistics, statistics_text

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from liaisonbot.service.desk import Desk
    from liaisonbot.service.ports import Clock

log = logging.getLogger(__name__)
#: How long inbound event ids are kept for replay protection (a Matrix backfill or a Slack
#: retry never reaches further back than days).
KEEP_INBOUND = timedelta(days=30)
#: How long an inbox row is kept once done (its key still recognises a late retry).
KEEP_INBOX = timedelta(days=7)
#: State rows that only matter for a while: relay sources (edits of month-old messages are
#: not carried over).
KEEP_STATE = {"relay:": timedelta(days=90),
              # the board's logged-out session ids: a session lasts at most 12 hours
              "board:revoked:": timedelta(days=1)}


class Ticker:
    """Runs the follow-up jobs that are due at the clock's now."""

    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock, desk: Desk,
                 on_posted: Callable[[], None] | None = None, batch: int = 100,
                 weekly: frozenset[str] = frozenset(),
                 audit_key: Callable[[], Ed25519PrivateKey] | None = None) -> None:
        self.uow = uow
        self.clock = clock
        self.desk = desk
        self.directory = desk.directory
        self.present = desk.present
        self.on_posted = on_posted or (lambda: None)
        self.batch = batch
        self.weekly = weekly
        #: The checkpoints' signing key (``audit_key``), asked for on the first daily post.
        self.audit_key = audit_key
        self._checkpointed: set[date] = set()
        self.last_tick: datetime | None = None
        #: What this process already knows is done (claimed by it or by another process), so
        #: a tick does not ask the database again: the latest digest day per office, and the
        #: days housekept. The database's claims stay the guard between processes.
        self._digested: dict[str, date] = {}
        self._housekept: set[date] = set()

    async def tick(self) -> int:
        """Send what is due now; returns the number of posts queued."""
        now = self.clock.now()
        # Postponements that end now first: the nudges below then chase them again.
        queued = await self.desk.end_postponements()
        queued += await self.nudges(now) + await self.digests(now) + await self.reports(now)
        queued += await self.checkpoints(now)
        await self.housekeeping(now)
        self.last_tick = now
        if queued:
            self.on_posted()
        return queued

    async def next_due(self, after: datetime) -> datetime | None:
        """The next moment strictly after ``after`` at which a job falls due."""
        async with self.uow(read_only=True) as uow:
            candidates = [await uow.requests.next_nudge_after(after),
                          await uow.outbox.next_attempt_after(after)]
        for office in self.directory.offices:
            calendar = office.calendar
            day = calendar.local(after).date()
            opening = calendar.opening(calendar.next_business_day(day, include=True))
            if opening <= after:
                opening = calendar.opening(calendar.next_business_day(day))
            candidates.append(opening)
        found = [c for c in candidates if c is not None]
        return min(found) if found else None

    # ----------------------------------------------------------------- nudges

    async def nudges(self, now: datetime) -> int:
        """Claim due requests a batch at a time; each batch is decided in memory and written
        with a few bulk statements (history chain, request counters, outbox) in one
        transaction."""
        queued = 0
        while True:
            async with self.uow() as uow:
                requests = await uow.requests.claim_nudges(now, self.batch)
                links = await uow.threads.for_requests([r.id for r in requests])
                entries: list[HistoryDraft] = []
                posts: list[OutboxDraft] = []
                for request in requests:
                    start = len(entries)
                    self._nudge_one(request, now, links.get(request.id, []), entries, posts)
                    # each entry seals the row as it stands (the tick moves only the
                    # counters ``state_hash`` leaves out)
                    sealed = state_hash(request)
                    entries[start:] = [replace(e, state=sealed) if e.request_id == request.id
                                       else e for e in entries[start:]]
                await uow.history.append_many(entries)
                await uow.requests.update_nudges(requests)
                await uow.outbox.add_many(posts)
                await uow.commit()
            queued += len(posts)
            if len(requests) < self.batch:
                return queued

    def _nudge_one(self, request: Request, now: datetime, links: list[ThreadLink],
                   entries: list[HistoryDraft], posts: list[OutboxDraft]) -> None:
        """Decide ``request``'s nudge at ``now``: adds its history entry and posts, and moves
        its counters and ``next_nudge_at`` on."""
        office = self.directory.office(request.requested)
        if office is None:  # the office left the config: stop chasing, keep the record
            request.next_nudge_at = None
            return
        policy, calendar, emergency = legal.chasing(self.directory, request, office)
        more_entries, more_posts = legal.follow_ups(
            self.directory, request, now, lambda r: self.desk.card(r, now=now))
        entries.extend(more_entries)
        posts.extend(more_posts)
        nudge = nudge_due(request, policy, calendar, now)
        if nudge is not None:
            apply_nudge(request, nudge)
            entries.append(HistoryDraft(
                request_id=request.id, at=now, actor="liaisonbot", platform="system",
                action="nudged", detail={"kind": nudge.kind, "number": nudge.number,
                                         "escalated": nudge.escalate, "merged": nudge.merged}))
            posts.extend(OutboxDraft(platform=platform_of(room), room=room, post=post,
                                     request_id=request.id, at=now)
                         for room, post in self._nudge_posts(request, office, nudge, now, links,
                                                             emergency))
        legal.reschedule(self.directory, request)
        upcoming = request.next_nudge_at
        if upcoming is not None and upcoming <= now:
            # the chased office's hours: the requesting office's while incomplete, else the
            # requested office's chasing calendar (around the clock for an emergency)
            requesting = self.directory.office(request.requesting)
            chasing = requesting.calendar if request.status is Status.INCOMPLETE \
                and requesting is not None else calendar
            upcoming = chasing.next_open(now + timedelta(minutes=1))
        request.next_nudge_at = upcoming

    def _nudge_text(self, request: Request, office: Office, nudge: NudgeDue, now: datetime,
                    emergency: Deadline | None, w: Words) -> str:
        tz = office.calendar.tz.key
        requesting = self.directory.name(request.requesting)
        if nudge.kind == "ack":
            text = w(m.NUDGE_ACK).format(ref=request.ref, case=request.case,
                                         kind=w.kind(request.kind.value), requesting=requesting,
                                         ack_due=w.when(request.ack_due_at, tz, now))
        else:
            if emergency is not None:  # late by hours, not business days
                hours = int((now - request.due_at).total_seconds() // 3600)
                late = w.count(m.N_HOURS, hours) if hours else w(m.LATE_NOW)
            else:
                days = business_days_late(request, office.calendar, now)
                late = w.count(m.N_BUSINESS_DAYS, days) if days else w(m.LATE_NOW)
            text = w(m.NUDGE_ANSWER).format(
                number=w.number(nudge.number), ref=request.ref, case=request.case,
                kind=w.kind(request.kind.value), requesting=requesting,
                due=w.when(request.due_at, tz, now), late=late)
        if emergency is not None:
            text += " " + w(m.NUDGE_EMERGENCY).format(cite=emergency.cite or "—")
        if nudge.merged > 1:
            text += " " + w(m.NUDGE_MERGED).format(merged=w.number(nudge.merged))
        return text

    def _nudge_posts(self, request: Request, office: Office, nudge: NudgeDue, now: datetime,
                     links: list[ThreadLink],
                     emergency: Deadline | None = None) -> list[tuple[str, Post]]:
        reader = self.present.office_reader(office)
        text = self._nudge_text(request, office, nudge, now, emergency, reader.words)
        posts: list[tuple[str, Post]] = []
        # one card for all the office's rooms (they see the same: the office's audience)
        card = self.present.card(request, now=now, audience=reader.audience)
        for room in office.rooms:
            mentions = distinct_users(u for u in office.escalation
                                      if platform_of(u) == platform_of(room)) \
                if nudge.escalate else ()
            body = text + (" " + reader.words(m.NUDGE_ESCALATE).format(people=", ".join(mentions))
                           if mentions else "")
            posts.append((room, reader.post("nudge", body, now, request_id=request.id,
                                            mentions=mentions, card=card)))
        if emergency is not None:  # and to each on-call contact, by direct message
            for user in office.on_call:
                duty = self.present.on_call_reader(request, office, user)
                posts.append((user, duty.post(
                    "direct", self._nudge_text(request, office, nudge, now, emergency,
                                               duty.words), now, request_id=request.id,
                    card=self.present.card(request, now=now, audience=duty.audience))))
        for link in links:
            if link.room in office.rooms or not self.desk.party_room(request, link.room):
                continue
            other = self.present.room_reader(link.room)
            note = other.words(m.NUDGE_NOTE).format(number=other.words.number(nudge.number),
                                                    requested=office.name, ref=request.ref)
            posts.append((link.room, other.post("note", note, now, request_id=request.id,
                                                in_thread=True)))
        return posts

    # ----------------------------------------------------------------- digests

    async def digests(self, now: datetime) -> int:
        queued = 0
        for office in self.directory.offices:
            calendar = office.calendar
            today = calendar.local(now).date()
            if not calendar.is_open(now):
                continue
            known = self._digested.get(office.slug)
            if known is not None and today <= known:
                continue
            async with self.uow() as uow:
                if not await uow.state.claim_day(office.slug, today):
                    self._digested[office.slug] = today  # another process (or run) did it
                    continue
                posts = await self._digest(uow, office, now)
                for room, post in posts:
                    await uow.outbox.add(platform=platform_of(room), room=room, post=post,
                                         request_id=None, at=now)
                await uow.commit()
            self._digested[office.slug] = today
            queued += len(posts)
        return queued

    async def _digest(self, uow: UnitOfWork, office: Office,
                      now: datetime) -> list[tuple[str, Post]]:
        calendar = office.calendar
        horizon = calendar.closing(calendar.add_business_days(calendar.local(now).date(), 2))
        items = [r for r in await uow.requests.pending_for(office.slug) if r.due_at <= horizon]
        waiting = await uow.requests.incomplete_for(office.slug)
        held = await uow.requests.held_for(office.slug)
        if not items and not waiting and not held:
            return []
        overdue = sum(1 for r in items if r.is_overdue(now))
        items.sort(key=lambda r: (r.case, r.due_at))
        reader = self.present.office_reader(office)
        w = reader.words
        title = w(m.DIGEST_TITLE).format(office=office.name, overdue=w.number(overdue),
                                         soon=w.number(len(items) - overdue))
        if waiting:  # listed apart, after the rest: their clocks are stopped
            title += " " + w.count(m.LIST_INCOMPLETE, len(waiting))
            items += sorted(waiting, key=lambda r: (r.case, r.id))
        if held:  # postponed or consulting: not chased, listed last (their dates on the card)
            title += " " + w.count(m.LIST_HELD, len(held))
            items += sorted(held, key=lambda r: (r.case, r.id))
        cards = tuple(self.present.card(r, now=now, audience=reader.audience) for r in items)
        return [(room, reader.post("list", title, now, cards=cards, extra={"digest": True}))
                for room in office.rooms]

    # ----------------------------------------------------------------- weekly reports

    async def reports(self, now: datetime) -> int:
        """On each opted-in office's first working day of the ISO week, at opening."""
        queued = 0
        for office in self.directory.offices:
            calendar = office.calendar
            today = calendar.local(now).date()
            monday = today - timedelta(days=today.weekday())
            if office.slug not in self.weekly or not calendar.is_open(now) or \
                    calendar.next_business_day(monday, include=True) != today:
                continue
            year, week, _ = today.isocalendar()
            async with self.uow() as uow:
                if not await uow.inbound.first_time("report", f"weekly:{office.slug}:"
                                                    f"{year}-W{week:02d}", now):
                    continue
                requests = await uow.requests.party_to(office.slug)
                # One query for the history of all of them (only what the figures read).
                histories = await uow.history.for_office(office.slug, REPORT_ACTIONS)
                w = words(office.language)
                text = weekly_text(office.name, weekly_figures(office.slug, requests,
                                                               histories, now), w)
                text += "\n" + statistics_text(statistics(
                    office.slug, requests, histories, now, self.directory), self.directory, w)
                for room in office.rooms:
                    await uow.outbox.add(platform=platform_of(room), room=room,
                                         post=Post(kind="report", text=text,
                                                   tz=calendar.tz.key, as_of=now.isoformat(),
                                                   locale=w.language),
                                         request_id=None, at=now)
                    queued += 1
                await uow.commit()
        return queued

    # ----------------------------------------------------------------- audit checkpoints

    async def checkpoints(self, now: datetime) -> int:
        """On the first tick of each UTC day: a signed checkpoint over every request's chain
        (``service.reports.take_checkpoint``) into every office's rooms, so each partner
        holds a copy outside this database. Claimed once per day across processes."""
        day = now.astimezone(UTC).date()
        if self.audit_key is None or day in self._checkpointed \
                or not await has_history(self.uow):  # nothing to seal yet
            return 0
        try:
            key = self.audit_key()
        except Exception:  # no key (run refuses to start without one): nothing to sign
            log.warning("no audit signing key: no checkpoint posted", exc_info=True)
            self._checkpointed.add(day)
            return 0
        word = await take_checkpoint(self.uow, key, now)
        queued = 0
        async with self.uow() as uow:  # the day's claim and its posts commit together
            if not await uow.inbound.first_time("system", f"checkpoint:{day}", now):
                self._checkpointed.add(day)
                return 0
            for office in self.directory.offices:
                reader = self.present.office_reader(office)
                text = reader.words(m.AUDIT_CHECKPOINT).format(word=word)
                for room in office.rooms:
                    await uow.outbox.add(platform=platform_of(room), room=room,
                                         post=reader.post("report", text, now),
                                         request_id=None, at=now)
                    queued += 1
            await uow.commit()
        self._checkpointed.add(day)
        return queued

    # ----------------------------------------------------------------- housekeeping

    async def housekeeping(self, now: datetime) -> int:
        """Once a day: forget dedupe marks and inbox rows old enough that no replay or retry
        can need them."""
        if now.date() in self._housekept:
            return 0
        async with self.uow() as uow:
            if not await uow.inbound.first_time("system", f"housekeeping:{now.date()}", now):
                self._housekept.add(now.date())
                return 0
            removed = await uow.inbound.forget_before(now - KEEP_INBOUND)
            # Inbox rows done or given up: their payload is gone already; the key dedupes a
            # platform's retry, which comes within minutes.
            removed += await uow.inbox.forget_before(now - KEEP_INBOX)
            for prefix, keep in KEEP_STATE.items():
                removed += await uow.state.forget(prefix, now - keep)
            await uow.commit()
        self._housekept.add(now.date())
        log.info("housekeeping", extra={"removed": removed})
        return removed
