"""Pure domain: business calendars (weekends, holidays, DST), the grammar, the layering."""

from __future__ import annotations

import ast
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from liaisonbot.domain.calendar import BusinessCalendar
from liaisonbot.domain.durations import Duration
from liaisonbot.domain.grammar import CommandError, parse, tokenize

AMS = BusinessCalendar(tz=ZoneInfo("Europe/Amsterdam"), opens=time(9), closes=time(17, 30),
                       is_holiday=lambda d: d in {date(2026, 12, 25), date(2026, 12, 28)})
#: A zone without DST, working Sunday to Thursday.
RIYADH = BusinessCalendar(tz=ZoneInfo("Asia/Riyadh"), opens=time(8), closes=time(15),
                          days=frozenset({6, 0, 1, 2, 3}))
moments = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31),
                       timezones=st.just(UTC))


@given(moments, st.integers(min_value=0, max_value=40))
def test_business_deadline_lands_on_a_business_day_at_closing(start: datetime, n: int) -> None:
    for calendar in (AMS, RIYADH):
        due = calendar.deadline(start, Duration(n, "bd"))
        local = calendar.local(due)
        assert local.time() == calendar.closes
        if n:
            assert calendar.is_business_day(local.date())
            assert calendar.business_days_between(calendar.local(start).date(),
                                                  local.date()) == n


@given(moments)
@settings(max_examples=300)
def test_next_open_is_open_and_never_earlier(moment: datetime) -> None:
    for calendar in (AMS, RIYADH):
        opened = calendar.next_open(moment)
        assert opened >= moment and calendar.is_open(opened)
        assert opened - moment < timedelta(days=10)


def test_dst_spring_and_autumn_keep_wall_clock() -> None:
    # Friday before the last Sunday of March 2027, +1bd → Monday 17:30 CEST (UTC+2).
    due = AMS.deadline(datetime(2027, 3, 26, 10, tzinfo=UTC), Duration(1, "bd"))
    assert due == datetime(2027, 3, 29, 15, 30, tzinfo=UTC)
    # Across the last Sunday of October 2026 → Monday 17:30 CET (UTC+1).
    due = AMS.deadline(datetime(2026, 10, 23, 10, tzinfo=UTC), Duration(1, "bd"))
    assert due == datetime(2026, 10, 26, 16, 30, tzinfo=UTC)
    # Opening on the Monday after the change is 09:00 local in both directions.
    assert AMS.next_open(datetime(2026, 10, 25, 12, tzinfo=UTC)) == \
        datetime(2026, 10, 26, 8, tzinfo=UTC)
    assert AMS.next_open(datetime(2027, 3, 28, 12, tzinfo=UTC)) == \
        datetime(2027, 3, 29, 7, tzinfo=UTC)


def test_holidays_and_weekends_are_skipped() -> None:
    # Thursday 24 Dec 2026 + 2bd: skips Christmas (Fri), the weekend and Mon 28 → Wed 30 Dec.
    due = AMS.deadline(datetime(2026, 12, 24, 10, tzinfo=UTC), Duration(2, "bd"))
    assert AMS.local(due).date() == date(2026, 12, 30)
    # A Sunday-to-Thursday office: Thursday + 1bd is Sunday.
    due = RIYADH.deadline(datetime(2026, 12, 3, 6, tzinfo=UTC), Duration(1, "bd"))
    assert RIYADH.local(due).date() == date(2026, 12, 6)


def test_grammar_options_in_any_order_and_quotes() -> None:
    command = parse('open ICC-01/14-01/18 due:5bd basis:"Rome Statute art. 93(1)(b)" urgent '
                    "to:BA-SPO kind:witness conf:confidential Hearing of “W 17”")
    assert command.to == "ba-spo" and command.urgent and command.kind.value == "witness"  # type: ignore[union-attr]
    assert command.basis == "Rome Statute art. 93(1)(b)"  # type: ignore[union-attr]
    assert command.summary == "Hearing of W 17"  # type: ignore[union-attr]


@given(st.text(max_size=300))
def test_parser_never_crashes(text: str) -> None:
    try:
        parse(text)
    except CommandError as error:
        assert str(error) and "\n" not in str(error)


@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Zs", "Cc"),
                                               blacklist_characters='"“„”'),
                        min_size=1, max_size=12), min_size=1, max_size=8))
def test_tokenizer_round_trips_plain_words(words: list[str]) -> None:
    assert [t.text for t in tokenize(" ".join(words))] == words


FORBIDDEN = ("slack_sdk", "slack_bolt", "nio", "sqlalchemy", "sqlmodel", "apscheduler", "aiohttp",
             "alembic", "asyncpg", "aiosqlite", "holidays", "liaisonbot.store", "liaisonbot.chat")


def test_domain_and_service_import_no_platform_or_sql() -> None:
    root = Path(__file__).resolve().parent.parent / "src" / "liaisonbot"
    offenders = []
    for layer in ("domain", "service"):
        for path in (root / layer).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                offenders += [f"{path.name}: {n}" for n in names
                              if n.split(".")[0] in FORBIDDEN or n.startswith(FORBIDDEN)]
            if layer == "domain":
                offenders += [f"{path.name}: liaisonbot.service" for node in
                              ast.walk(ast.parse(path.read_text()))
                              if isinstance(node, ast.ImportFrom) and
                              (node.module or "").startswith("liaisonbot.service")]
    assert offenders == []
