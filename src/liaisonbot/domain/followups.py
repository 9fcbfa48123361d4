"""When a late request is chased: acknowledgement and answer nudges in the office's hours.

A request carries ``next_nudge_at``, the next moment the tick must look at it; this module
computes that moment and, when it comes, which nudge is owed. Nudges missed while the bot was
down collapse into one (numbered as the last one owed), so a restart never floods a room.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from liaisonbot.domain.calendar import BusinessCalendar
from liaisonbot.domain.model import PENDING, Policy, Request, Status


@dataclass(frozen=True)
class NudgeDue:
    """What the tick owes a request now: an ack nudge, or answer nudge number ``number``."""

    kind: str  # "ack" or "answer"
    number: int
    escalate: bool
    merged: int = 1


def _answer_moments(request: Request, policy: Policy, calendar: BusinessCalendar) -> list[datetime]:
    return [calendar.after(request.due_at, offset) for offset in policy.nudges_after_due]


def _candidates(request: Request, policy: Policy, calendar: BusinessCalendar) -> list[datetime]:
    if request.status not in PENDING:
        return []
    found: list[datetime] = []
    if request.status is Status.OPEN and request.ack_nudges_sent < policy.ack_nudges:
        found.append(request.ack_due_at)
    offsets = policy.nudges_after_due
    if request.answer_nudges_sent < len(offsets):  # only the next one (each is a calendar walk)
        found.append(calendar.after(request.due_at, offsets[request.answer_nudges_sent]))
    return found


def next_nudge_at(request: Request, policy: Policy, calendar: BusinessCalendar) -> datetime | None:
    """The next moment a nudge may go out: inside working hours, never before a snooze ends."""
    candidates = _candidates(request, policy, calendar)
    if not candidates:
        return None
    moment = min(candidates)
    if request.snoozed_until and request.snoozed_until > moment:
        moment = request.snoozed_until
    return calendar.next_open(moment)


def nudge_due(request: Request, policy: Policy, calendar: BusinessCalendar,
              now: datetime) -> NudgeDue | None:
    """The nudge owed at ``now`` (answer nudges before ack nudges), or None."""
    if request.status not in PENDING or not calendar.is_open(now):
        return None
    if request.snoozed_until and request.snoozed_until > now:
        return None
    moments = _answer_moments(request, policy, calendar)
    owed = sum(1 for moment in moments if moment <= now)
    if owed > request.answer_nudges_sent:
        return NudgeDue("answer", owed, escalate=owed >= policy.escalate_from,
                        merged=owed - request.answer_nudges_sent)
    ack_owed = (request.status is Status.OPEN and request.ack_nudges_sent < policy.ack_nudges
                and request.ack_due_at <= now)
    if ack_owed:
        return NudgeDue("ack", request.ack_nudges_sent + 1, escalate=False)
    return None


def apply_nudge(request: Request, nudge: NudgeDue) -> None:
    """Record on the request that ``nudge`` went out."""
    if nudge.kind == "answer":
        request.answer_nudges_sent = nudge.number
        if request.status is Status.OPEN:
            request.ack_nudges_sent = max(request.ack_nudges_sent, 1)
    else:
        request.ack_nudges_sent = nudge.number


def business_days_late(request: Request, calendar: BusinessCalendar, now: datetime) -> int:
    """How many of the requested office's business days ``request`` is past due (0 if not)."""
    if not request.is_overdue(now):
        return 0
    due_day = calendar.local(request.due_at).date()
    return max(calendar.business_days_between(due_day, calendar.local(now).date()), 0)
