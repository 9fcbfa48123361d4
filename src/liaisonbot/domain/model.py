"""Requests, offices and the rules that move a request through its life."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from liaisonbot.domain.calendar import BusinessCalendar
from liaisonbot.domain.durations import Duration
from liaisonbot.domain.measures import Measure
from liaisonbot.domain.refs import same_user


class Kind(enum.StrEnum):
    MLA = "mla"
    EVIDENCE = "evidence"
    INFORMATION = "information"
    WITNESS = "witness"
    SURRENDER = "surrender"
    ASSETS = "assets"
    OTHER = "other"


class Status(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    ANSWERED = "answered"
    CLOSED = "closed"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"
    INCOMPLETE = "incomplete"  # the requested office waits for what is missing; clocks stopped
    #: Some of its measures are settled (answered or declined), others still owed (issue 24).
    PARTLY_ANSWERED = "partly_answered"
    POSTPONED = "postponed"  # execution postponed until a date (EIO art. 15; Rome St. arts. 94-95)
    CONSULTING = "consulting"  # the parties consult before execution goes on (EIO art. 6(3))


class Confidentiality(enum.StrEnum):
    RESTRICTED = "restricted"
    CONFIDENTIAL = "confidential"


class Side(enum.StrEnum):
    REQUESTING = "requesting"
    REQUESTED = "requested"


#: Statuses in which the requested office still owes an answer (the clock runs, nudges go out).
PENDING = frozenset({Status.OPEN, Status.ACKNOWLEDGED, Status.PARTLY_ANSWERED})
#: Statuses after which nothing more happens.
ENDED = frozenset({Status.CLOSED, Status.DECLINED, Status.WITHDRAWN})
#: Pending, or paused while incomplete: the request is still owed an answer.
PENDING_OR_PAUSED = PENDING | {Status.INCOMPLETE}
#: Held by ``postpone`` or ``consult`` until ``resume`` (or, postponed, until its date): not
#: chased, not overdue; the legal deadlines stand (``domain.holds``).
HELD = frozenset({Status.POSTPONED, Status.CONSULTING})


@dataclass(frozen=True)
class Contact:
    """A point of contact at an office (``[[offices]] contacts``): who, in what role, how to
    reach them (a chat user, an E.164 phone number, an email address) and the languages they
    work in (language codes such as ``de``)."""

    name: str
    role: str
    languages: tuple[str, ...] = ()
    user: str | None = None
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class Office:
    """A partner office: where it talks (rooms), who may act for it, and when it works."""

    slug: str
    name: str
    calendar: BusinessCalendar
    rooms: tuple[str, ...]
    members: tuple[str, ...] = ()
    escalation: tuple[str, ...] = ()
    language: str = "en"  # what the bot speaks in its rooms and to its members
    #: Its points of contact, as partners are told them (``who OFFICE``, the board).
    contacts: tuple[Contact, ...] = ()
    #: Users reachable around the clock (user references).
    on_call: tuple[str, ...] = ()
    #: ISO 3166-1 alpha-2 code of its state; None for an international body.
    country: str | None = None
    #: The languages it accepts requests in (language codes); its ``language`` when unset.
    accepts_languages: tuple[str, ...] = ()

    @property
    def request_languages(self) -> tuple[str, ...]:
        """The languages it accepts requests in (its own ``language`` when none are listed)."""
        return self.accepts_languages or (self.language,)

    def contact_for(self, user: str) -> Contact | None:
        """The contact whose chat user is ``user`` (``refs.same_user``), if any."""
        return next((c for c in self.contacts if same_user(c.user, user)), None)

    def may_act(self, user: str) -> bool:
        """With no member list, anyone in the office's rooms acts for it."""
        return not self.members or self.is_member(user)

    def is_member(self, user: str) -> bool:
        """``user`` is on the office's member list (one identity: ``refs.same_user``)."""
        return any(same_user(m, user) for m in self.members)


