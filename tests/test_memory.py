"""Issue 16 (memory): shared holiday calendars, the malloc arena limit and the trim."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from liaisonbot import memory
from liaisonbot.config import parse


def _settings(offices: list[dict[str, Any]]) -> Any:
    return parse({"database": {"url": "sqlite+aiosqlite:///x.db"}, "offices": offices}, "test")


def _office(slug: str, holidays: Any) -> dict[str, Any]:
    return {"slug": slug, "name": slug.upper(), "timezone": "Europe/Paris",
            "working_hours": "09:00-17:00", "working_days": "Mon-Fri",
            "holidays": holidays, "rooms": [f"console:{slug}"]}


def test_offices_with_the_same_holidays_share_one_calendar() -> None:
    """Before, every office built its own ``holidays`` calendar and day cache: with hundreds of
    offices per country, hundreds of copies of the same dates."""
    settings = _settings([_office(f"fr-{i}", "FR") for i in range(3)]
                         + [_office("nl", ["NL", "2026-12-24"]), _office("nl-2", ["NL", "2026-12-24"]),
                            _office("de", "DE")])
    calendars = {o.slug: o.calendar.is_holiday for o in settings.directory.offices}
    assert calendars["fr-0"] is calendars["fr-1"] is calendars["fr-2"]
    assert calendars["nl"] is calendars["nl-2"]
    assert calendars["de"] is not calendars["fr-0"] and calendars["nl"] is not calendars["fr-0"]
    # and they still answer per their own list
    assert calendars["fr-0"](date(2026, 7, 14)) and not calendars["de"](date(2026, 7, 14))
    assert calendars["nl"](date(2026, 12, 24)) and not calendars["fr-0"](date(2026, 12, 24))
    assert calendars["de"](date(2026, 10, 3)) and not calendars["nl"](date(2026, 10, 3))


def test_an_unknown_holiday_code_is_still_refused_by_name() -> None:
    with pytest.raises(Exception, match="'XX-NOPE' is neither a date"):
        _settings([_office("a", ["FR", "XX-NOPE"])])


def test_arena_limit_and_trim_call_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, tuple[int, ...]]] = []

    class FakeLibc:
        def mallopt(self, *args: int) -> int:
            calls.append(("mallopt", args))
            return 1

        def malloc_trim(self, *args: int) -> int:
            calls.append(("malloc_trim", args))
            return 1

    monkeypatch.setattr(memory, "_libc", FakeLibc)
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert memory.limit_malloc_arenas() and memory.release_free_memory()
    assert calls == [("mallopt", (memory.M_ARENA_MAX, 2)), ("malloc_trim", (0,))]
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")  # the operator's setting wins
    assert not memory.limit_malloc_arenas()
    assert len(calls) == 2


def test_without_glibc_both_do_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_libc", lambda: None)
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert not memory.limit_malloc_arenas() and not memory.release_free_memory()


def test_on_this_machine_the_real_calls_work() -> None:
    """The real glibc answers (this runs on Linux/glibc in CI); a wrong mallopt number or a
    missing symbol would return 0 or raise."""
    if memory._libc() is None:
        pytest.skip("no glibc here")
    assert memory.release_free_memory() in (True, False)
    assert memory._libc().mallopt(memory.M_ARENA_MAX, 8) == 1
