"""Legal clocks in the desk and the tick: which instrument an ``open`` travels under, the
incomplete/complete pause, the chase of the requesting office, and the promised-date reminder.

The arithmetic is in ``domain.clocks``; this module turns it into requests, history and posts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from liaisonbot.domain import commands as c
from liaisonbot.domain.audit import utc_text
from liaisonbot.domain.calendar import BusinessCalendar, around_the_clock
from liaisonbot.domain.cards import Card, Post
from liaisonbot.domain.clocks import (
    eta_reminder_due,
    incomplete_nudge_due,
    moved,
    next_follow_up,
    pause,
    resume,
)
from liaisonbot.domain.deadlines import (
    Clock,
    Deadline,
    bound,
    clocks,
    event_moment,
    next_due,
    paused,
    pending,
)
from liaisonbot.domain.directory import Directory
from liaisonbot.domain.durations import Duration
from liaisonbot.domain.instruments import REQUIRABLE, Instrument, clock_text
from liaisonbot.domain.model import HELD, PENDING, Office, Policy, Request, Side, Status
from liaisonbot.domain.refs import platform_of
from liaisonbot.domain.visibility import MASK, Audience, Place, seen, shows
from liaisonbot.service import messages as m
from liaisonbot.service.i18n import Words, words
from liaisonbot.service.ports import HistoryDraft, OutboxDraft


class ClockRefusal(Exception):
    """An ``open`` the instrument refuses: a message (``template``) and its values; ``str()``
    is the English sentence, ``words(template).format(**values)`` the reader's."""

    def __init__(self, template: str, **values: Any) -> None:
        super().__init__(template.format(**values) if values else template)
        self.template, self.values = template, values


def instrument_for(directory: Directory, cmd: c.OpenRequest) -> Instrument | None:
    """The instrument ``cmd`` travels under (None without ``via:``); refuses an unknown one
    (listing the known ones) and a request lacking a field the instrument requires."""
    if cmd.via is None:
        return None
    instrument = directory.instruments.get(cmd.via)
    if instrument is None:
        if not directory.instruments:
            raise ClockRefusal(m.NO_INSTRUMENTS, slug=cmd.via)
        raise ClockRefusal(m.UNKNOWN_INSTRUMENT, slug=cmd.via,
                           known=", ".join(sorted(directory.instruments)))
    lacking = instrument.missing({"basis": cmd.basis, "person": cmd.person,
                                  "measure": cmd.measure})
    if lacking:
        raise ClockRefusal(m.MISSING_FIELDS,
                           instrument=m.instrument_label(instrument.label),
                           source=m.instrument_source(instrument.source),
                           fields=" and ".join(REQUIRABLE[name] for name in lacking))
    return instrument


def open_clocks(directory: Directory, cmd: c.OpenRequest,
                instrument: Instrument | None) -> tuple[c.DueSpec, Duration]:
    """The due spec and acknowledgement clock of a new request: ``due:`` as typed, else the
    instrument's (urgent) clock, else the policy's per-kind default."""
    policy = directory.policy
    legal = instrument.due_for(urgent=cmd.urgent) if instrument else None
    due = cmd.due or c.DueSpec(after=legal or policy.due_for(cmd.kind, urgent=cmd.urgent))
    ack = instrument.ack_within if instrument and instrument.ack_within else policy.ack_within
    return due, ack


def check_scope(instrument: Instrument | None, *offices: Office) -> None:
    """An instrument of ``scope = "eu"`` only between offices of Member States bound by it."""
    if instrument is None or not instrument.scope:
        return
    for office in offices:
        if not bound(instrument.scope, instrument.not_bound, office.country):
            raise ClockRefusal(m.SCOPE_REFUSED,
                               instrument=m.instrument_label(instrument.label),
                               source=m.instrument_source(instrument.source),
                               office=office.name)


#: How far back an event may lie (a typed date, not a record of history).
EVENTS_SINCE = timedelta(days=3652)


