"""Dates as a reader sees them: in their office's time zone, with a relative hint."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo


def relative(moment: datetime, now: datetime) -> str:
    seconds = (moment - now).total_seconds()
    if abs(seconds) < 60:
        return "now"
    days = abs(seconds) / 86400
    if days >= 1.5:
        span = f"{round(days)} days"
    elif abs(seconds) >= 5400:
        span = f"{round(abs(seconds) / 3600)} hours"
    else:
        span = f"{round(abs(seconds) / 60)} minutes"
    return f"in {span}" if seconds >= 0 else f"{span} ago"


def local_time(moment: datetime, tz: str) -> str:
    local = moment.astimezone(ZoneInfo(tz))
    return local.strftime("%a %Y-%m-%d %H:%M ") + (local.tzname() or tz)


def when(moment: datetime, tz: str, now: datetime) -> str:
    """``Wed 2026-12-30 17:30 CET (in 5 days)``."""
    return f"{local_time(moment, tz)} ({relative(moment, now)})"
