"""Points of contact: an office as a partner needs it now (``who OFFICE``, the board's contacts
page). Whom to call, in which language, whether they are at their desk, when they open next.

``at_desk(directory, office, now)`` gathers the facts once; the presenter (chat) and the board
(HTML) write them for their reader. Who may read them is decided by the callers' usual gate:
a member of a configured office (the desk's acting office, the board's signed-in offices).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from liaisonbot.domain.directory import Directory
from liaisonbot.domain.instruments import Instrument
from liaisonbot.domain.model import Contact, Office

#: How far ahead ``who`` lists an office's public holidays (days after today, in its zone).
HOLIDAY_HORIZON_DAYS = 30


@dataclass(frozen=True)
class OnCall:
    """An on-call user, with the contact entry that names them when there is one."""

    user: str
    contact: Contact | None = None


@dataclass(frozen=True)
class AtDesk:
    """An office at one moment: its local time, open or closed (until when, or when it opens
    next), its holidays ahead, who to reach and what it receives."""

    office: Office
    now: datetime
    local_now: datetime  # ``now`` on the office's own wall clock
    open_now: bool
    closes_at: datetime | None  # while open: its closing today
    opens_at: datetime | None  # while closed: its next opening
    holiday_today: bool
    holidays: tuple[date, ...]  # public holidays from today through HOLIDAY_HORIZON_DAYS ahead
    on_call: tuple[OnCall, ...]
    instruments: tuple[Instrument, ...]

    @property
    def contacts(self) -> tuple[Contact, ...]:
        return self.office.contacts


def at_desk(directory: Directory, office: Office, now: datetime) -> AtDesk:
    """The facts ``who`` shows for ``office`` at ``now``."""
    calendar = office.calendar
    local = calendar.local(now)
    open_now = calendar.is_open(now)
    return AtDesk(
        office=office, now=now, local_now=local, open_now=open_now,
        closes_at=calendar.closing(local.date()) if open_now else None,
        opens_at=None if open_now else calendar.next_open(now),
        holiday_today=calendar.is_holiday(local.date()),
        holidays=calendar.holidays_within(local.date(), HOLIDAY_HORIZON_DAYS),
        on_call=tuple(OnCall(user, office.contact_for(user)) for user in office.on_call),
        instruments=directory.receivable(office))
