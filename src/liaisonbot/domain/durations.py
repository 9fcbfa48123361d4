"""Durations as officers and the policy write them: ``90m``, ``6h``, ``3d``, ``5bd``, ``2w``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

_DURATION = re.compile(r"^(?P<n>[0-9]{1,5})(?P<unit>m|h|d|bd|w)$")
CALENDAR_UNITS = ("d", "bd", "w")


@dataclass(frozen=True)
class Duration:
    """A count of minutes, hours, calendar days, business days or weeks."""

    amount: int
    unit: str

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"

    @property
    def is_business(self) -> bool:
        return self.unit == "bd"

    def as_timedelta(self) -> timedelta:
        """Exact length, for every unit but business days (which need a calendar)."""
        if self.unit == "bd":
            raise ValueError("business days need a calendar")
        per = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1),
               "w": timedelta(weeks=1)}
        return per[self.unit] * self.amount

    def calendar_days(self) -> int:
        """Calendar days for ``d``/``w`` durations."""
        return self.amount * (7 if self.unit == "w" else 1)


def parse_duration(text: str, *, units: tuple[str, ...] = ("m", "h", "d", "bd", "w")) -> Duration:
    """Parse ``<n><unit>``; raises ValueError naming the accepted units."""
    match = _DURATION.match(text.strip().lower())
    if not match or match.group("unit") not in units:
        raise ValueError(f"{text!r} is not a duration like " + ", ".join(f"3{u}" for u in units))
    return Duration(int(match.group("n")), match.group("unit"))
