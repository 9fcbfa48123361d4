"""How each reader is told: facts from the use cases rendered for one reader.

A :class:`Reader` is who a post is written for: where they read it (the visibility
:class:`~liaisonbot.domain.visibility.Audience`), their office's time zone and, next, its
language (``locale``). The desk's use cases say what happened (a request opened, a
:class:`Changed`, a relayed message); the :class:`Presenter` writes it for each reader, asking
the visibility policy for every field of a request it shows. Every date in a post is written in
its reader's zone, never the actor's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from liaisonbot.domain.cards import Card
from liaisonbot.domain.directory import Directory
from liaisonbot.domain.followups import business_days_late
from liaisonbot.domain.model import Office, Request
from liaisonbot.domain.refs import distinct_users
from liaisonbot.domain.timefmt import local_time, when
from liaisonbot.domain.visibility import Audience, Place, Shown, shows, visibility
from liaisonbot.service import clocks as legal
from liaisonbot.service import messages as m

#: History detail keys that hold moments (ISO 8601), shown in the reader's zone.
_MOMENTS = frozenset({"due", "until", "eta"})
MASK = "(confidential)"


@dataclass(frozen=True)
class Reader:
    """Who a post is for: the audience (what they may see), the zone and (next) the language."""

    audience: Audience
    tz: str = "UTC"
    locale: str = "en"


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
        return Reader(Audience(Place.ROOM, office.slug if office else None), _tz(office))

    def member_reader(self, request: Request, user: str) -> Reader:
        """A listed member of one of ``request``'s parties, reading a direct message."""
        office = self._member_office(request, user)
        return Reader(Audience(Place.MEMBER_DM, office.slug if office else None, member=True),
                      _tz(office))

    def members(self, request: Request) -> list[str]:
        """The listed members of both parties (the readers of its confidential substance)."""
        offices = (self.directory.office(request.requesting),
                   self.directory.office(request.requested))
        return list(distinct_users(u for o in offices if o for u in o.members))

    def is_listed_member(self, request: Request, user: str) -> bool:
        return self._member_office(request, user) is not None

    def _member_office(self, request: Request, user: str) -> Office | None:
        return next((o for o in (self.directory.office(request.requesting),
                                 self.directory.office(request.requested))
                     if o and o.is_member(user)), None)

    # ------------------------------------------------------------------ cards

    def card(self, request: Request, *, now: datetime, audience: Audience | None = None) -> Card:
        """The neutral card as ``audience`` (default: a party's room) may see it."""
        audience = audience or Audience(Place.ROOM, request.requested)
        office = self.directory.office(request.requested)
        assert office is not None, f"office {request.requested} left the config"
        return Card(
            request_id=request.id, case=request.case, kind=request.kind.value,
            requesting=request.requesting, requesting_name=self.directory.name(request.requesting),
            requested=request.requested, requested_name=self.directory.name(request.requested),
            status=request.status.value, due_at=request.due_at.isoformat(),
            urgent=request.urgent, confidential=request.confidential,
            summary=request.summary if shows(request, audience, "summary") else None,
            basis=request.basis if shows(request, audience, "basis") else "",
            assignee=request.assignee, eta=request.eta.isoformat() if request.eta else None,
            days_late=business_days_late(request, office.calendar, now),
            **legal.card_fields(self.directory, request,
                                show=shows(request, audience, "summary")))

    # ------------------------------------------------------------------ the desk's facts

    def opened(self, request: Request, reader: Reader, now: datetime) -> str:
        return m.OPENED.format(ref=request.ref, case=request.case, kind=request.kind.value,
                               requesting=self.directory.name(request.requesting),
                               requested=self.directory.name(request.requested),
                               due=when(request.due_at, reader.tz, now))

    def change_headline(self, change: Changed) -> str:
        """``R-1 acknowledged by X (office)``: the same words for every reader (no dates)."""
        return m.NOTE_BY.format(ref=change.request.ref, done=m.STATUS_VERB[change.verb],
                                who=change.who, office=change.office)

    def change_detail(self, change: Changed, reader: Reader, now: datetime) -> str:
        """`` · due now …`` and the like, with dates in the reader's zone."""
        request, verb, tz = change.request, change.verb, reader.tz
        if verb == "extend":
            return f" · due now {when(request.due_at, tz, now)}"
        if verb == "snooze" and request.snoozed_until:
            return f" · nudges held until {when(request.snoozed_until, tz, now)}"
        if verb == "assign":
            return f" · handled by {request.assignee}"
        if verb == "ack" and request.eta:
            return f" · answer expected {when(request.eta, tz, now)}"
        if verb in ("incomplete", "complete"):
            return legal.change_summary(self.directory, request, verb, change.detail, tz, now)
        return ""

    def change_note(self, change: Changed, reader: Reader, now: datetime) -> str:
        """The thread note for one reader: the command's text when they may see it, a pointer
        to the direct message when it is masked for them."""
        head = self.change_headline(change) + self.change_detail(change, reader, now)
        if not change.private:
            return head
        seen = visibility(change.request, reader.audience, "note")
        if seen is Shown.SHOWN:
            return f"{head}:\n{change.private}"
        return f"{head} {m.CONF_TEXT_IN_DM}" if seen is Shown.MASKED else head

    def change_reply(self, change: Changed, reader: Reader, now: datetime) -> str:
        request = change.request
        if change.transition:
            return m.DONE.format(ref=request.ref, status=request.status.value)
        what = self.change_detail(change, reader, now).strip(" ·")
        return m.DONE_FIELD.format(ref=request.ref, what=what)

    def relay_author(self, who: str, office: Office) -> str:
        return f"{who} · {office.slug}"

    def file_notice(self, request: Request, author: str, office: Office, name: str,
                    size: int) -> str:
        return m.RELAYED_FILE.format(who=author, ref=request.ref, name=name, size=_size(size),
                                     office=office.name)

    def list_title(self, case: str, count: int, scope: str, office: Office) -> str:
        return f"{case}: {m.plural(count, 'request')} ({scope}) for {office.name}"

    def nothing_listed(self, case: str, scope: str, office: Office) -> str:
        return m.NOTHING_OPEN.format(scope=scope if scope != "all" else "", case=case,
                                     office=office.name).replace("  ", " ")

    def overdue_title(self, count: int, office: Office) -> str:
        return f"Overdue for {office.name}: {m.plural(count, 'request')}"

    # ------------------------------------------------------------------ history

    def history_lines(self, request: Request, entries: list[Any], reader: Reader,
                      now: datetime) -> list[str]:
        """``show``'s history, each detail asked of the visibility policy for ``reader``."""
        return [self.history_line(request, entry, reader, now) for entry in entries]

    def history_line(self, request: Request, entry: Any, reader: Reader, now: datetime) -> str:
        moment = datetime.fromisoformat(entry.at)
        shown = []
        for key, value in sorted(entry.detail.items()):
            seen = visibility(request, reader.audience, key)
            if key == "summary" and seen is Shown.SHOWN:
                continue  # the card above the history shows it
            if seen is Shown.SHOWN:
                shown.append(f"{key}: {_value(key, value, reader.tz)}")
            elif seen is Shown.MASKED:
                shown.append(f"{key}: {MASK}")
        return f"- {when(moment, reader.tz, now)} · {entry.action} by {entry.actor}" + (
            f" · {', '.join(shown)}" if shown else "")


def _tz(office: Office | None) -> str:
    return office.calendar.tz.key if office else "UTC"


def _value(key: str, value: Any, tz: str) -> str:
    """A history detail value for people: ``a → b`` for changes, local times for moments."""
    if isinstance(value, list) and len(value) == 2 and not isinstance(value[0], dict):
        return f"{_value(key, value[0], tz)} → {_value(key, value[1], tz)}"
    if key in _MOMENTS and isinstance(value, str):
        try:
            return local_time(datetime.fromisoformat(value), tz)
        except ValueError:
            return value
    return "—" if value is None else str(value)


def _size(size: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return str(size)
