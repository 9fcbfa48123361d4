"""Commands: what an officer asked for, parsed but not yet checked against the desk."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from liaisonbot.domain.durations import Duration
from liaisonbot.domain.model import Confidentiality, Kind


@dataclass(frozen=True)
class DueSpec:
    """A deadline as typed: a calendar date, or a duration from now."""

    on: date | None = None
    after: Duration | None = None

    def __str__(self) -> str:
        return self.on.isoformat() if self.on else str(self.after)


@dataclass(frozen=True)
class When:
    """A moment as typed: a date (``2026-12-03``) or an ISO 8601 date and time; a time with
    no offset is the office's local time."""

    day: date | None = None
    moment: datetime | None = None

    def __str__(self) -> str:
        return self.day.isoformat() if self.day else (self.moment or datetime.min).isoformat()


@dataclass(frozen=True)
class Help:
    topic: str | None = None


@dataclass(frozen=True)
class OpenRequest:
    case: str
    to: str
    summary: str
    kind: Kind = Kind.INFORMATION
    due: DueSpec | None = None
    urgent: bool = False
    basis: str = ""
    #: ``conf:`` as typed; None: the instrument's default level (restricted without one).
    confidentiality: Confidentiality | None = None
    via: str | None = None  # the instrument's slug (``via:eio``)
    person: str = ""  # the person concerned (``person:"…"``), when the instrument requires it
    measure: str = ""  # the measure sought (``measure:"…"``), when the instrument requires it
    events: tuple[tuple[str, When], ...] = ()  # ``EVENT:DATE`` options (``arrest:2026-12-04``)
    #: Every ``measure:`` in the order given (``measure`` is the first); two or more are the
    #: request's numbered measures ``R-n/1``, ``R-n/2``…
    measures: tuple[str, ...] = ()
    #: Further requested offices (``to:A,B``): one parallel request per office, ``to`` first.
    also_to: tuple[str, ...] = ()

    @property
    def offices(self) -> tuple[str, ...]:
        """Every requested office, in the order given."""
        return (self.to, *self.also_to)


@dataclass(frozen=True)
class ListCase:
    case: str
    scope: str = "open"  # open | overdue | all | mine


@dataclass(frozen=True)
class ListOverdue:
    pass


@dataclass(frozen=True)
class Show:
    request_id: int


@dataclass(frozen=True)
class Transition:
    """ack, answer, close, reopen, decline, withdraw, incomplete, complete: a status change
    with optional text."""

    verb: str
    request_id: int
    text: str = ""
    eta: DueSpec | None = None
    at: When | None = None  # when it really happened, through the official channel
    received: When | None = None  # ack: when the request was received (Annex B)
    ref: str = ""  # ack: the requested office's own reference (Annex B)
    contact: str = ""  # ack: its contact for the request (Annex B)
    measure: int | None = None  # answer/decline R-n/k: the measure k alone
    conditions: str = ""  # answer: the conditions on the use of what is handed over


@dataclass(frozen=True)
class Record:
    """``record R-n EVENT:DATE [NOTE]``: a dated event the instrument's deadlines run from."""

    request_id: int
    event: str
    when: When
    note: str = ""


@dataclass(frozen=True)
class PostponeMeasure:
    """``postpone R-n/k UNTIL REASON``: the requested office puts off one measure (the
    grammar's ``postpone`` verb routes here when a measure is named)."""

    request_id: int
    measure: int
    until: DueSpec
    reason: str


@dataclass(frozen=True)
class Extend:
    request_id: int
    due: DueSpec
    reason: str


@dataclass(frozen=True)
class Snooze:
    request_id: int
    until: DueSpec
    reason: str


@dataclass(frozen=True)
class Postpone:
    """``postpone R-n UNTIL REASON``: execution postponed until a date (EIO art. 15)."""

    request_id: int
    until: DueSpec
    reason: str


@dataclass(frozen=True)
class Forward:
    """``forward R-n to:OFFICE REASON``: passed to the competent office (EIO art. 7(6))."""

    request_id: int
    to: str
    reason: str


@dataclass(frozen=True)
class Assign:
    request_id: int
    user: str


@dataclass(frozen=True)
class Who:
    """An office's points of contact (``who OFFICE``), or every office's status (``who``)."""

    office: str | None = None


Command = (Help | OpenRequest | ListCase | ListOverdue | Show | Transition | Extend | Snooze
           | Assign | Who | Record | PostponeMeasure | Postpone | Forward)
