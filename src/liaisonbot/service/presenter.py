"""How each reader is told: facts from the use cases rendered for one reader.

A :class:`Reader` is who a post is written for: where they read it (the visibility
:class:`~liaisonbot.domain.visibility.Audience`), their office's time zone and, next, its
language (``locale``, from ``[[offices]] language``; sentences, dates, numbers and plurals are
written in it by ``service.i18n``). The desk's use cases say what happened (a request opened, a
:class:`Changed`, a relayed message); the :class:`Presenter` writes it for each reader, asking
the visibility policy for every field of a request it shows. Every date in a post is written in
its reader's zone, never the actor's.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from liaisonbot.domain.cards import Card, Post
from liaisonbot.domain.contacts import HOLIDAY_HORIZON_DAYS, AtDesk, OnCall
from liaisonbot.domain.directory import Directory
from liaisonbot.domain.followups import business_days_late
from liaisonbot.domain.model import Contact, Office, Request
from liaisonbot.domain.refs import distinct_users
from liaisonbot.domain.visibility import Audience, Place, Shown, shows, visibility
from liaisonbot.service import clocks as legal
from liaisonbot.service import messages as m
from liaisonbot.service.i18n import Words, words

#: History detail keys that hold moments (ISO 8601), shown in the reader's zone.
_MOMENTS = frozenset({"due", "until", "eta", "at", "was", "legal", "received",
                      "chasing_until"})
MASK = m.CONFIDENTIAL


@dataclass(frozen=True)
class Reader:
    """Who a post is for: the audience (what they may see), the zone and the language."""

    audience: Audience
    tz: str = "UTC"
    locale: str = "en"

    @property
    def words(self) -> Words:
        return words(self.locale)

    def post(self, kind: str, text: str, now: datetime, **fields: Any) -> Post:
        """A post written for this reader: in its zone and language, composed at ``now``."""
        return Post(kind=kind, text=text, tz=self.tz, as_of=now.isoformat(),
                    locale=self.locale, **fields)


@dataclass(frozen=True)
class Changed:
    """What a command changed, before any wording: the fact ``Desk`` hands the presenter.
    ``detail`` is the history detail; ``private`` the command's own text (note, answer, reason)."""

    request: Request
    verb: str
    who: str
    office: str
    detail: dict[str, Any] = field(default_factory=dict)
    private: str = ""
    transition: bool = False  # the verb moves the status (the reply names the new one)


