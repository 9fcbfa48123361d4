"""Deadlines that run from events (issue 23).

An instrument's profile names its deadlines (``[instruments.NAME.deadlines.DEADLINE]``): each
runs ``within`` a span ``from`` an event (or from another deadline's legal date) and is met by
an event (``met_by``, default the answer). Until its event is known a deadline *waits*: it is
never guessed.

Day arithmetic is the instruments' own: "within 30 days of receipt" is the calendar date 30 days
after the local date of the event, the deadline falling at the end of that day in the requested
office's zone (a date ending on a weekend or holiday is not moved: the worked examples of the
EIO Directive and the EAW Framework Decision count that way). Hours run from the moment itself.
So a deadline never falls before its event, and a later event never gives an earlier deadline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from liaisonbot.domain.calendar import BusinessCalendar
from liaisonbot.domain.durations import Duration

#: The events a deadline may run from or be met by (``record R-n EVENT:DATE``).
EVENTS = ("opened", "received", "decision", "arrest", "consent", "surrender-decision")
#: The events an officer records (``opened`` is the bot's own).
RECORDABLE = EVENTS[1:]
#: ``met_by`` of a deadline the answer meets.
ANSWER = "answer"
END_OF_DAY = time(23, 59, 59)

#: EU Member States (ISO 3166-1 alpha-2; Greece as GR, as ISO writes it).
EU_MEMBER_STATES = frozenset({
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT",
    "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE"})


@dataclass(frozen=True)
class Deadline:
    """One legal deadline of a profile."""

    name: str
    within: Duration
    start: str  # an event of EVENTS, or another deadline's name
    cite: str = ""
    met_by: str = ANSWER
    #: How far the requested office may move it (None: it may not on its own), and why.
    extend: Duration | None = None
    extend_cite: str = ""
    #: What the instrument requires when the deadline cannot be observed (shown when late).
    notice: str = ""
    #: Applies only to requests opened ``urgent`` (e.g. freezing's 48 h + 48 h).
    urgent_only: bool = False
    #: The article by which the instrument stops this deadline while the request is
    #: incomplete (``pause_cite``); empty: it runs on (the EIO Directive suspends nothing,
    #: art. 16(2)(a) only obliges the executing authority to inform).
    pause_cite: str = ""
    #: The article by which it does not run while execution is postponed (EIO art. 12(4):
    #: "unless grounds for postponement under Article 15 exist"); empty: it runs on.
    postpone_cite: str = ""

    @property
    def in_hours(self) -> bool:
        """An emergency clock: chased around the clock."""
        return self.within.unit in ("h", "m")


@dataclass(frozen=True)
class Clock:
    """A deadline as it stands for one request."""

    deadline: Deadline
    legal: datetime | None  # the law's moment; None while waiting for its event
    extended: datetime | None = None  # moved by ``extend`` (within the limit)
    met: bool = False

    @property
    def at(self) -> datetime | None:
        return self.extended or self.legal

    @property
    def waiting(self) -> bool:
        return self.legal is None


def event_moment(calendar: BusinessCalendar, day: date) -> datetime:
    """A date given without a time: the start of that day in ``calendar``'s zone (the earliest
    moment it can mean, so no deadline counted from it is ever later than the law's)."""
    return calendar.at(day, time(0, 0))


def after(calendar: BusinessCalendar, start: datetime, within: Duration) -> datetime:
    """The legal moment ``within`` after ``start``: hours from the moment itself; days and
    weeks to the end of the local day that many calendar days later; business days likewise
    on the office's calendar."""
    if within.unit in ("h", "m"):
        return start + within.as_timedelta()
    day = calendar.local(start).date()
    if within.unit == "bd":
        end = calendar.add_business_days(day, within.amount)
    else:
        end = day + timedelta(days=within.calendar_days())
    return max(start, calendar.at(end, END_OF_DAY))


def applies(deadline: Deadline, urgent: bool) -> bool:
    return urgent or not deadline.urgent_only


def clocks(deadlines: tuple[Deadline, ...], events: dict[str, datetime],
           extensions: dict[str, datetime], calendar: BusinessCalendar, *, urgent: bool,
           answered: bool = False) -> list[Clock]:
    """Every applicable deadline of a request, in the profile's order."""
    found: dict[str, Clock] = {}
    by_name = {d.name: d for d in deadlines}

    def resolve(deadline: Deadline, depth: int = 0) -> Clock:
        if deadline.name in found:
            return found[deadline.name]
        start: datetime | None = events.get(deadline.start)
        if start is None and deadline.start not in EVENTS and deadline.start in by_name \
                and depth < len(deadlines):
            start = resolve(by_name[deadline.start], depth + 1).legal
        legal = after(calendar, start, deadline.within) if start is not None else None
        met = answered if deadline.met_by == ANSWER else deadline.met_by in events
        clock = Clock(deadline, legal, extensions.get(deadline.name), met)
        found[deadline.name] = clock
        return clock

    return [resolve(d) for d in deadlines if applies(d, urgent)]


def pending(all_clocks: list[Clock]) -> list[Clock]:
    """The deadlines still to be met (waiting ones included)."""
    return [clock for clock in all_clocks if not clock.met]


def next_due(all_clocks: list[Clock]) -> Clock | None:
    """The pending deadline due first (among those whose event is known)."""
    known = [clock for clock in pending(all_clocks) if clock.at is not None]
    return min(known, key=lambda clock: clock.at) if known else None  # type: ignore[arg-type,return-value]


def bound(scope: str, not_bound: tuple[str, ...], country: str | None) -> bool:
    """Whether an office in ``country`` may use an instrument of ``scope``."""
    if scope != "eu":
        return True
    return country is not None and country.upper() in EU_MEMBER_STATES \
        and country.upper() not in not_bound


def paused(all_clocks: list[Clock], since: datetime, until: datetime,
           calendar: BusinessCalendar, *, by: str = "pause_cite") -> dict[str, datetime]:
    """The pending deadlines the instrument stops while a request is incomplete
    (``pause_cite``; or postponed: ``by="postpone_cite"``), moved on by the time it spent so:
    hours by the exact time, days by the calendar days between the local dates. Others are
    left where the law put them."""
    days = (calendar.local(until).date() - calendar.local(since).date()).days
    moved: dict[str, datetime] = {}
    for clock in pending(all_clocks):
        if not getattr(clock.deadline, by) or clock.at is None or clock.legal is None \
                or clock.legal < since:
            continue
        moved[clock.deadline.name] = clock.at + (until - since) if clock.deadline.in_hours \
            else calendar.after(clock.at, Duration(days, "d"))
    return moved
