"""Neutral cards and posts as facts and lines; each platform formats these its own way."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from liaisonbot.chat.formatting import clean, to_plain
from liaisonbot.domain.cards import Card, Post
from liaisonbot.domain.timefmt import local_time, when
from liaisonbot.service import messages as m

#: Posts that carry a person's relayed message (``text`` is neutral markup).
RELAY_KINDS = frozenset({"relay", "relay_edit", "relay_delete"})


def is_relay(post: Post) -> bool:
    """A person's relayed words: a thread copy, or a confidential thread message sent to a
    listed member by direct message (a ``direct`` post with an author)."""
    return post.kind in RELAY_KINDS or (post.kind == "direct" and post.author is not None)


@dataclass(frozen=True)
class CardFacts:
    """A card's parts as short strings, in the reader's time zone. User text stays raw here:
    every renderer escapes it for its own target."""

    title: str  # R-7 · ICC-01/14 · mla
    parties: str  # ICC OTP → BA SPO
    status: str
    due: str
    flags: tuple[str, ...]
    summary: str | None
    basis: str
    assignee: str | None
    eta: str | None
    clocks: str = ""  # EIO · ack within 7 d (art. 16(1)) · answer by …
    missing: str | None = None


def _as_of(post: Post) -> datetime:
    return datetime.fromisoformat(post.as_of) if post.as_of else datetime.now(UTC)


def facts(card: Card, tz: str, now: datetime) -> CardFacts:
    flags = []
    if card.urgent:
        flags.append("URGENT")
    if card.confidential:
        flags.append("confidential")
    if card.days_late:
        flags.append(f"{card.days_late} business day{'s' if card.days_late != 1 else ''} late")
    if card.status == "incomplete":
        flags.append(m.CARD_WAITING.format(office=card.requesting_name))
    due = when(datetime.fromisoformat(card.due_at), tz, now)
    return CardFacts(
        title=f"{card.ref} · {card.case} · {card.kind}"
              + (f" · {card.instrument}" if card.instrument else ""),
        parties=f"{card.requesting_name} → {card.requested_name}",
        status=card.status, due=due,
        flags=tuple(flags),
        summary=card.summary if card.summary is not None else None,
        basis=card.basis, assignee=card.assignee,
        eta=local_time(datetime.fromisoformat(card.eta), tz) if card.eta else None,
        clocks=_clocks(card, due), missing=card.missing)


def _clocks(card: Card, due: str) -> str:
    """The instrument and its clocks, citing the articles (empty without an instrument)."""
    if not card.instrument:
        return ""
    if not card.legal_due:
        return m.CARD_NO_DEADLINE.format(instrument=card.instrument, due=due,
                                         source=card.instrument_source)
    return m.CARD_CLOCKS.format(instrument=card.instrument, ack=card.ack_within, due=due,
                                legal=card.legal_clock,
                                ack_cite=f" ({card.ack_cite})" if card.ack_cite else "",
                                due_cite=f" ({card.due_cite})" if card.due_cite else "")


def _same(text: str) -> str:
    return text


@dataclass(frozen=True)
class Markup:
    """How a target escapes user text and marks emphasis (plain text: not at all)."""

    escape: Callable[[str], str] = _same
    bold: Callable[[str], str] = _same
    italic: Callable[[str], str] = _same


PLAIN = Markup()


def card_lines(card: Card, tz: str, now: datetime, markup: Markup = PLAIN) -> list[str]:
    """A card as lines; every piece of user text goes through ``markup.escape``."""
    f, esc = facts(card, tz, now), markup.escape
    lines = [markup.bold(esc(f.title)) + "".join(f" · {markup.bold(esc(flag))}"
                                                 for flag in f.flags),
             f"{esc(f.parties)} · {esc(f.status)} · due {esc(f.due)}"]
    if f.summary is not None:
        lines.append(f"Summary: {esc(f.summary)}")
    else:
        lines.append("Summary: " + markup.italic("(confidential, shown to listed members only)"))
    if f.clocks:
        lines.append(esc(f.clocks))
    if f.basis:
        lines.append(f"Basis: {esc(f.basis)}")
    if card.person:
        lines.append(esc(m.CARD_PERSON.format(person=card.person)))
    if card.measure:
        lines.append(esc(m.CARD_MEASURE.format(measure=card.measure)))
    if f.missing is not None:
        lines.append(esc(m.CARD_MISSING.format(missing=f.missing, office=card.requesting_name)))
    if f.assignee:
        lines.append(f"Handled by: {esc(f.assignee)}")
    if f.eta:
        lines.append(f"Answer expected: {esc(f.eta)}")
    return lines


def card_row(card: Card, tz: str, now: datetime) -> str:
    """One line per request, for lists."""
    f = facts(card, tz, now)
    row = f"{card.ref} · {card.kind}" + (f" · {card.instrument}" if card.instrument else "") \
        + f" · {card.requesting} → {card.requested} · {f.status} · due {f.due}"
    row += "".join(f" · {flag}" for flag in f.flags if flag != "confidential")
    if f.summary is not None:
        short = f.summary if len(f.summary) <= 80 else f.summary[:79] + "…"
        row += f" · {short}"
    else:
        row += " · (confidential)"
    return row


def plain_lines(post: Post) -> list[str]:
    """A post as plain text lines (the console; also the fallback text elsewhere)."""
    now = _as_of(post)
    text_lines = post.text.splitlines() or [""]
    if is_relay(post):
        return relay_lines(post)
    if post.kind == "card" and post.card:
        return [*text_lines, *card_lines(post.card, post.tz, now)]
    if post.kind == "card_update" and post.card:
        f = facts(post.card, post.tz, now)
        return [f"{post.card.ref} card updated: {f.status} · due {f.due}"]
    if post.kind == "show" and post.card:
        return [*card_lines(post.card, post.tz, now), *text_lines]
    if post.kind == "list":
        return [*text_lines, *(card_row(card, post.tz, now) for card in post.cards)]
    if post.kind == "direct" and post.card:
        return [*text_lines, *card_lines(post.card, post.tz, now)]
    return text_lines


def relay_lines(post: Post) -> list[str]:
    """A relayed message as plain lines: ``Author · office: text`` (markers kept)."""
    who = clean(post.author or "")
    if post.kind == "relay_delete":
        return [m.RELAY_DELETED.format(who=who)]
    body = to_plain(post.text).split("\n")
    head = m.RELAY_EDITED.format(who=who, text=body[0]) if post.kind == "relay_edit" \
        else f"{who}: {body[0]}"
    return [head, *body[1:]]


def plain_text(post: Post) -> str:
    return "\n".join(plain_lines(post))
