"""Business calendars: an office's time zone, working days and hours, and public holidays.

All moments going in and out are timezone-aware; local wall times are built with ``zoneinfo`` so
that spring-forward and fall-back days come out right. Date-based deadlines fall at the close of
business on their day (``due_on``), which is how a legal deadline reads to the office that owes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from liaisonbot.domain.durations import Duration

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MAX_SEARCH_DAYS = 3 * 366


def _no_holidays(_day: date) -> bool:
    return False


@dataclass(frozen=True)
class BusinessCalendar:
    """When an office works: ``opens``–``closes`` local time on ``days`` (0=Mon) except holidays."""

    tz: ZoneInfo
    opens: time = time(9, 0)
    closes: time = time(17, 30)
    days: frozenset[int] = frozenset(range(5))
    is_holiday: Callable[[date], bool] = field(default=_no_holidays, compare=False)

    def is_business_day(self, day: date) -> bool:
        return day.weekday() in self.days and not self.is_holiday(day)

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz)

    def at(self, day: date, wall: time) -> datetime:
        """The aware UTC moment of local wall time ``wall`` on ``day`` (DST-correct)."""
        local = datetime.combine(day, wall, tzinfo=self.tz)
        return local.astimezone(UTC)

    def opening(self, day: date) -> datetime:
        return self.at(day, self.opens)

    def closing(self, day: date) -> datetime:
        return self.at(day, self.closes)

    def is_open(self, moment: datetime) -> bool:
        local = self.local(moment)
        return (self.is_business_day(local.date())
                and self.opens <= local.timetz().replace(tzinfo=None) < self.closes)

    def next_business_day(self, day: date, *, include: bool = False) -> date:
        current = day if include else day + timedelta(days=1)
        for _ in range(_MAX_SEARCH_DAYS):
            if self.is_business_day(current):
                return current
            current += timedelta(days=1)
        raise ValueError("the calendar has no business day in three years")

    def next_open(self, moment: datetime) -> datetime:
        """``moment`` if the office is open then, else the next moment it opens."""
        if self.is_open(moment):
            return moment
        local = self.local(moment)
        today = local.date()
        if self.is_business_day(today) and local.time() < self.opens:
            return self.opening(today)
        return self.opening(self.next_business_day(today))

    def holidays_within(self, day: date, days: int) -> tuple[date, ...]:
        """The public holidays from ``day`` through the ``days`` days after it, in order."""
        span = (day + timedelta(days=i) for i in range(days + 1))
        return tuple(d for d in span if self.is_holiday(d))

    def add_business_days(self, day: date, count: int) -> date:
        """The ``count``-th business day after ``day`` (``day`` itself when count is 0)."""
        current = day
        for _ in range(count):
            current = self.next_business_day(current)
        return current

    def business_days_between(self, start: date, end: date) -> int:
        """Business days after ``start`` up to and including ``end`` (negative if end < start)."""
        if end < start:
            return -self.business_days_between(end, start)
        count, current = 0, start
        while current < end:
            current += timedelta(days=1)
            count += self.is_business_day(current)
        return count

    def due_on(self, day: date) -> datetime:
        """A deadline on ``day`` falls at the office's close of business that day."""
        return self.closing(day)

    def deadline(self, start: datetime, duration: Duration) -> datetime:
        """Deadline ``duration`` after ``start``: close of business on the resulting day.

        ``Nbd`` counts the office's business days, ``Nd``/``Nw`` calendar days; ``m``/``h`` are
        exact. ``0bd`` and ``0d`` mean the close of business on the start's own day.
        """
        if duration.unit in ("m", "h"):
            return start + duration.as_timedelta()
        day = self.local(start).date()
        if duration.is_business:
            return self.due_on(self.add_business_days(day, duration.amount))
        return self.due_on(day + timedelta(days=duration.calendar_days()))

    def after(self, moment: datetime, duration: Duration) -> datetime:
        """``moment`` moved on by ``duration``, keeping the local wall time for day units."""
        if duration.unit in ("m", "h"):
            return moment + duration.as_timedelta()
        local = self.local(moment)
        if duration.is_business:
            day = self.add_business_days(local.date(), duration.amount)
        else:
            day = local.date() + timedelta(days=duration.calendar_days())
        return self.at(day, local.time())


@dataclass(frozen=True)
class AroundTheClock(BusinessCalendar):
    """An office's zone with every moment open, no weekend and no holiday: the chasing
    calendar of an emergency clock (one counted in hours), which the law does not hold back
    for the night or the weekend."""

    def is_business_day(self, day: date) -> bool:
        return True

    def is_open(self, moment: datetime) -> bool:
        return True

    def next_open(self, moment: datetime) -> datetime:
        return moment


def around_the_clock(calendar: BusinessCalendar) -> AroundTheClock:
    """``calendar``'s zone, open at every moment."""
    return AroundTheClock(calendar.tz, opens=time.min, closes=time.max,
                          days=frozenset(range(7)))


def parse_working_days(text: str) -> frozenset[int]:
    """``Mon-Fri``, ``Sun-Thu`` or ``Mon,Wed,Fri`` → weekday numbers (0=Mon)."""
    days: set[int] = set()
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        names = part.split("-")
        if len(names) > 2 or any(n.capitalize() not in DAY_NAMES for n in names):
            raise ValueError(f"{text!r} is not a list of days like Mon-Fri or Mon,Wed,Fri")
        first = DAY_NAMES.index(names[0].capitalize())
        last = DAY_NAMES.index(names[-1].capitalize())
        span = (last - first) % 7
        days.update((first + i) % 7 for i in range(span + 1))
    if not days:
        raise ValueError(f"{text!r} names no working day")
    return frozenset(days)


def parse_working_hours(text: str) -> tuple[time, time]:
    """``09:00-17:30`` → (09:00, 17:30); the office must open before it closes."""
    try:
        start, end = (time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError:
        raise ValueError(f"{text!r} is not working hours like 09:00-17:30") from None
    if start >= end:
        raise ValueError(f"working hours {text!r} close before they open")
    return start, end
