"""Statistics a liaison officer asks for, per partner office and per instrument: median and
90th-percentile time to acknowledge and to answer, the share answered within the instrument's
legal time, and the time spent incomplete. Computed from the history (``acknowledged``,
``answered``, ``marked incomplete``, ``completed`` entries); an acknowledgement or answer given
with ``at:`` counts at that real moment, not when it was typed. Time spent incomplete never
counts as time taken. Percentiles are nearest-rank (p90 of 10 values is the 9th smallest).

"Within the legal time": for an instrument whose deadlines run from events (issue 23), every
deadline whose event is known and that was met (by its event, or by the answer) was met by its
legal date, or the date it was lawfully extended to; the law suspends none of them while a
request is incomplete (EIO art. 16(2)(a)), so no pause is discounted there. For a profile with
a plain answer clock from opening, the answer within that clock, time incomplete not counted."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from statistics import median
from typing import Any

from liaisonbot.domain.audit import Entry
from liaisonbot.domain.deadlines import ANSWER
from liaisonbot.domain.directory import Directory
from liaisonbot.domain.measures import partial
from liaisonbot.domain.model import Request
from liaisonbot.service import clocks as legal
from liaisonbot.service import messages as m
from liaisonbot.service.i18n import Words, words

_PAUSE, _RESUME = "marked incomplete", "completed"
#: One measure answered or declined on its own (issue 24): the request was received.
_PART_ANSWERS = ("measure answered", "measure declined")
#: Every history action the weekly report's figures read (``weekly_figures`` and these
#: statistics): the report reads only these entries, in one query.
REPORT_ACTIONS = frozenset({"acknowledged", "answered", _PAUSE, _RESUME, "declined",
                            "withdrawn", "measure answered", "measure declined"})
NO_INSTRUMENT = "none"


@dataclass(frozen=True)
class RequestClock:
    """One request's times, in seconds, not counting time spent incomplete."""

    ack: float | None
    answer: float | None
    within_legal: bool | None  # None: not answered, or no legal answer clock
    incomplete: float


@dataclass(frozen=True)
class ClockFigures:
    """A group's figures (a partner office's slug, or an instrument's)."""

    group: str
    requests: int
    ack_median_hours: float | None
    ack_p90_hours: float | None
    answer_median_days: float | None
    answer_p90_days: float | None
    legal_answered: int
    within_legal: int
    incomplete_days: float
    incomplete_requests: int
    #: Requests with numbered measures, and those executed in part (some measures answered,
    #: not all: EIO art. 16(2)(b)).
    with_measures: int = 0
    partial: int = 0

    @property
    def within_legal_share(self) -> float | None:
        return self.within_legal / self.legal_answered if self.legal_answered else None

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "within_legal_share": self.within_legal_share}


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)) - 1, 0)]


def quantile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile, None for no values."""
    return percentile(values, share) if values else None


def _pauses(entries: list[Entry], now: datetime) -> list[tuple[datetime, datetime]]:
    found, start = [], None
    for entry in entries:
        if entry.action == _PAUSE and start is None:
            start = datetime.fromisoformat(entry.at)
        elif entry.action == _RESUME and start is not None:
            found.append((start, datetime.fromisoformat(entry.at)))
            start = None
        elif entry.action in ("declined", "withdrawn") and start is not None:
            found.append((start, datetime.fromisoformat(entry.at)))
            start = None
    if start is not None:
        found.append((start, max(now, start)))
    return found


def _paused_before(pauses: list[tuple[datetime, datetime]], moment: datetime) -> float:
    return sum((min(end, moment) - start).total_seconds() for start, end in pauses
               if start < moment)


def _first(entries: list[Entry], *actions: str) -> datetime | None:
    """When the first of ``actions`` happened: the real moment given with ``at:`` (an answer
    sent through the official channel before it was typed here), else the entry's time."""
    found = next((e for e in entries if e.action in actions), None)
    if found is None:
        return None
    real = (found.detail or {}).get("at")
    return datetime.fromisoformat(real if isinstance(real, str) and real else found.at)


def _met_in_time(request: Request, answered: datetime, directory: Directory) -> bool | None:
    """Whether every known, met deadline from events was met by its (lawfully extended) date;
    None when the request's instrument has none such."""
    verdicts = []
    for clock in legal.request_clocks(directory, request):
        met_by = clock.deadline.met_by
        met = answered if met_by == ANSWER else request.events.get(met_by)
        if clock.at is not None and met is not None:
            verdicts.append(met <= clock.at)
    return all(verdicts) if verdicts else None


