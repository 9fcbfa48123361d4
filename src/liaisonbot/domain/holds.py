"""Postponement and consultation: a request held until ``resume`` (or, postponed, its date).

While held a request is not chased (no nudges, not overdue: ``model.HELD`` is outside
``PENDING``) and its deadlines stand: the EIO Directive moves no time limit for a postponement
(art. 15) or a consultation (art. 6(3)), and neither does the Rome Statute (arts. 93(3), 94, 95,
97), so the card keeps showing the legal date beside the postponement. ``resume`` (or the tick
at the postponement's date) takes the request back to the status it was held from, and the
chase resumes from there.
"""

from __future__ import annotations

from datetime import datetime

from liaisonbot.domain.calendar import BusinessCalendar
from liaisonbot.domain.model import HELD, Policy, Request, Status


def hold(request: Request, status: Status, now: datetime, *, reason: str,
         until: datetime | None = None) -> None:
    """Hold ``request`` (postponed until ``until``, or consulting) from its present status."""
    assert status in HELD and request.status not in HELD
    request.hold_from = request.status
    request.hold_since = now
    request.hold_until = until
    request.hold_reason = reason
    request.status = status


def release(request: Request) -> Status:
    """End the hold: back to the status it was held from (returned)."""
    assert request.status in HELD
    request.status = request.hold_from or Status.OPEN
    request.hold_from = request.hold_since = request.hold_until = request.hold_reason = None
    return request.status


def postponement_ends(request: Request, now: datetime) -> bool:
    """A postponement whose date has come: the tick resumes it."""
    return (request.status is Status.POSTPONED and request.hold_until is not None
            and request.hold_until <= now)


def skip_held_nudges(request: Request, policy: Policy, calendar: BusinessCalendar,
                     now: datetime) -> None:
    """After a hold, the chase picks up where the schedule stands: the answer nudges that
    fell due while it was held count as sent but the last, so one reminder goes out (not a
    note about reminders missed while the desk was offline) and the schedule goes on."""
    owed = sum(1 for offset in policy.nudges_after_due
               if calendar.after(request.due_at, offset) <= now)
    request.answer_nudges_sent = max(request.answer_nudges_sent, owed - 1)