def moment_of(when: c.When, office: Office, now: datetime, what: str) -> datetime:
    """A typed date or moment in ``office``'s zone; refused when it is after ``now`` or more
    than ``EVENTS_SINCE`` before it (year 1 has no UTC moment in a zone east of it)."""
    tz = office.calendar.tz
    try:
        if when.day is not None:
            found = event_moment(office.calendar, when.day)
        else:
            assert when.moment is not None
            found = when.moment if when.moment.tzinfo else when.moment.replace(tzinfo=tz)
        too_old = found < now - EVENTS_SINCE
    except OverflowError:
        too_old = True
    if too_old:
        raise ClockRefusal(m.EVENT_TOO_LONG_AGO, what=what, value=str(when),
                           years=EVENTS_SINCE.days // 365)
    if found > now:
        raise ClockRefusal(m.EVENT_LATER_THAN_NOW, what=what, value=str(when))
    return found



def instrument_of(directory: Directory, request: Request) -> Instrument | None:
    return directory.instruments.get(request.instrument or "")


def request_clocks(directory: Directory, request: Request) -> list[Clock]:
    """The request's legal deadlines as they stand (empty without an instrument that has any)."""
    instrument = instrument_of(directory, request)
    office = directory.office(request.requested)
    if instrument is None or not instrument.deadlines or office is None:
        return []
    events = {"opened": request.created_at, **request.events}
    return clocks(instrument.deadlines, events, request.extensions, office.calendar,
                  urgent=request.urgent,
                  answered=request.status in (Status.ANSWERED, Status.CLOSED))


def check_event(directory: Directory, request: Request, event: str) -> None:
    """``record`` takes only events the request's instrument counts from (any, without one)."""
    instrument = instrument_of(directory, request)
    if instrument is None or not instrument.deadlines:
        return
    known = instrument.events()
    if event not in known:
        raise ClockRefusal(m.RECORD_UNKNOWN_EVENT,
                           instrument=m.instrument_label(instrument.label), event=event,
                           events=", ".join(e for e in known if e != "opened"))


def refresh_due(directory: Directory, request: Request) -> None:
    """The chasing date follows the next pending legal deadline (or the requesting office's
    own, when earlier: ``due:``, ``urgent``); the acknowledgement never falls after it."""
    upcoming = next_due(request_clocks(directory, request))
    found = [moment for moment in (upcoming.at if upcoming else None, request.asked_due)
             if moment is not None]
    if found and upcoming is not None:
        request.due_at = min(found)
    request.ack_due_at = min(request.ack_due_at, request.due_at)


def extend_legal(directory: Directory, request: Request, side: Side, new_due: datetime,
                 reason: str, w: Words | None = None) -> dict[str, Any] | None:
    """``extend`` of a request whose next pending deadline is legal: the requested office
    only within the profile's limit (refused naming it, in ``w``'s language and the
    requested office's zone), the requesting office freely. Returns the history detail, or
    None when no legal deadline is pending (the plain ``extend``)."""
    upcoming = next_due(request_clocks(directory, request))
    if upcoming is None or upcoming.legal is None:
        return None
    deadline = upcoming.deadline
    office = directory.office(request.requested)
    assert office is not None
    w = w or words("en")
    name = w(m.DEADLINE_NAMES.get(deadline.name, deadline.name))
    limit = ""
    if side is Side.REQUESTED:
        if deadline.extend is None:
            raise ClockRefusal(m.EXTEND_NOT_ALLOWED, name=name, ref=request.ref,
                               office=office.name, cite=deadline.notice or deadline.cite)
        latest = upcoming.legal + deadline.extend.as_timedelta() \
            if deadline.extend.unit != "bd" else office.calendar.after(upcoming.legal,
                                                                      deadline.extend)
        limit = clock_text(deadline.extend)
        if new_due > latest:
            raise ClockRefusal(m.EXTEND_BEYOND, name=name, ref=request.ref,
                               limit=w.clock(limit), cite=deadline.extend_cite,
                               latest=w.day(latest.astimezone(office.calendar.tz).date()))
    old = upcoming.at
    request.extensions = {**request.extensions, deadline.name: new_due}
    request.due_at = new_due
    refresh_due(directory, request)
    return {"deadline": deadline.name, "due": [utc_text(old) if old else None,
                                               utc_text(new_due)],
            "legal": utc_text(upcoming.legal), "limit": limit,
            "cite": deadline.extend_cite if limit else "", "reason": reason}


def deadline_rows(directory: Directory, request: Request
                  ) -> tuple[tuple[str, str, str, str, str, str, str, str], ...]:
    """The card's pending deadlines: (name, moment or "", legal moment, span, from, cite,
    late notice, the extension's cite)."""
    office = directory.office(request.requested)
    tz = office.calendar.tz if office else None

    def local(moment: datetime | None) -> str:  # in the requested office's zone: its date
        return moment.astimezone(tz).isoformat() if moment else ""

    return tuple((clock.deadline.name, local(clock.at), local(clock.legal),
                  clock_text(clock.deadline.within), clock.deadline.start, clock.deadline.cite,
                  clock.deadline.notice, clock.deadline.extend_cite)
                 for clock in pending(request_clocks(directory, request)))


def card_fields(directory: Directory, request: Request, audience: Audience) -> dict[str, Any]:
    """The card's instrument and completeness facts, the particulars as ``audience`` may
    see them (the visibility policy)."""
    instrument = directory.instruments.get(request.instrument or "")
    fields: dict[str, Any] = {name: seen(request, audience, name, mask="")
                              for name in ("person", "measure")}
    if request.status is Status.INCOMPLETE:
        fields["missing"] = request.missing if shows(request, audience, "missing") else MASK
    if request.status in HELD and request.hold_since is not None:
        fields["hold"] = (request.hold_since.isoformat(),
                          request.hold_until.isoformat() if request.hold_until else "",
                          seen(request, audience, "hold_reason"))
    if instrument is None:
        return fields
    ack = instrument.ack_within or directory.policy.ack_within
    legal = instrument.due_for(urgent=request.urgent)
    if request.events.get("received") or request.ack_ref or request.ack_contact:
        received = request.events.get("received")
        office = directory.office(request.requested)
        zone = office.calendar.tz if office else None  # its date where it was received
        fields["annex_b"] = (received.astimezone(zone).isoformat() if received else "",
                             request.ack_ref,
                             request.ack_contact)
    if instrument.deadlines:
        fields["deadlines"] = deadline_rows(directory, request)
        office = directory.office(request.requested)
        if office is not None and request.status is Status.OPEN \
                and request.ack_due_at < office.calendar.deadline(request.created_at, ack):
            fields["ack_by"] = request.ack_due_at.isoformat()  # brought forward to the answer
    return {**fields, "instrument": instrument.label, "instrument_source": instrument.source,
            "ack_within": clock_text(ack), "ack_cite": instrument.ack_cite,
            "due_cite": instrument.cite_for(urgent=request.urgent), "legal_due": bool(legal),
            "legal_clock": clock_text(legal) if legal else ""}


def transition(directory: Directory, request: Request, verb: str, text: str,
               now: datetime) -> dict[str, Any]:
    """``incomplete`` pauses the request, ``complete`` resumes it with its deadlines moved;
    returns the history detail."""
    if verb == "incomplete":
        pause(request, now, text)
        return {"missing": text}
    office = directory.office(request.requested)
    assert office is not None
    old_due, since = request.due_at, request.paused_at
    assert since is not None
    legal_clocks = request_clocks(directory, request)
    days = resume(request, now, office.calendar)
    detail: dict[str, Any] = {"text": text, "paused_business_days": days}
    if legal_clocks:  # the law's deadlines move only where the instrument stops them
        if request.asked_due is not None:
            request.asked_due = moved(office.calendar, request.asked_due, days)
        stopped = paused(legal_clocks, since, now, office.calendar)
        request.extensions = {**request.extensions, **stopped}
        refresh_due(directory, request)
        detail["legal_moved"] = sorted(stopped) or None
    detail["due"] = [utc_text(old_due), utc_text(request.due_at)]
    return detail


def end_hold(directory: Directory, request: Request, now: datetime) -> list[str]:
    """Before a postponement ends (``resume`` or its date): the pending deadlines the
    instrument does not run while execution is postponed (``postpone_cite``, EIO art. 12(4))
    move on by the time it was postponed; returns their names (a consultation moves none)."""
    office = directory.office(request.requested)
    if request.status is not Status.POSTPONED or request.hold_since is None or office is None:
        return []
    stopped = paused(request_clocks(directory, request), request.hold_since, now,
                     office.calendar, by="postpone_cite")
    if stopped:
        request.extensions = {**request.extensions, **stopped}
        refresh_due(directory, request)
    return sorted(stopped)


def stopped_while_postponed(directory: Directory, request: Request) -> list[Clock]:
    """The pending deadlines that do not run while ``request`` is postponed."""
    return [clock for clock in pending(request_clocks(directory, request))
            if clock.deadline.postpone_cite]


def runs_on(directory: Directory, request: Request) -> bool:
    """Whether ``request`` has legal deadlines that run on while it is incomplete (its
    instrument stops none of its pending ones): ``incomplete`` then pauses only the chasing."""
    found = pending(request_clocks(directory, request))
    return bool(found) and not any(clock.deadline.pause_cite for clock in found)


def change_summary(directory: Directory, request: Request, verb: str, detail: dict[str, Any],
                   tz: str, now: datetime, w: Words | None = None) -> str:
    w = w or words("en")
    legal_runs_on = runs_on(directory, request)
    if verb == "incomplete":
        return w(m.CHANGE_CHASE_PAUSED if legal_runs_on else m.CHANGE_PAUSED).format(
            office=directory.name(request.requesting))
    if "legal_moved" in detail and not detail["legal_moved"]:
        return w(m.CHANGE_CHASE_RESUMED).format(due=w.when(request.due_at, tz, now))
    days = int(detail.get("paused_business_days", 0))
    return w(m.CHANGE_RESUMED).format(due=w.when(request.due_at, tz, now),
                                      days=w.count(m.N_BUSINESS_DAYS, days))


def emergency(directory: Directory, request: Request) -> Deadline | None:
    """The emergency clock ``request`` is chased by, if any: its next pending legal deadline
    when that is counted in hours (EIO provisional measures' 24 h, freezing's 48 h + 48 h,
    e-evidence's 8 h), or an instrument's own answer clock in hours."""
    if request.status not in PENDING:
        return None
    upcoming = next_due(request_clocks(directory, request))
    if upcoming is not None:
        return upcoming.deadline if upcoming.deadline.in_hours else None
    instrument = instrument_of(directory, request)
    clock = instrument.due_for(urgent=request.urgent) if instrument else None
    if clock is None or clock.unit not in ("h", "m") or instrument is None:
        return None
    return Deadline(name="due", within=clock, start="opened",
                    cite=instrument.cite_for(urgent=request.urgent))


def chasing(directory: Directory, request: Request,
            office: Office) -> tuple[Policy, BusinessCalendar, Deadline | None]:
    """How the requested ``office`` is chased for ``request``: in its working hours at the
    policy's nudge offsets, or, under an emergency clock, at any hour of any day at the
    policy's ``emergency_after_due`` offsets."""
    policy = directory.policy
    clock = emergency(directory, request)
    if clock is None:
        return policy, office.calendar, None
    return (replace(policy, nudges_after_due=policy.emergency_after_due),
            around_the_clock(office.calendar), clock)


def reschedule(directory: Directory, request: Request) -> None:
    """Set ``next_nudge_at``: the next chase, nudge or promised-date reminder."""
    requested = directory.office(request.requested)
    requesting = directory.office(request.requesting)
    if requested is None:
        request.next_nudge_at = None
        return
    policy, calendar, _ = chasing(directory, request, requested)
    request.next_nudge_at = next_follow_up(request, policy, calendar,
                                           requesting.calendar if requesting else None)


def follow_ups(directory: Directory, request: Request, now: datetime,
               card: Callable[[Request], Card]) -> tuple[list[HistoryDraft], list[OutboxDraft]]:
    """What the tick owes ``request`` at ``now`` beyond the ordinary nudges: the chase of the
    requesting office while incomplete, or the one reminder of a passed promised date. The
    request's counters are moved on; the caller writes them back."""
    requested = directory.office(request.requested)
    requesting = directory.office(request.requesting)
    if requested is None or requesting is None:
        return [], []
    if request.status is Status.INCOMPLETE:
        nudge = incomplete_nudge_due(request, directory.policy, requesting.calendar, now)
        if nudge is None:
            return [], []
        request.incomplete_nudges_sent = nudge.number
        tz, w = requesting.calendar.tz.key, words(requesting.language)
        assert request.paused_at is not None
        text = w(m.NUDGE_INCOMPLETE).format(
            number=w.number(nudge.number), ref=request.ref, case=request.case,
            kind=w.kind(request.kind.value), requested=requested.name,
            since=w.when(request.paused_at, tz, now),
            missing=seen(request, Audience(Place.ROOM, requesting.slug), "missing",
                         mask=w(m.CONFIDENTIAL)))
        rooms, detail = requesting.rooms, {"kind": "incomplete", "number": nudge.number,
                                           "merged": nudge.merged}
    elif eta_reminder_due(request, requested.calendar, now):
        assert request.eta is not None
        request.eta_reminded = True
        tz, w = requested.calendar.tz.key, words(requested.language)
        text = w(m.NUDGE_ETA).format(ref=request.ref, case=request.case,
                                     kind=w.kind(request.kind.value), requesting=requesting.name,
                                     eta=w.when(request.eta, tz, now))
        rooms, detail = requested.rooms, {"kind": "eta", "eta": request.eta.isoformat()}
    else:
        return [], []
    entry = HistoryDraft(request_id=request.id, at=now, actor="liaisonbot", platform="system",
                         action="nudged", detail=detail)
    shown = card(request)
    posts = [OutboxDraft(platform=platform_of(room), room=room, request_id=request.id, at=now,
                         post=Post(kind="nudge", text=text, tz=tz, as_of=now.isoformat(),
                                   locale=w.language,
                                   request_id=request.id, card=shown)) for room in rooms]
    return [entry], posts
