"""Neutral cards and posts as facts and lines; each platform formats these its own way.

Every label and date is written in the post's ``locale`` (the reader's language, through
``service.i18n``); user text and command words are never translated."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from liaisonbot.chat.formatting import clean, to_plain
from liaisonbot.domain.cards import Card, Post
from liaisonbot.service import messages as m
from liaisonbot.service.i18n import Words, words

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
    hold: str = ""  # postponed until … / in consultation since …, with the reason
    words: Words = field(default_factory=lambda: words("en"))


def as_of(post: Post) -> datetime:
    """When the post was composed (now, when it does not say): the moment its wording, such as
    "in 3 days", is relative to."""
    return datetime.fromisoformat(post.as_of) if post.as_of else datetime.now(UTC)


def facts(card: Card, tz: str, now: datetime, locale: str = "en") -> CardFacts:
    w = words(locale)
    flags = []
    if card.urgent:
        flags.append(w(m.CARD_URGENT))
    if card.confidential:
        flags.append(w(m.CARD_CONFIDENTIAL))
    if card.days_late:
        flags.append(w.count(m.N_BUSINESS_DAYS_LATE, card.days_late))
    if card.status == "incomplete":
        flags.append(w(m.CARD_WAITING).format(office=card.requesting_name))
    due = w.when(datetime.fromisoformat(card.due_at), tz, now)
    return CardFacts(
        title=f"{card.ref} · {card.case} · {w.kind(card.kind)}"
              + (f" · {w.instrument(card.instrument)}" if card.instrument else ""),
        parties=f"{card.requesting_name} → {card.requested_name}",
        status=w.status(card.status), due=due,
        flags=tuple(flags),
        summary=card.summary if card.summary is not None else None,
        basis=card.basis, assignee=card.assignee,
        eta=w.local_time(datetime.fromisoformat(card.eta), tz) if card.eta else None,
        clocks=_clocks(card, due, w, tz),
        missing=w(card.missing) if card.missing == m.CONFIDENTIAL else card.missing,
        hold=_hold(card, w, tz, now), words=w)


def _hold(card: Card, w: Words, tz: str, now: datetime) -> str:
    """``Postponed until …: reason`` or ``In consultation since …: reason`` (empty else)."""
    if not card.hold:
        return ""
    since, until, reason = card.hold[:3]
    reason = w(reason) if reason == m.CONFIDENTIAL else reason
    if card.status == "postponed" and until:
        return w(m.CARD_POSTPONED).format(until=w.when(datetime.fromisoformat(until), tz, now),
                                          reason=reason)
    return w(m.CARD_CONSULTING).format(since=w.when(datetime.fromisoformat(since), tz, now),
                                       reason=reason)


def _clocks(card: Card, due: str, w: Words, tz: str = "UTC") -> str:
    """The instrument and its clocks, citing the articles (empty without an instrument)."""
    if not card.instrument:
        return ""
    label = w.instrument(card.instrument)
    if card.deadlines:
        if card.ack_by:  # brought forward: never after the answer
            return w(m.CARD_CLOCKS_EVENTS_ACK_BY).format(
                instrument=card.instrument,
                ack=w.local_time(datetime.fromisoformat(card.ack_by), tz),
                deadlines=" · ".join(deadline_text(row, w, tz) for row in card.deadlines))
        return w(m.CARD_CLOCKS_EVENTS).format(
            instrument=label, ack=w.clock(card.ack_within),
            ack_cite=f" ({card.ack_cite})" if card.ack_cite else "",
            deadlines=" · ".join(deadline_text(row, w, tz) for row in card.deadlines))
    if not card.legal_due:
        return w(m.CARD_NO_DEADLINE).format(instrument=label, due=due,
                                            source=w.source(card.instrument_source))
    return w(m.CARD_CLOCKS).format(instrument=label, ack=w.clock(card.ack_within),
                                   due=due, legal=w.clock(card.legal_clock),
                                   ack_cite=f" ({card.ack_cite})" if card.ack_cite else "",
                                   due_cite=f" ({card.due_cite})" if card.due_cite else "")


def deadline_text(row: tuple[str, ...], w: Words, tz: str = "UTC") -> str:
    """One pending legal deadline: ``decision by Sat 2027-01-02 (art. 12(3))``, or while its
    event is unknown ``execution 90 d after the decision (art. 12(4))``."""
    name, at, legal, within, start, cite = row[:6]
    label = w(m.DEADLINE_NAMES.get(name, name))
    cited = f" ({cite})" if cite else ""
    if not at:
        return w(m.DEADLINE_WAITING).format(name=label, within=w.clock(within),
                                            event=w(m.EVENT_NAMES.get(start, start)),
                                            cite=cited)
    if at != legal:
        why = row[7] if len(row) > 7 and row[7] else cite
        return w(m.DEADLINE_EXTENDED).format(name=label, date=_moment_text(at, within, w, tz),
                                             legal=_moment_text(legal, within, w, tz),
                                             cite=f", {why}" if why else "")
    return w(m.DEADLINE_BY).format(name=label, date=_moment_text(at, within, w, tz), cite=cited)


def _moment_text(iso: str, within: str, w: Words, tz: str) -> str:
    """A deadline's date in the requested office's zone; an hour clock at its time in the
    reader's zone."""
    moment = datetime.fromisoformat(iso)
    if within.endswith(" h") or within.endswith(" m"):
        return w.local_time(moment, tz)
    return w.day(moment.date())