@dataclass(frozen=True)
class Policy:
    """Deadlines and nudging rules, from ``[policy]``."""

    ack_within: Duration = Duration(5, "bd")
    due: dict[str, Duration] = field(default_factory=lambda: {
        "mla": Duration(30, "d"), "evidence": Duration(30, "d"),
        "information": Duration(10, "bd"), "urgent": Duration(2, "bd")})
    default_due: Duration = Duration(10, "bd")
    nudges_after_due: tuple[Duration, ...] = (Duration(0, "bd"), Duration(2, "bd"),
                                              Duration(5, "bd"), Duration(10, "bd"))
    escalate_from: int = 3
    ack_nudges: int = 1
    #: The answer nudges of an emergency clock (one counted in hours), after it falls due:
    #: sent at any hour, on any day (``[policy.nudges] emergency_after_due``).
    emergency_after_due: tuple[Duration, ...] = (Duration(0, "h"), Duration(1, "h"),
                                                 Duration(2, "h"), Duration(4, "h"))

    def due_for(self, kind: Kind, *, urgent: bool) -> Duration:
        if urgent and "urgent" in self.due:
            return self.due["urgent"]
        return self.due.get(kind.value, self.default_due)


@dataclass
class Request:
    """One request between two offices, as the desk tracks it."""

    id: int
    case: str
    kind: Kind
    requesting: str
    requested: str
    summary: str
    status: Status
    created_at: datetime
    due_at: datetime
    ack_due_at: datetime
    opened_by: str
    basis: str = ""
    urgent: bool = False
    confidentiality: Confidentiality = Confidentiality.RESTRICTED
    assignee: str | None = None
    eta: datetime | None = None
    answer: str | None = None
    snoozed_until: datetime | None = None
    ack_nudges_sent: int = 0
    answer_nudges_sent: int = 0
    next_nudge_at: datetime | None = None
    updated_at: datetime | None = None
    version: int = 1
    instrument: str | None = None
    person: str = ""
    measure: str = ""
    paused_at: datetime | None = None  # when it became incomplete
    paused_from: Status | None = None  # the status ``complete`` takes it back to
    missing: str | None = None  # what the requested office said is missing
    incomplete_nudges_sent: int = 0
    eta_reminded: bool = False
    #: Dated events the instrument's deadlines run from (``record``, ``ack received:``, the
    #: ``EVENT:DATE`` options of ``open``): event → moment.
    events: dict[str, datetime] = field(default_factory=dict)
    #: Legal deadlines moved by ``extend`` (within the instrument's limit): name → moment.
    extensions: dict[str, datetime] = field(default_factory=dict)
    #: Annex B of the acknowledgement: the requested office's own reference and contact.
    ack_ref: str = ""
    ack_contact: str = ""
    #: The requesting office's own deadline (``due:``, ``urgent``), kept beside the legal ones.
    asked_due: datetime | None = None
    #: Its numbered measures (``R-n/k``; two or more ``measure:`` on ``open``), each settled on
    #: its own (``domain.measures``); empty for a request answered as a whole.
    measures: tuple[Measure, ...] = ()
    #: The conditions on the use of what the whole-request answer handed over (``answer R-n
    #: TEXT conditions:"…"``); a measure's own are on the measure.
    conditions: str = ""
    #: Parallel requests of one case (``open … to:A,B``): the first one's id on the others
    #: (None on the first and on a request opened alone).
    parallel_of: int | None = None
    #: While postponed or consulting: the status ``resume`` takes it back to, since when,
    #: until when (a postponement ends by itself then), and why.
    hold_from: Status | None = None
    hold_since: datetime | None = None
    hold_until: datetime | None = None
    hold_reason: str | None = None

    @property
    def ref(self) -> str:
        return f"R-{self.id}"

    @property
    def confidential(self) -> bool:
        return self.confidentiality is Confidentiality.CONFIDENTIAL

    def side_of(self, office: str) -> Side | None:
        if office == self.requesting:
            return Side.REQUESTING
        if office == self.requested:
            return Side.REQUESTED
        return None

    def is_party(self, office: str) -> bool:
        return office in (self.requesting, self.requested)

    def other_party(self, office: str) -> str:
        return self.requested if office == self.requesting else self.requesting

    def is_overdue(self, now: datetime) -> bool:
        return self.status in PENDING and self.due_at <= now


@dataclass(frozen=True)
class Rule:
    """Which statuses a verb applies to, who may use it, and the status it leads to."""

    sides: frozenset[Side]
    from_statuses: frozenset[Status]
    to_status: Status | None  # None: the status does not change


