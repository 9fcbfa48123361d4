"""What the desk's verbs do to a request's numbered measures (issue 24).

* ``answer R-n/k TEXT [conditions:"…"] [at:…]`` and ``decline R-n/k REASON`` settle measure
  k alone (the requested office; the same sides and statuses as the whole-request verbs).
* ``answer R-n`` / ``decline R-n`` on a request with measures settle every measure still owed
  (pending or postponed) at once.
* ``reopen R-n`` makes every measure owed again; the answers given stay in the history.
* ``postpone R-n/k UNTIL REASON`` (:func:`postpone_measure`, the ``PostponeMeasure`` command)
  puts one measure off; when every measure still owed is postponed, the request's chasing
  waits until the earliest of their dates (its ``snoozed_until``), its legal clock does not.

The request's status then follows from its measures (``domain.measures.overall``): partly
answered while some are settled and others owed; answered once all are settled and one was
answered; declined when all were declined.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from liaisonbot.domain import commands as c
from liaisonbot.domain import measures as ms
from liaisonbot.domain.audit import utc_text
from liaisonbot.domain.model import PENDING, Request, Rule, Side, Status
from liaisonbot.service import messages as m

#: ``answer``, ``decline`` and ``postpone`` of one measure (``R-n/k``): the requested office,
#: while an answer is owed (not while incomplete: ``complete`` comes first); the status then
#: follows from the measures (``implied_status``), not from the rule.
ONE_MEASURE = Rule(frozenset({Side.REQUESTED}), PENDING, None)


def rule_for(cmd: Any) -> Rule | None:
    """The rule of a command on one measure, or None (the verb's own rule applies)."""
    if isinstance(cmd, c.PostponeMeasure) or (isinstance(cmd, c.Transition)
                                              and cmd.measure is not None):
        return ONE_MEASURE
    return None


def touches_measures(request: Request, cmd: Any, verb: str) -> bool:
    """Whether ``cmd`` settles, postpones or reopens measures of ``request``."""
    if isinstance(cmd, c.PostponeMeasure):
        return True
    if not isinstance(cmd, c.Transition):
        return False
    if cmd.measure is not None:
        return True
    return bool(request.measures) and verb in ("answer", "decline", "reopen")


def apply(request: Request, cmd: c.Transition, verb: str, *, at: datetime) -> dict[str, Any]:
    """Change ``request``'s measures for an ``answer``/``decline`` (of one measure or of every
    one still owed) or a ``reopen``; the history detail it adds. Raises ``MeasureError``."""
    if cmd.measure is not None:
        request.measures, detail = ms.settle(
            request.measures, request.ref, cmd.measure, verb=verb, text=cmd.text, at=at,
            conditions=cmd.conditions)
        return detail
    if verb == "reopen":
        request.measures = ms.reopened(request.measures)
        return {}
    request.measures, done = ms.settle_rest(request.measures, verb=verb, text=cmd.text, at=at,
                                            conditions=cmd.conditions)
    return {"measures_settled": done}


def postpone_measure(request: Request, number: int, *, until: datetime,
                     reason: str) -> dict[str, Any]:
    """Postpone measure ``number`` of ``request`` until ``until`` for ``reason``: the measure's
    state becomes ``postponed`` (still owed); when every measure still owed is postponed, the
    chasing of the request waits until the earliest of their dates. Returns the history
    detail; raises ``MeasureError`` (no such measure, or one already settled)."""
    request.measures, detail = ms.postpone(request.measures, request.ref, number, until=until,
                                           reason=reason)
    detail["until"] = utc_text(until)
    hold = chasing_held_until(request)
    if hold is not None and (request.snoozed_until is None or request.snoozed_until < hold):
        request.snoozed_until = hold
        detail["chasing_until"] = utc_text(hold)
    return detail


def chasing_held_until(request: Request) -> datetime | None:
    """When every measure still owed is postponed: the earliest date they are put off to."""
    owed = [measure for measure in request.measures if not measure.settled]
    if not owed or any(measure.state is not ms.MeasureState.POSTPONED for measure in owed):
        return None
    return min(measure.until for measure in owed if measure.until is not None)


def implied_status(request: Request) -> Status | None:
    """The status the request's measures imply, or None (none settled: it stays as it is)."""
    value = ms.overall(request.measures)
    return Status(value) if value else None


def action(verb: str, cmd: Any, request: Request) -> str:
    """The history action of a measure command: the request's own (``answered``,
    ``declined``) when it settled the request, else ``measure answered`` and the like (so
    the statistics read the moment a request was answered from its ``answered`` entry)."""
    if isinstance(cmd, c.PostponeMeasure):
        return "measure postponed"
    if request.status is Status.ANSWERED:
        return m.STATUS_VERB["answer"]
    if request.status is Status.DECLINED:
        return m.STATUS_VERB["decline"]
    return "measure answered" if verb == "answer" else "measure declined"


def refusal_values(error: ms.MeasureError) -> dict[str, Any]:
    """A ``MeasureError``'s values for a ``Refusal``: a measure's state in the reader's
    language (a ``Phrase``)."""
    from liaisonbot.domain.grammar import Phrase

    values = dict(error.values)
    if "state" in values:
        values["state"] = Phrase(m.MEASURE_STATES.get(values["state"], values["state"]))
    return values