def late_notices(card: Card, now: datetime) -> list[str]:
    """What the instrument requires for each legal deadline that has passed (EAW art. 17(7))."""
    return [row[6] for row in card.deadlines
            if len(row) > 6 and row[6] and row[1] and datetime.fromisoformat(row[1]) <= now]


def _same(text: str) -> str:
    return text


@dataclass(frozen=True)
class Markup:
    """How a target escapes user text and marks emphasis (plain text: not at all)."""

    escape: Callable[[str], str] = _same
    bold: Callable[[str], str] = _same
    italic: Callable[[str], str] = _same


PLAIN = Markup()


def card_lines(card: Card, tz: str, now: datetime, markup: Markup = PLAIN,
               locale: str = "en") -> list[str]:
    """A card as lines in ``locale``; every piece of user text goes through
    ``markup.escape`` (the labels are the catalog's, escaped the same way)."""
    f, esc = facts(card, tz, now, locale), markup.escape
    w = f.words
    lines = [markup.bold(esc(f.title)) + "".join(f" · {markup.bold(esc(flag))}"
                                                 for flag in f.flags),
             f"{esc(f.parties)} · {esc(f.status)} · {esc(w(m.CARD_DUE).format(due=f.due))}"]
    if f.summary is not None:
        lines.append(esc(w(m.CARD_SUMMARY).format(summary=f.summary)))
    else:
        lines.append(esc(w(m.CARD_SUMMARY).format(summary="")).rstrip() + " "
                     + markup.italic(esc(w(m.CARD_SUMMARY_HIDDEN))))
    if f.clocks:
        lines.append(esc(f.clocks))
    for notice in late_notices(card, now):
        lines.append(esc(w(m.DEADLINE_LATE_NOTICE).format(notice=notice)))
    if card.annex_b:
        received, ref, contact = card.annex_b
        lines.append(esc(w(m.CARD_ANNEX_B).format(
            received=w.day(datetime.fromisoformat(received).date()) if received else "—",
            ref=ref or "—", contact=contact or "—")))
    if f.basis:
        lines.append(esc(w(m.CARD_BASIS).format(basis=f.basis)))
    if card.person:
        lines.append(esc(w(m.CARD_PERSON).format(person=card.person)))
    if card.measure:
        lines.append(esc(w(m.CARD_MEASURE).format(measure=card.measure)))
    lines.extend(esc(line) for line in measure_lines(card, tz, now, locale))
    if f.missing is not None:
        lines.append(esc(w(m.CARD_MISSING).format(missing=f.missing,
                                                  office=card.requesting_name)))
    if f.hold:
        lines.append(esc(f.hold))
    if f.assignee:
        lines.append(esc(w(m.CARD_HANDLED).format(assignee=f.assignee)))
    if f.eta:
        lines.append(esc(w(m.CARD_ETA).format(eta=f.eta)))
    return lines


