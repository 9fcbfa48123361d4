"""Legal clocks: pausing a request while it is incomplete, chasing the requesting office
meanwhile, and the reminder when a promised answer date (``ack … eta:``) passes.

Pause arithmetic: when ``complete`` resumes a request, its deadlines move by the requested
office's business days it spent incomplete, counted as ``BusinessCalendar.business_days_between``
does (the days *after* the day it became incomplete, up to and including the day it was
completed) and at least one. Moving by ``n >= 1`` business days keeps the local wall time
(close of business) and always lands on a later business day, so pausing never shortens a
deadline.
"""

from __future__ import annotations

from datetime import datetime

from liaisonbot.domain.calendar import BusinessCalendar
from liaisonbot.domain.durations import Duration
from liaisonbot.domain.followups import NudgeDue, next_nudge_at
from liaisonbot.domain.model import PENDING, Policy, Request, Status


def paused_business_days(calendar: BusinessCalendar, since: datetime, until: datetime) -> int:
    """The requested office's business days a pause from ``since`` to ``until`` counts for."""
    start, end = calendar.local(since).date(), calendar.local(until).date()
    return max(1, calendar.business_days_between(start, end))


def moved(calendar: BusinessCalendar, moment: datetime, days: int) -> datetime:
    """``moment`` moved on by ``days`` business days (same local wall time)."""
    return calendar.after(moment, Duration(days, "bd")) if days > 0 else moment


def pause(request: Request, now: datetime, missing: str) -> None:
    """The requested office says what is missing: the clocks stop at ``now``."""
    request.paused_from = request.status
    request.paused_at = now
    request.missing = missing
    request.status = Status.INCOMPLETE
    request.incomplete_nudges_sent = 0


def resume(request: Request, now: datetime, calendar: BusinessCalendar) -> int:
    """The requesting office supplied what was missing: the request goes back to where it was
    and its deadlines (answer, acknowledgement, promised date) move by the paused business
    days of the requested office's ``calendar``. Returns those days."""
    assert request.status is Status.INCOMPLETE and request.paused_at is not None
    days = paused_business_days(calendar, request.paused_at, now)
    request.due_at = moved(calendar, request.due_at, days)
    request.ack_due_at = moved(calendar, request.ack_due_at, days)
    if request.eta is not None and not request.eta_reminded:
        request.eta = moved(calendar, request.eta, days)
    request.status = request.paused_from or Status.OPEN
    request.paused_at = request.paused_from = request.missing = None
    request.incomplete_nudges_sent = 0
    return days


# ---------------------------------------------------------------------- chasing while incomplete

def _chase_moments(request: Request, policy: Policy, calendar: BusinessCalendar) -> list[datetime]:
    """While incomplete, the requesting office is chased at the policy's answer-nudge offsets
    counted from the moment it was told (zero offsets skipped: it was told at once)."""
    assert request.paused_at is not None
    return [calendar.after(request.paused_at, offset) for offset in policy.nudges_after_due
            if offset.amount > 0]


def incomplete_nudge_due(request: Request, policy: Policy, calendar: BusinessCalendar,
                         now: datetime) -> NudgeDue | None:
    """The chase owed to the requesting office (``calendar`` is its calendar) at ``now``."""
    if request.status is not Status.INCOMPLETE or request.paused_at is None \
            or not calendar.is_open(now):
        return None
    owed = sum(1 for moment in _chase_moments(request, policy, calendar) if moment <= now)
    if owed > request.incomplete_nudges_sent:
        return NudgeDue("incomplete", owed, escalate=False,
                        merged=owed - request.incomplete_nudges_sent)
    return None


def eta_reminder_due(request: Request, calendar: BusinessCalendar, now: datetime) -> bool:
    """True when the promised answer date has passed unanswered and the reminder (once) is
    owed now, in the requested office's (``calendar``) hours."""
    return (request.status in PENDING and request.eta is not None and not request.eta_reminded
            and request.eta <= now and calendar.is_open(now))


def next_follow_up(request: Request, policy: Policy, requested: BusinessCalendar,
                   requesting: BusinessCalendar | None) -> datetime | None:
    """The next moment the tick must look at ``request``: a chase of the requesting office
    while incomplete; else the next nudge or the promised-date reminder. A postponed request
    is next looked at when its postponement ends; one in consultation waits for ``resume``."""
    if request.status is Status.POSTPONED:
        return request.hold_until
    if request.status is Status.CONSULTING:
        return None
    if request.status is Status.INCOMPLETE:
        if requesting is None or request.paused_at is None:
            return None
        moments = _chase_moments(request, policy, requesting)
        sent = request.incomplete_nudges_sent
        return requesting.next_open(moments[sent]) if sent < len(moments) else None
    found = [next_nudge_at(request, policy, requested)]
    if request.status in PENDING and request.eta is not None and not request.eta_reminded:
        found.append(requested.next_open(request.eta))
    candidates = [moment for moment in found if moment is not None]
    return min(candidates) if candidates else None
