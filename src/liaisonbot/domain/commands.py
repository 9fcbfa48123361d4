"""Commands: what an officer asked for, parsed but not yet checked against the desk."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

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
    confidentiality: Confidentiality = Confidentiality.RESTRICTED
    via: str | None = None  # the instrument's slug (``via:eio``)
    person: str = ""  # the person concerned (``person:"…"``), when the instrument requires it
    measure: str = ""  # the measure sought (``measure:"…"``), when the instrument requires it


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
class Assign:
    request_id: int
    user: str


@dataclass(frozen=True)
class Who:
    """An office's points of contact (``who OFFICE``), or every office's status (``who``)."""

    office: str | None = None


Command = (Help | OpenRequest | ListCase | ListOverdue | Show | Transition | Extend | Snooze
           | Assign | Who)