def _masked(text: str, w: Words) -> str:
    return w(text) if text == m.CONFIDENTIAL else text


def measure_lines(card: Card, tz: str, now: datetime, locale: str = "en") -> list[str]:
    """A card's measures, one line each with its state (and conditions on use, or until when
    and why it is postponed), their tally, and the whole answer's conditions on use; plain
    text in ``locale`` (each renderer escapes it)."""
    w = words(locale)
    lines = []
    for number, text, state, until, conditions, reason in card.measures:
        if state == "postponed" and until:
            lines.append(w(m.CARD_MEASURE_POSTPONED).format(
                ref=card.ref, number=number, text=_masked(text, w),
                until=w.when(datetime.fromisoformat(until), tz, now),
                reason=_masked(reason, w) or "—"))
        else:
            lines.append(w(m.CARD_MEASURE_ROW).format(
                ref=card.ref, number=number, text=_masked(text, w),
                state=w(m.MEASURE_STATES.get(state, state))))
        if conditions:
            lines.append("  " + w(m.CARD_CONDITIONS).format(conditions=_masked(conditions, w)))
    if card.measures:
        states = [row[2] for row in card.measures]
        lines.append(w(m.CARD_MEASURES).format(**{
            state: w.number(states.count(state))
            for state in ("answered", "declined", "postponed", "pending")}))
    if card.conditions:
        lines.append(w(m.CARD_CONDITIONS).format(conditions=_masked(card.conditions, w)))
    return lines


def card_row(card: Card, tz: str, now: datetime, locale: str = "en") -> str:
    """One line per request, for lists."""
    f = facts(card, tz, now, locale)
    w = f.words
    row = f"{card.ref} · {w.kind(card.kind)}" \
        + (f" · {w.instrument(card.instrument)}" if card.instrument else "") \
        + f" · {card.requesting} → {card.requested} · {f.status} · " \
        + w(m.CARD_DUE).format(due=f.due)
    row += "".join(f" · {flag}" for flag in f.flags if flag != w(m.CARD_CONFIDENTIAL))
    if card.measures:
        settled = sum(row_[2] in ("answered", "declined") for row_ in card.measures)
        row += " · " + w(m.LIST_MEASURES).format(settled=w.number(settled),
                                                 count=w.number(len(card.measures)))
    if f.summary is not None:
        short = f.summary if len(f.summary) <= 80 else f.summary[:79] + "…"
        row += f" · {short}"
    else:
        row += " · " + w(m.CONFIDENTIAL)
    return row


def plain_lines(post: Post) -> list[str]:
    """A post as plain text lines (the console; also the fallback text elsewhere)."""
    now = as_of(post)
    text_lines = post.text.splitlines() or [""]
    if is_relay(post):
        return relay_lines(post)
    loc = post.locale
    if post.kind == "card" and post.card:
        return [*text_lines, *card_lines(post.card, post.tz, now, locale=loc)]
    if post.kind == "card_update" and post.card:
        f = facts(post.card, post.tz, now, loc)
        return [f.words(m.CARD_UPDATED).format(ref=post.card.ref, status=f.status, due=f.due),
                *measure_lines(post.card, post.tz, now, loc)]
    if post.kind == "show" and post.card:
        return [*card_lines(post.card, post.tz, now, locale=loc), *text_lines]
    if post.kind == "list":
        return [*text_lines, *(card_row(card, post.tz, now, loc) for card in post.cards)]
    if post.kind == "direct" and post.card:
        return [*text_lines, *card_lines(post.card, post.tz, now, locale=loc)]
    return text_lines


def relay_lines(post: Post) -> list[str]:
    """A relayed message as plain lines: ``Author · office: text`` (markers kept)."""
    who = clean(post.author or "")
    w = words(post.locale)
    if post.kind == "relay_delete":
        return [w(m.RELAY_DELETED).format(who=who)]
    body = to_plain(post.text).split("\n")
    head = w(m.RELAY_EDITED).format(who=who, text=body[0]) if post.kind == "relay_edit" \
        else f"{who}: {body[0]}"
    return [head, *body[1:]]


def plain_text(post: Post) -> str:
    return "\n".join(plain_lines(post))
