"""Who sees what of a request: one policy, asked by every path that shows a request.

``visibility(request, audience, field)`` says whether a field is shown, masked (its place is
kept, its content replaced by a marker) or absent (not there at all). The contract: a request's
parties see its envelope (id, case, parties, dates, status); the *substance* (summary, basis,
answers, notes, reasons, thread messages, file names) of a confidential request only reaches the
parties' listed members, in a direct message (or, later, on the board when they are members).
Nobody outside the two parties sees anything of it (need to know). Unknown fields count as
substance, so a new field fails closed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeVar

from liaisonbot.domain.model import Request

_E = TypeVar("_E")


class Shown(enum.StrEnum):
    SHOWN = "shown"
    MASKED = "masked"
    ABSENT = "absent"


class Place(enum.StrEnum):
    """Where a reader meets the request."""

    ROOM = "room"  # an office's room (cards, notes, thread copies, replies, digests)
    MEMBER_DM = "member_dm"  # a direct message to a listed member of a party
    EXPORT = "export"  # ``liaisonbot export`` (``office`` set with ``--office``)
    REPORT = "report"  # the weekly report: figures only
    BOARD = "board"  # the web board (to come): an office's user, listed member or not


@dataclass(frozen=True)
class Audience:
    """A reader's standing: where, for which office (None: the whole record, an unfiltered
    export), and whether they are a listed member of that office."""

    place: Place
    office: str | None = None
    member: bool = False


#: The envelope: what every party sees, confidential or not. History detail keys that only
#: carry dates, states or references count as envelope too.
ENVELOPE = frozenset({
    "id", "case", "kind", "parties", "requesting", "requested", "to", "status", "dates", "due",
    "due_at", "ack_due_at", "created_at", "until", "eta", "urgent", "confidentiality",
    "assignee", "number", "escalated", "merged", "room", "source", "author",
    "paused_business_days",
    # deadlines from events (issue 23): dates, the legal references, the Annex B particulars
    "event", "events", "at", "was", "deadline", "legal", "limit", "cite", "received", "ref",
    "contact",
    # measures (issue 24): which measure, its state, which were settled at once, and until
    # when the chasing waits; the measures' texts, answers and conditions are substance
    "measure_no", "measure_state", "measures_settled", "chasing_until",
    # several requested offices, postponement, forwarding (issue 24): references and dates
    "parallel", "from", "held_since"})
#: The substance of a request (for documentation and tests; any field not in ENVELOPE is).
SUBSTANCE = frozenset({"summary", "basis", "answer", "note", "reason", "text", "files",
                       "thread", "file", "measure", "measures", "conditions"})
#: Fields whose confidential content is left out entirely rather than masked in place: a
#: thread message or a file notice in a room would say nothing but "something was said".
_ABSENT_WHEN_HIDDEN = frozenset({"thread", "file"})


def visibility(request: Request, audience: Audience, field: str) -> Shown:
    """Shown, masked or absent: ``field`` of ``request`` for ``audience``."""
    if audience.office is not None and not request.is_party(audience.office):
        return Shown.ABSENT  # need to know: nothing of other offices' requests
    if field == "parallel" and not sees_parallels(request, audience):
        return Shown.ABSENT  # a requested office never learns of the other offices asked
    if field in ENVELOPE:
        return Shown.SHOWN
    if audience.place is Place.REPORT:
        return Shown.ABSENT  # reports carry figures, never words
    if not request.confidential:
        return Shown.SHOWN
    if audience.place is Place.MEMBER_DM or (audience.place is Place.BOARD and audience.member):
        return Shown.SHOWN
    return Shown.ABSENT if field in _ABSENT_WHEN_HIDDEN else Shown.MASKED


def shows(request: Request, audience: Audience, field: str) -> bool:
    return visibility(request, audience, field) is Shown.SHOWN


#: What a masked field reads as where no reader's language applies (exports, cards' facts).
MASK = "(confidential)"


def seen(request: Request, audience: Audience, field: str, *, mask: str = MASK) -> str:
    """``field`` of ``request`` (an attribute of text) as ``audience`` may see it: the text
    when shown, ``mask`` when masked, nothing when absent. An empty field stays empty: a mask
    would say there is something."""
    value = getattr(request, field) or ""
    shown = visibility(request, audience, field)
    if shown is Shown.SHOWN or not value:
        return str(value)
    return mask if shown is Shown.MASKED else ""


def by_direct_message(request: Request, field: str) -> bool:
    """Whether ``field``'s content (a note, a summary, a thread message) reaches its readers
    only by direct message to the parties' listed members, because the parties' rooms may
    not see it: the desk's one test for where the substance of a change goes."""
    return not shows(request, Audience(Place.ROOM, request.requested), field)


def sees_parallels(request: Request, audience: Audience) -> bool:
    """Whether ``audience`` learns of ``request``'s parallel requests (the same case asked of
    other offices, ``open … to:A,B``): only the requesting office (and the whole record) does;
    each requested office sees its own request alone."""
    return audience.office is None or audience.office == request.requesting


def former_history(entries: list[_E], upto: int) -> list[_E]:
    """What an office a request was forwarded away from may read of its history: the entries
    up to and including its forwarding (``upto`` of them), nothing written after."""
    return entries[:upto]