class Presenter:
    """Renders the desk's facts for each reader; the one place where request fields meet words."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory

    # ------------------------------------------------------------------ readers

    def room_reader(self, room: str) -> Reader:
        """A room's reader: its office's standing and zone (UTC for an unbound room)."""
        office = self.directory.office_for_room(room)
        return Reader(Audience(Place.ROOM, office.slug if office else None), _tz(office),
                      _language(office))

    def office_reader(self, office: Office) -> Reader:
        """An office's rooms' reader (they all see the same: the office's audience)."""
        return Reader(Audience(Place.ROOM, office.slug), _tz(office), _language(office))

    def member_reader(self, request: Request, user: str) -> Reader:
        """A listed member of one of ``request``'s parties, reading a direct message."""
        office = self._member_office(request, user)
        return Reader(Audience(Place.MEMBER_DM, office.slug if office else None, member=True),
                      _tz(office), _language(office))

    def on_call_reader(self, request: Request, office: Office, user: str) -> Reader:
        """An on-call contact of ``office`` reading a direct message about ``request``: as a
        listed member when it is one, else as the office's rooms read it."""
        if self.is_listed_member(request, user):
            return self.member_reader(request, user)
        return self.office_reader(office)

    def members(self, request: Request) -> list[str]:
        """The listed members of both parties (the readers of its confidential substance)."""
        offices = (self.directory.office(request.requesting),
                   self.directory.office(request.requested))
        return list(distinct_users(u for o in offices if o for u in o.members))

    def is_listed_member(self, request: Request, user: str) -> bool:
        return self._member_office(request, user) is not None

    def _member_office(self, request: Request, user: str) -> Office | None:
        return self.directory.listing((request.requesting, request.requested), user)

    # ------------------------------------------------------------------ cards

    def card(self, request: Request, *, now: datetime, audience: Audience | None = None) -> Card:
        """The neutral card as ``audience`` (default: a party's room) may see it."""
        audience = audience or Audience(Place.ROOM, request.requested)
        office = self.directory.office(request.requested)
        assert office is not None, f"office {request.requested} left the config"
        card = Card(
            request_id=request.id, case=request.case, kind=request.kind.value,
            requesting=request.requesting, requesting_name=self.directory.name(request.requesting),
            requested=request.requested, requested_name=self.directory.name(request.requested),
            status=request.status.value, due_at=request.due_at.isoformat(),
            urgent=request.urgent, confidential=request.confidential,
            summary=request.summary if shows(request, audience, "summary") else None,
            basis=request.basis if shows(request, audience, "basis") else "",
            assignee=request.assignee, eta=request.eta.isoformat() if request.eta else None,
            days_late=business_days_late(request, office.calendar, now),
            **legal.card_fields(self.directory, request, audience))
        if request.measures or request.conditions:
            return replace(card, **measure_fields(request, audience))
        return card

    # ------------------------------------------------------------------ the desk's facts

    def opened(self, request: Request, reader: Reader, now: datetime) -> str:
        w = reader.words
        return w(m.OPENED).format(ref=request.ref, case=request.case,
                                  kind=w.kind(request.kind.value),
                                  requesting=self.directory.name(request.requesting),
                                  requested=self.directory.name(request.requested),
                                  due=w.when(request.due_at, reader.tz, now))

    def change_headline(self, change: Changed, reader: Reader | None = None) -> str:
        """``R-1 acknowledged by X (office)``: no dates, in the reader's language."""
        w = (reader or Reader(Audience(Place.ROOM, None))).words
        ref = change.request.ref
        if "measure_no" in change.detail:  # one measure: R-4/2 answered by …
            ref = f"{ref}/{change.detail['measure_no']}"
        return w(m.NOTE_BY).format(ref=ref, done=w.done(change.verb),
                                   who=change.who, office=change.office)

    def change_detail(self, change: Changed, reader: Reader, now: datetime) -> str:
        """`` · due now …`` and the like, with dates in the reader's zone and language."""
        request, verb, tz, w = change.request, change.verb, reader.tz, reader.words
        if verb == "extend" and change.detail.get("limit"):  # within the instrument's limit
            name = str(change.detail.get("deadline", ""))
            return " · " + w(m.EXTENDED_WHY).format(
                name=w(m.DEADLINE_NAMES.get(name, name)), date=w.when(request.due_at, tz, now),
                limit=w.clock(str(change.detail["limit"])), cite=change.detail.get("cite", ""))
        if verb in ("extend", "record") or (verb == "ack" and "received" in change.detail):
            return w(m.CHANGE_DUE).format(due=w.when(request.due_at, tz, now))
        if verb == "snooze" and request.snoozed_until:
            return w(m.CHANGE_SNOOZED).format(until=w.when(request.snoozed_until, tz, now))
        if verb == "assign":
            return w(m.CHANGE_ASSIGNED).format(assignee=request.assignee)
        if verb == "ack" and request.eta:
            return w(m.CHANGE_ETA).format(eta=w.when(request.eta, tz, now))
        if verb in ("incomplete", "complete"):
            return legal.change_summary(self.directory, request, verb, change.detail, tz, now,
                                        w)
        if verb == "postpone" and "measure_no" in change.detail:
            until = datetime.fromisoformat(str(change.detail["until"]))
            return w(m.CHANGE_MEASURE_UNTIL).format(until=w.when(until, tz, now))
        return self.hold_detail(change, reader, now)

    def hold_detail(self, change: Changed, reader: Reader, now: datetime) -> str:
        """Postponed until …, in consultation, back to …, forwarded to … (issue 24)."""
        request, w = change.request, reader.words
        if change.verb == "postpone" and request.hold_until:
            stopped = legal.stopped_while_postponed(self.directory, request)
            if stopped:  # EIO art. 12(4): the execution time runs only once it ends
                return w(m.CHANGE_POSTPONED_STOPS).format(
                    until=w.when(request.hold_until, reader.tz, now),
                    deadlines=", ".join(w(m.DEADLINE_NAMES.get(c.deadline.name,
                                                               c.deadline.name))
                                        for c in stopped),
                    cite=", ".join(c.deadline.postpone_cite for c in stopped))
            return w(m.CHANGE_POSTPONED).format(until=w.when(request.hold_until, reader.tz, now))
        if change.verb == "consult":
            return w(m.CHANGE_CONSULTING)
        if change.verb == "resume":
            return w(m.CHANGE_BACK_TO).format(status=w.status(request.status.value))
        if change.verb == "forward":
            return w(m.CHANGE_FORWARDED).format(office=self.directory.name(request.requested))
        return ""

    def change_note(self, change: Changed, reader: Reader, now: datetime) -> str:
        """The thread note for one reader: the command's text when they may see it, a pointer
        to the direct message when it is masked for them."""
        head = self.change_headline(change, reader) + self.change_detail(change, reader, now)
        if not change.private:
            return head
        seen = visibility(change.request, reader.audience, "note")
        if seen is Shown.SHOWN:
            text = change.private
            if change.detail.get("conditions"):  # shown with the answer, wherever it is
                text += "\n" + reader.words(m.CARD_CONDITIONS).format(
                    conditions=change.detail["conditions"])
            return reader.words(m.NOTE_TEXT).format(note=head, text=text)
        return f"{head} {reader.words(m.CONF_TEXT_IN_DM)}" if seen is Shown.MASKED else head

    def change_reply(self, change: Changed, reader: Reader, now: datetime) -> str:
        request, w = change.request, reader.words
        if "measure_no" in change.detail:
            return self.measure_reply(change, reader, now)
        if change.transition:
            return w(m.DONE).format(ref=request.ref, status=w.status(request.status.value))
        what = self.change_detail(change, reader, now).strip(" ·")
        return w(m.DONE_FIELD).format(ref=request.ref, what=what)

    def measure_reply(self, change: Changed, reader: Reader, now: datetime) -> str:
        """``R-4/1 is answered; R-4 is partly answered now.``"""
        request, w = change.request, reader.words
        number = int(change.detail["measure_no"])
        measure = request.measures[number - 1]
        status = w.status(request.status.value)
        if measure.state.value == "postponed" and measure.until is not None:
            return w(m.MEASURE_POSTPONED_DONE).format(
                ref=request.ref, number=number, status=status,
                until=w.when(measure.until, reader.tz, now))
        return w(m.MEASURE_DONE).format(ref=request.ref, number=number, status=status,
                                        state=w(m.MEASURE_STATES[measure.state.value]))

    def relay_author(self, who: str, office: Office) -> str:
        return f"{who} · {office.slug}"

    def file_notice(self, request: Request, author: str, office: Office, name: str,
                    size: int, reader: Reader | None = None) -> str:
        w = (reader or Reader(Audience(Place.ROOM, None))).words
        return w(m.RELAYED_FILE).format(who=author, ref=request.ref, name=name,
                                        size=w.size(size), office=office.name)

    def list_title(self, case: str, count: int, scope: str, office: Office,
                   reader: Reader | None = None) -> str:
        w = (reader or Reader(Audience(Place.ROOM, None), locale=office.language)).words
        return w(m.LIST_TITLE).format(case=case, requests=w.count(m.N_REQUESTS, count),
                                      scope=w(m.SCOPE_NAMES.get(scope, scope)),
                                      office=office.name)

    def nothing_listed(self, case: str, scope: str, office: Office,
                       reader: Reader | None = None) -> str:
        w = (reader or Reader(Audience(Place.ROOM, None), locale=office.language)).words
        shown = w(m.SCOPE_NAMES.get(scope, scope)) if scope != "all" else ""
        return w(m.NOTHING_OPEN).format(scope=shown, case=case,
                                        office=office.name).replace("  ", " ")

    def overdue_title(self, count: int, office: Office, reader: Reader | None = None) -> str:
        w = (reader or Reader(Audience(Place.ROOM, None), locale=office.language)).words
        return w(m.OVERDUE_TITLE).format(office=office.name,
                                         requests=w.count(m.N_REQUESTS, count))

    # ------------------------------------------------------------------ points of contact

    def who(self, desk: AtDesk, reader: Reader) -> str:
        """``who OFFICE``: the office's contacts, on-call users, languages, local time and
        state (openings in the reader's zone), holidays ahead and instruments."""
        w = reader.words
        lines = [self.who_title(desk, reader), self.who_state(desk, reader),
                 self.who_accepts(desk, reader)]
        if desk.contacts:
            lines.append(w(m.WHO_CONTACTS))
            lines.extend(self.contact_line(contact, reader) for contact in desk.contacts)
        else:
            lines.append(w(m.WHO_NO_CONTACTS))
        if desk.on_call:
            lines.append(self.who_on_call(desk, reader))
        lines += [self.who_holidays(desk, reader), self.who_instruments(desk, reader)]
        return "\n".join(lines)

    def who_all(self, desks: list[AtDesk], reader: Reader) -> str:
        """``who``: one line per office, its wall clock and whether it is open (until when,
        or its next opening in the reader's zone)."""
        w = reader.words
        lines = [w(m.WHO_ALL_TITLE)]
        for desk in desks:
            office = desk.office
            local = w.weekday_time(desk.now, _tz(office))
            if desk.closes_at is not None:
                lines.append(w(m.WHO_ALL_OPEN).format(
                    office=office.name, slug=office.slug, local=local,
                    closes=w.when(desk.closes_at, reader.tz, desk.now)))
            elif desk.opens_at is not None:
                lines.append(w(m.WHO_ALL_CLOSED).format(
                    office=office.name, slug=office.slug, local=local,
                    opens=w.when(desk.opens_at, reader.tz, desk.now)))
        lines.append(w(m.WHO_ALL_TAIL))
        return "\n".join(lines)

    # The parts of ``who``, each a sentence the board's contacts page shows too.

    def who_title(self, desk: AtDesk, reader: Reader) -> str:
        w, office = reader.words, desk.office
        if office.country:
            return w(m.WHO_TITLE_COUNTRY).format(office=office.name, slug=office.slug,
                                                 country=w.country_name(office.country))
        return w(m.WHO_TITLE).format(office=office.name, slug=office.slug)

    def who_state(self, desk: AtDesk, reader: Reader) -> str:
        """Its wall clock, open or closed, and until when or its next opening (the reader's
        zone)."""
        w = reader.words
        local = w.local_time(desk.now, _tz(desk.office))
        if desk.closes_at is not None:
            return w(m.WHO_OPEN).format(local=local,
                                        closes=w.when(desk.closes_at, reader.tz, desk.now))
        assert desk.opens_at is not None
        template = m.WHO_CLOSED_HOLIDAY if desk.holiday_today else m.WHO_CLOSED
        return w(template).format(local=local, opens=w.when(desk.opens_at, reader.tz,
                                                            desk.now))

    def who_accepts(self, desk: AtDesk, reader: Reader) -> str:
        w = reader.words
        return w(m.WHO_ACCEPTS).format(
            languages=w.language_names(desk.office.request_languages))

    def contact_line(self, contact: Contact, reader: Reader) -> str:
        """``- Name, role: +49…, mail, matrix:@…; works in German and English``."""
        w = reader.words
        reach = ", ".join(x for x in (contact.phone, contact.email, contact.user) if x)
        return w(m.WHO_CONTACT).format(name=contact.name, role=contact.role, reach=reach,
                                       languages=w.language_names(contact.languages))

    def who_on_call(self, desk: AtDesk, reader: Reader) -> str:
        return reader.words(m.WHO_ON_CALL).format(
            people=", ".join(on_call_name(person) for person in desk.on_call))

    def who_holidays(self, desk: AtDesk, reader: Reader) -> str:
        w = reader.words
        span = w.count(m.WHO_NEXT_DAYS, HOLIDAY_HORIZON_DAYS)
        if not desk.holidays:
            return w(m.WHO_NO_HOLIDAYS).format(span=span)
        return w(m.WHO_HOLIDAYS).format(span=span, dates=", ".join(map(w.day, desk.holidays)))

    def who_instruments(self, desk: AtDesk, reader: Reader) -> str:
        w = reader.words
        if not desk.instruments:
            return w(m.WHO_NO_INSTRUMENTS)
        return w(m.WHO_INSTRUMENTS).format(instruments=", ".join(
            instrument_name(i.slug, w.instrument(i.label)) for i in desk.instruments))

    # ------------------------------------------------------------------ history

    def history_lines(self, request: Request, entries: list[Any], reader: Reader,
                      now: datetime) -> list[str]:
        """``show``'s history, each detail asked of the visibility policy for ``reader``."""
        return [self.history_line(request, entry, reader, now) for entry in entries]

    def history_line(self, request: Request, entry: Any, reader: Reader, now: datetime) -> str:
        moment = datetime.fromisoformat(entry.at)
        w = reader.words
        shown = self.detail_items(request, entry.detail, reader)
        action = self.action(entry.action, reader)
        return w(m.HISTORY_LINE).format(when=w.when(moment, reader.tz, now), action=action,
                                        actor=entry.actor) + (
            f" · {', '.join(shown)}" if shown else "")


    def detail_items(self, request: Request, detail: dict[str, Any],
                     reader: Reader) -> list[str]:
        """A history entry's detail for ``reader``, each key asked of the visibility policy
        (shown, masked, or left out; an unknown key is substance, so it fails closed), in the
        reader's language and zone. The summary is left out where it is shown: the card or
        the page above the history carries it."""
        w = reader.words
        shown = []
        for key, value in sorted(detail.items()):
            seen = visibility(request, reader.audience, key)
            if key == "summary" and seen is Shown.SHOWN:
                continue
            label = w(m.DETAIL_KEYS.get(key, key))
            if seen is Shown.SHOWN:
                value = self.via_name(value, reader) if key == "via" else _value(key, value, reader)
                shown.append(w(m.DETAIL_ITEM).format(key=label, value=value))
            elif seen is Shown.MASKED:
                shown.append(w(m.DETAIL_ITEM).format(key=label, value=w(MASK)))
        return shown

    def via_name(self, slug: Any, reader: Reader) -> str:
        """``via`` in a history entry: the word typed, with the instrument's label in the
        reader's language (``eio (DEE)``)."""
        instrument = self.directory.instruments.get(str(slug))
        if instrument is None:
            return str(slug)
        return instrument_name(instrument.slug, reader.words.instrument(instrument.label))

    def action(self, action: str, reader: Reader) -> str:
        """A history action as stored (English) in the reader's language."""
        return reader.words(_ACTIONS.get(action, action))


#: History actions as stored (English) → their msgids.
_ACTIONS = {**m.HISTORY_ACTIONS, **{v: v for v in m.STATUS_VERB.values()}}


def measure_fields(request: Request, audience: Audience) -> dict[str, Any]:
    """A card's measures and conditions on use as ``audience`` may see them (the
    visibility policy decides each field: a measure's text is ``measure``, its conditions
    ``conditions``, a postponement's reason ``reason``); with numbered measures the card's
    single ``measure`` line gives way to them."""
    def said(field: str, value: str) -> str:
        seen = visibility(request, audience, field)
        if seen is Shown.SHOWN or not value:
            return value
        return MASK if seen is Shown.MASKED else ""

    rows = tuple((str(x.number), said("measure", x.text), x.state.value,
                  x.until.isoformat() if x.until else "", said("conditions", x.conditions),
                  said("reason", x.reason)) for x in request.measures)
    fields: dict[str, Any] = {"measures": rows,
                              "conditions": said("conditions", request.conditions)}
    if request.measures:
        fields["measure"] = ""
    return fields


def on_call_name(person: OnCall) -> str:
    """An on-call user: ``Name (user)`` when a contact names them, else the user."""
    return f"{person.contact.name} ({person.user})" if person.contact else person.user


def instrument_name(slug: str, label: str) -> str:
    """``eio (EIO)``: the word typed after ``via:``, and its label when that differs."""
    return slug if label.lower() == slug.lower() else f"{slug} ({label})"


def _tz(office: Office | None) -> str:
    return office.calendar.tz.key if office else "UTC"


def _language(office: Office | None) -> str:
    return office.language if office else "en"


def _value(key: str, value: Any, reader: Reader) -> str:
    """A history detail value for people: ``a → b`` for changes, local times for moments."""
    if isinstance(value, list) and len(value) == 2 and not isinstance(value[0], dict):
        return f"{_value(key, value[0], reader)} → {_value(key, value[1], reader)}"
    if key in _MOMENTS and isinstance(value, str):
        try:
            return reader.words.local_time(datetime.fromisoformat(value), reader.tz)
        except ValueError:
            return value
    if key == "measures" and isinstance(value, list):  # open's numbered measures
        return "; ".join(f"{item.get('number')}. {item.get('text')}" for item in value
                         if isinstance(item, dict))
    if key == "measure_state" and isinstance(value, str):
        return reader.words(m.MEASURE_STATES.get(value, value))
    if key == "status" and isinstance(value, str):
        return reader.words.status(value)
    if key == "kind" and isinstance(value, str):  # a request's kind (a nudge's stays)
        return reader.words.kind(value)
    if key == "confidentiality" and isinstance(value, str):
        return reader.words.level(value)
    return "—" if value is None else str(value)