def request_clock(request: Request, entries: list[Entry], now: datetime,
                  directory: Directory) -> RequestClock:
    pauses = _pauses(entries, now)
    # A measure answered or declined on its own shows the request was received (issue 24).
    acked = _first(entries, "acknowledged", "answered", *_PART_ANSWERS)
    answered = _first(entries, "answered")

    def taken(moment: datetime | None) -> float | None:
        if moment is None:
            return None
        return (moment - request.created_at).total_seconds() - _paused_before(pauses, moment)

    answer = taken(answered)
    within = None
    instrument = directory.instruments.get(request.instrument or "")
    clock = instrument.due_for(urgent=request.urgent) if instrument else None
    office = directory.office(request.requested)
    if answered is not None and instrument is not None and instrument.deadlines:
        within = _met_in_time(request, answered, directory)
    elif answer is not None and clock is not None and office is not None:
        limit = office.calendar.deadline(request.created_at, clock) - request.created_at
        within = answer <= limit.total_seconds()
    return RequestClock(ack=taken(acked), answer=answer, within_legal=within,
                        incomplete=sum((end - start).total_seconds() for start, end in pauses))


def clock_figures(requests: list[Request], histories: dict[int, list[Entry]], now: datetime,
                  directory: Directory, key: Callable[[Request], str]) -> list[ClockFigures]:
    """Figures per group (``key`` of each request), groups sorted by name."""
    groups: dict[str, list[RequestClock]] = {}
    measured: dict[str, list[bool]] = {}  # per group: executed in part, per request with measures
    for request in requests:
        groups.setdefault(key(request), []).append(
            request_clock(request, histories.get(request.id, []), now, directory))
        if request.measures:
            measured.setdefault(key(request), []).append(partial(request.measures))
    rows = []
    for group, clocks in sorted(groups.items()):
        acks = [c.ack / 3600 for c in clocks if c.ack is not None]
        answers = [c.answer / 86400 for c in clocks if c.answer is not None]
        legal = [c.within_legal for c in clocks if c.within_legal is not None]
        paused = [c.incomplete for c in clocks if c.incomplete > 0]
        rows.append(ClockFigures(
            group=group, requests=len(clocks),
            ack_median_hours=round(median(acks), 1) if acks else None,
            ack_p90_hours=round(percentile(acks, 0.9), 1) if acks else None,
            answer_median_days=round(median(answers), 1) if answers else None,
            answer_p90_days=round(percentile(answers, 0.9), 1) if answers else None,
            legal_answered=len(legal), within_legal=sum(legal),
            incomplete_days=round(sum(paused) / 86400, 1), incomplete_requests=len(paused),
            with_measures=len(measured.get(group, [])), partial=sum(measured.get(group, []))))
    return rows


def by_instrument(request: Request) -> str:
    return request.instrument or NO_INSTRUMENT


def statistics(office: str | None, requests: list[Request],
               histories: dict[int, list[Entry]], now: datetime,
               directory: Directory) -> dict[str, list[ClockFigures]]:
    """Per partner office (the other party of ``office``, else the requested office) and per
    instrument."""
    def partner(request: Request) -> str:
        return request.other_party(office) if office else request.requested

    return {"by_office": clock_figures(requests, histories, now, directory, partner),
            "by_instrument": clock_figures(requests, histories, now, directory, by_instrument)}


def _num(value: float | None, unit: str, w: Words) -> str:
    return w(unit).format(value=w.tenths(value)) if value is not None else "—"


def statistics_text(figures: dict[str, list[ClockFigures]], directory: Directory,
                    w: Words | None = None) -> str:
    """The legal clocks' figures for a weekly report, in ``w``'s language (default English)."""
    w = w or words("en")
    lines = [w(m.STATS_TITLE)]
    for kind, rows in (("by_office", figures["by_office"]),
                       ("by_instrument", figures["by_instrument"])):
        for row in rows:
            if kind == "by_office":
                group = w(m.STATS_WITH).format(partner=row.group)
            else:
                instrument = directory.instruments.get(row.group)
                group = f"via {w.instrument(instrument.label) if instrument else row.group}"
            share = row.within_legal_share
            h, d = m.HOURS_SHORT, m.DAYS_SHORT
            lines.append(w(m.STATS_ROW).format(
                group=group, ack=_num(row.ack_median_hours, h, w),
                ack90=_num(row.ack_p90_hours, h, w), answer=_num(row.answer_median_days, d, w),
                answer90=_num(row.answer_p90_days, d, w),
                share=f"{w.percent(share)} ({row.within_legal}/{row.legal_answered})"
                if share is not None else "—",
                paused=_num(row.incomplete_days, d, w),
                paused_n=w.count(m.N_REQUESTS, row.incomplete_requests)))
    if len(lines) == 1:
        lines.append(w(m.STATS_NONE))
    measured = [row for row in figures["by_office"] if row.with_measures]
    if measured:
        lines.append(w(m.STATS_PARTIAL).format(
            partial=w.number(sum(row.partial for row in measured)),
            total=w.number(sum(row.with_measures for row in measured))))
    return "\n".join(lines)
