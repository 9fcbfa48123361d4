"""What the bot posts, in one neutral shape every platform renders its own way."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True, slots=True)
class Card:
    """A request as a room sees it. ``summary`` is None when the room may not see it."""

    request_id: int
    case: str
    kind: str
    requesting: str
    requesting_name: str
    requested: str
    requested_name: str
    status: str
    due_at: str  # ISO 8601 UTC
    urgent: bool = False
    confidential: bool = False
    summary: str | None = None
    basis: str = ""
    assignee: str | None = None
    eta: str | None = None
    days_late: int = 0
    instrument: str = ""  # the instrument's short label (EIO), when opened via one
    instrument_source: str = ""
    ack_within: str = ""  # the instrument's acknowledgement clock, as shown ("7 d")
    ack_cite: str = ""
    #: The acknowledgement's moment (ISO) when it falls earlier than ``ack_within`` would
    #: put it, because it never falls after the answer (an emergency clock); else "".
    ack_by: str = ""
    due_cite: str = ""
    legal_due: bool = False  # the instrument has a legal answer clock
    legal_clock: str = ""  # that clock, as shown ("120 d"); the due date may differ (due:,
    #                        extend, time spent incomplete)
    person: str = ""
    measure: str = ""
    missing: str | None = None  # while incomplete: what the requested office is waiting for
    #: Pending legal deadlines: (name, moment or "" while waiting, legal moment, span, from,
    #: cite, notice when late) — ``service.clocks.deadline_rows``.
    deadlines: tuple[tuple[str, ...], ...] = ()
    #: Annex B of the acknowledgement: (received moment or "", their reference, contact).
    annex_b: tuple[str, ...] = ()
    #: Numbered measures (issue 24): (number, text, state, postponed until or "", conditions
    #: on use, reason for the postponement); a text the reader may not see is the
    #: confidential marker (``messages.CONFIDENTIAL``), an absent one "".
    measures: tuple[tuple[str, ...], ...] = ()
    #: The conditions on the use of what the whole-request answer handed over (or the marker).
    conditions: str = ""
    #: While postponed or consulting: (since, until or "", the reason as the reader may see
    #: it: the text, or the confidential marker).
    hold: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"R-{self.request_id}"


@dataclass(frozen=True, slots=True)
class Post:
    """One message the bot makes: a card, a reply, a thread note, a relay, a nudge or a DM.

    ``text`` is plain text (user text inside it is data, escaped by each renderer); its first
    line is the headline. ``lines`` hold list rows, ``card`` a request card. ``tz`` and
    ``locale`` are the reader's time zone and language, ``as_of`` when it was composed (for
    "in 3 days" wording).
    """

    kind: str
    text: str
    tz: str = "UTC"
    as_of: str = ""
    locale: str = "en"  # the reader's language: every renderer writes in it
    card: Card | None = None
    cards: tuple[Card, ...] = ()
    request_id: int | None = None
    in_thread: bool = False
    mentions: tuple[str, ...] = ()
    author: str | None = None
    source_ref: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """The post as stored in the outbox: the same JSON as ``dataclasses.asdict`` would
        give (field order, cards as objects, tuples as arrays), without its deep copy of
        every value (a post's fields are JSON values already)."""
        data = {name: getattr(self, name) for name in _POST_FIELDS}
        if self.card is not None:
            data["card"] = _card_dict(self.card)
        data["cards"] = [_card_dict(card) for card in self.cards]
        # A post's values are plain JSON (no cycles): the encoder need not look for any.
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"), check_circular=False)

    @classmethod
    def from_json(cls, text: str) -> Post:
        data = json.loads(text)
        data["card"] = _card(data["card"]) if data.get("card") else None
        data["cards"] = tuple(_card(c) for c in data.get("cards") or ())
        data["mentions"] = tuple(data.get("mentions") or ())
        return cls(**data)


def _card(data: dict[str, Any]) -> Card:
    data = {**data, "deadlines": tuple(tuple(row) for row in data.get("deadlines") or ()),
            "annex_b": tuple(data.get("annex_b") or ()),
            "measures": tuple(tuple(row) for row in data.get("measures") or ()),
            "hold": tuple(data.get("hold") or ())}
    return Card(**data)


_POST_FIELDS = tuple(f.name for f in fields(Post))
_CARD_FIELDS = tuple(f.name for f in fields(Card))


def _card_dict(card: Card) -> dict[str, Any]:
    """A card's fields in order (slotted: no ``__dict__``)."""
    return {name: getattr(card, name) for name in _CARD_FIELDS}