_BOTH = frozenset(Side)
_REQUESTING = frozenset({Side.REQUESTING})
_REQUESTED = frozenset({Side.REQUESTED})
_NOT_ENDED = frozenset(Status) - ENDED

#: ``ack`` acknowledges (or moves the eta of) a request nothing of which is answered yet.
_ACKABLE = frozenset({Status.OPEN, Status.ACKNOWLEDGED})

RULES: dict[str, Rule] = {
    "ack": Rule(_REQUESTED, _ACKABLE, Status.ACKNOWLEDGED),
    "answer": Rule(_REQUESTED, PENDING, Status.ANSWERED),
    "decline": Rule(_REQUESTED, PENDING_OR_PAUSED, Status.DECLINED),
    "close": Rule(_REQUESTING, frozenset({Status.ANSWERED}), Status.CLOSED),
    "reopen": Rule(_REQUESTING, frozenset({Status.ANSWERED}), Status.ACKNOWLEDGED),
    "withdraw": Rule(_REQUESTING, PENDING_OR_PAUSED, Status.WITHDRAWN),
    "extend": Rule(_BOTH, PENDING, None),
    "record": Rule(_BOTH, _NOT_ENDED, None),
    "assign": Rule(_BOTH, _NOT_ENDED, None),
    "snooze": Rule(_REQUESTING, PENDING, None),
    # ``complete`` restores the status the request had when it was marked incomplete.
    "incomplete": Rule(_REQUESTED, PENDING, Status.INCOMPLETE),
    "complete": Rule(_REQUESTING, frozenset({Status.INCOMPLETE}), None),
    # Postponement (EIO art. 15; Rome Statute arts. 94-95) and consultation (EIO art. 6(3);
    # Rome Statute arts. 93(3), 97): ``resume`` restores the status it was held from.
    "postpone": Rule(_REQUESTED, PENDING, Status.POSTPONED),
    "consult": Rule(_BOTH, PENDING, Status.CONSULTING),
    "resume": Rule(_BOTH, HELD, None),
    # Forwarding to the competent office (EIO art. 7(6)): it becomes the requested office.
    "forward": Rule(_REQUESTED, PENDING, None),
}
# A held request may still be declined or withdrawn.
RULES["decline"] = Rule(_REQUESTED, RULES["decline"].from_statuses | HELD, Status.DECLINED)
RULES["withdraw"] = Rule(_REQUESTING, RULES["withdraw"].from_statuses | HELD, Status.WITHDRAWN)


#: The verbs a request card offers as buttons, and the side each is offered to (a choice of
#: what to put on a card); the statuses each shows in come from RULES (``card_actions``).
CARD_ACTIONS: dict[str, Side] = {
    "ack": Side.REQUESTED, "answer": Side.REQUESTED, "extend": Side.REQUESTED,
    "incomplete": Side.REQUESTED,
    "close": Side.REQUESTING, "reopen": Side.REQUESTING, "complete": Side.REQUESTING,
    "withdraw": Side.REQUESTING}
CARD_ACTIONS.update({"resume": Side.REQUESTED})


def card_actions(side: Side, status: Status) -> list[str]:
    """The buttons a card shows ``side`` at ``status``: the verbs RULES allow that side from
    that status which do something there (an ``ack`` of an acknowledged request only moves its
    eta, so no button for it)."""
    return [verb for verb, offered in CARD_ACTIONS.items()
            if offered is side and side in RULES[verb].sides
            and status in RULES[verb].from_statuses and RULES[verb].to_status is not status]


def changes_state(verb: str) -> bool:
    """Whether a command verb may change the record (``open`` and every verb in RULES); a
    platform dedupes repeated submissions of these, never of read-only ones."""
    return verb == "open" or verb in RULES


def urgency_key(request: Request, now: datetime) -> tuple[int, int, float]:
    """Most urgent first: pending before answered before ended; then by due time, urgent first."""
    if request.status in PENDING_OR_PAUSED or request.status in HELD:
        band = 0
    elif request.status is Status.ANSWERED:
        band = 1
    else:
        band = 2
    return (band, 0 if request.urgent else 1, request.due_at.timestamp())
