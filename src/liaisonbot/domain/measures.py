"""A request's numbered measures (``R-n/k``), settled one by one (EIO art. 16(2)(b): partial
execution; Rome Statute art. 94: postponement of one measure).

``open … measure:"…" measure:"…"`` gives a request two or more measures, numbered from 1 in
the order given. Each is ``pending`` until the requested office answers it (with conditions on
the use of what it hands over), declines it, or postpones it (until a date, for a reason; a
postponed measure is still owed). The request's own status follows from its measures
(``overall``): ``partly_answered`` once one is settled while others are still owed;
``answered`` when every measure is settled and at least one was answered; ``declined`` when
every one was declined.

A request opened with a single ``measure:`` has no numbered measures: it is answered as a whole,
as before (``Request.measure`` keeps that text, and the first measure's text when there are
several, for the instruments that require a measure).

Pure: the standard library only. The functions change a request's ``measures`` in place and
return the history detail; every refusal is a :class:`MeasureError` with a message id.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any


def N_(text: str) -> str:  # gettext's marker: the English is the msgid
    return text


#: The most measures one request may carry (Annex A section C lists a handful).
MAX_MEASURES = 20

NO_MEASURES = N_("{ref} has no numbered measures: it was opened with fewer than two "
                 "measure: options. Use {verb} {ref} for the whole request.")
NO_SUCH_MEASURE = N_("{ref} has no measure {number}: its measures are {ref}/1 to "
                     "{ref}/{count}.")
MEASURE_SETTLED = N_("{ref}/{number} is {state} already.")
TOO_MANY_MEASURES = N_("A request takes at most {limit} measures; this one names {count}.")


class MeasureError(ValueError):
    """A measure command that cannot be done: ``template`` (a message id) and its values."""

    def __init__(self, template: str, **values: Any) -> None:
        super().__init__(template.format(**values))
        self.template, self.values = template, values


class MeasureState(enum.StrEnum):
    PENDING = "pending"
    ANSWERED = "answered"
    DECLINED = "declined"
    POSTPONED = "postponed"  # still owed: execution put off until ``until``


#: States in which a measure is settled (no more is owed for it).
SETTLED = frozenset({MeasureState.ANSWERED, MeasureState.DECLINED})


@dataclass(frozen=True)
class Measure:
    """One measure of a request: its number (from 1), what is sought, and how it stands.
    ``answer`` holds the answer or, when declined, the reason; ``conditions`` the conditions
    on the use of what was handed over; ``at`` when it was settled (the official channel's
    moment when ``at:`` said so); ``until``/``reason`` while postponed."""

    number: int
    text: str
    state: MeasureState = MeasureState.PENDING
    answer: str = ""
    conditions: str = ""
    at: datetime | None = None
    until: datetime | None = None
    reason: str = ""

    @property
    def settled(self) -> bool:
        return self.state in SETTLED

    def as_json(self) -> dict[str, Any]:
        """Canonical JSON (the store's column and the sealed state): moments in UTC ISO
        text, empty fields left out."""
        body: dict[str, Any] = {"number": self.number, "text": self.text,
                                "state": self.state.value}
        for name in ("answer", "conditions", "reason"):
            if getattr(self, name):
                body[name] = getattr(self, name)
        for name in ("at", "until"):
            moment = getattr(self, name)
            if moment is not None:
                body[name] = moment.astimezone(UTC).isoformat()
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Measure:
        return cls(number=int(body["number"]), text=str(body["text"]),
                   state=MeasureState(body.get("state", "pending")),
                   answer=body.get("answer", ""), conditions=body.get("conditions", ""),
                   at=_moment(body.get("at")), until=_moment(body.get("until")),
                   reason=body.get("reason", ""))


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text).astimezone(UTC) if text else None


def numbered(texts: tuple[str, ...] | list[str]) -> tuple[Measure, ...]:
    """The measures of a new request: none for fewer than two texts (a single ``measure:``
    is the whole request's, as before), else numbered from 1 in the order given."""
    if len(texts) > MAX_MEASURES:
        raise MeasureError(TOO_MANY_MEASURES, limit=MAX_MEASURES, count=len(texts))
    if len(texts) < 2:
        return ()
    return tuple(Measure(number=i, text=text) for i, text in enumerate(texts, start=1))


def pick(measures: tuple[Measure, ...], ref: str, number: int, verb: str) -> Measure:
    """Measure ``number`` of the request ``ref``, or one sentence saying why there is none."""
    if not measures:
        raise MeasureError(NO_MEASURES, ref=ref, verb=verb)
    if not 1 <= number <= len(measures):
        raise MeasureError(NO_SUCH_MEASURE, ref=ref, number=number, count=len(measures))
    return measures[number - 1]


def _put(measures: tuple[Measure, ...], measure: Measure) -> tuple[Measure, ...]:
    return tuple(measure if m.number == measure.number else m for m in measures)


def settle(measures: tuple[Measure, ...], ref: str, number: int, *, verb: str, text: str,
           at: datetime, conditions: str = "") -> tuple[tuple[Measure, ...], dict[str, Any]]:
    """``answer R-n/k`` (``verb`` ``answer``) or ``decline R-n/k``: the measures after it
    and the history detail. A settled measure is refused; a postponed one may be settled."""
    measure = pick(measures, ref, number, verb)
    if measure.settled:
        raise MeasureError(MEASURE_SETTLED, ref=ref, number=number, state=measure.state.value)
    state = MeasureState.ANSWERED if verb == "answer" else MeasureState.DECLINED
    done = replace(measure, state=state, answer=text,
                   conditions=conditions if state is MeasureState.ANSWERED else "",
                   at=at, until=None, reason="")
    key = "answer" if verb == "answer" else "reason"
    return _put(measures, done), {"measure_no": number, key: text,
                                  "conditions": done.conditions,
                                  "measure_state": [measure.state.value, state.value]}


def postpone(measures: tuple[Measure, ...], ref: str, number: int, *, until: datetime,
             reason: str) -> tuple[tuple[Measure, ...], dict[str, Any]]:
    """Put off the execution of one measure until ``until`` for ``reason`` (EIO art. 15,
    Rome Statute art. 94): it stays owed. A settled measure is refused; a postponed one is
    postponed again (a new date)."""
    measure = pick(measures, ref, number, "postpone")
    if measure.settled:
        raise MeasureError(MEASURE_SETTLED, ref=ref, number=number, state=measure.state.value)
    done = replace(measure, state=MeasureState.POSTPONED, until=until, reason=reason)
    return _put(measures, done), {"measure_no": number, "until": until.astimezone(UTC)
                                  .isoformat(), "reason": reason,
                                  "measure_state": [measure.state.value, done.state.value]}


def settle_rest(measures: tuple[Measure, ...], *, verb: str, text: str, at: datetime,
                conditions: str = "") -> tuple[tuple[Measure, ...], list[int]]:
    """``answer R-n`` / ``decline R-n`` on a request with measures: every measure still owed
    (pending or postponed) is answered (declined) with the request's text; the numbers done."""
    state = MeasureState.ANSWERED if verb == "answer" else MeasureState.DECLINED
    done: list[int] = []
    out = []
    for measure in measures:
        if measure.settled:
            out.append(measure)
            continue
        done.append(measure.number)
        out.append(replace(measure, state=state, answer=text, at=at, until=None, reason="",
                           conditions=conditions if state is MeasureState.ANSWERED else ""))
    return tuple(out), done


def reopened(measures: tuple[Measure, ...]) -> tuple[Measure, ...]:
    """``reopen R-n``: the requesting office is not satisfied with the answer, so every
    measure is owed again (pending); the answers given stay in the request's history."""
    return tuple(Measure(number=m.number, text=m.text) for m in measures)


def overall(measures: tuple[Measure, ...]) -> str | None:
    """The request's status its measures imply (a ``Status`` value), or None when they imply
    none (no measures, or none settled yet: the status stays as it is)."""
    settled = [m for m in measures if m.settled]
    if not settled:
        return None
    if len(settled) < len(measures):
        return "partly_answered"
    if any(m.state is MeasureState.ANSWERED for m in measures):
        return "answered"
    return "declined"


def tally(measures: tuple[Measure, ...]) -> dict[str, int]:
    """How many measures stand in each state (every state named, zeros included)."""
    return {state.value: sum(m.state is state for m in measures) for state in MeasureState}


def partial(measures: tuple[Measure, ...]) -> bool:
    """Partial execution: some measures answered, not all (the others declined, postponed or
    still pending)."""
    answered = sum(m.state is MeasureState.ANSWERED for m in measures)
    return 0 < answered < len(measures)


def from_json_list(items: list[dict[str, Any]] | None) -> tuple[Measure, ...]:
    return tuple(Measure.from_json(item) for item in items or ())


def to_json_list(measures: tuple[Measure, ...] | list[Measure]) -> list[dict[str, Any]]:
    return [m.as_json() for m in measures]
