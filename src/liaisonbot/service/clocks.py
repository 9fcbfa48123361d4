"""Legal clocks in the desk and the tick: which instrument an ``open`` travels under, the
incomplete/complete pause, the chase of the requesting office, and the promised-date reminder.

The arithmetic is in ``domain.clocks``; this module turns it into requests, history and posts.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from liaisonbot.domain import commands as c
from liaisonbot.domain.audit import utc_text
from liaisonbot.domain.cards import Card, Post
from liaisonbot.domain.clocks import (
    eta_reminder_due,
    incomplete_nudge_due,
    next_follow_up,
    pause,
    resume,
)
from liaisonbot.domain.directory import Directory
from liaisonbot.domain.durations import Duration
from liaisonbot.domain.instruments import REQUIRABLE, Instrument, clock_text
from liaisonbot.domain.model import Request, Status
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
        raise ClockRefusal(m.MISSING_FIELDS, instrument=instrument.label,
                           source=instrument.source,
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


def card_fields(directory: Directory, request: Request, audience: Audience) -> dict[str, Any]:
    """The card's instrument and completeness facts, the particulars as ``audience`` may
    see them (the visibility policy)."""
    instrument = directory.instruments.get(request.instrument or "")
    fields: dict[str, Any] = {name: seen(request, audience, name, mask="")
                              for name in ("person", "measure")}
    if request.status is Status.INCOMPLETE:
        fields["missing"] = request.missing if shows(request, audience, "missing") else MASK
    if instrument is None:
        return fields
    ack = instrument.ack_within or directory.policy.ack_within
    legal = instrument.due_for(urgent=request.urgent)
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
    old_due = request.due_at
    days = resume(request, now, office.calendar)
    return {"text": text, "due": [utc_text(old_due), utc_text(request.due_at)],
            "paused_business_days": days}


def change_summary(directory: Directory, request: Request, verb: str, detail: dict[str, Any],
                   tz: str, now: datetime, w: Words | None = None) -> str:
    w = w or words("en")
    if verb == "incomplete":
        return w(m.CHANGE_PAUSED).format(office=directory.name(request.requesting))
    days = int(detail.get("paused_business_days", 0))
    return w(m.CHANGE_RESUMED).format(due=w.when(request.due_at, tz, now),
                                      days=w.count(m.N_BUSINESS_DAYS, days))


def reschedule(directory: Directory, request: Request) -> None:
    """Set ``next_nudge_at``: the next chase, nudge or promised-date reminder."""
    requested = directory.office(request.requested)
    requesting = directory.office(request.requesting)
    if requested is None:
        request.next_nudge_at = None
        return
    request.next_nudge_at = next_follow_up(request, directory.policy, requested.calendar,
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
            kind=request.kind.value, requested=requested.name,
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
                                     kind=request.kind.value, requesting=requesting.name,
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
