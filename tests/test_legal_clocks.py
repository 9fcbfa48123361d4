"""Legal clocks (issue 13): instrument profiles, completeness pauses, promised dates, and the
statistics built on them. Console scenarios on the real SQL store with a moving clock.

Since issue 23 the EU instruments (EIO, EAW, freezing order) work only between offices of
Member States bound by them, and their deadlines run from events (receipt, arrest, consent,
decision), not from opening: those scenarios run between DE GBA and NL OM (``EU_OFFICES``)."""

from __future__ import annotations

import asyncio
import json
import re
import tomllib
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from conftest import BASE_CONFIG, EU_OFFICES, MONDAY_10, TestBot, make_settings, start_bot
from liaisonbot.config import ConfigError
from liaisonbot.domain.audit import Entry
from liaisonbot.domain.calendar import BusinessCalendar
from liaisonbot.domain.clocks import pause, paused_business_days, resume
from liaisonbot.domain.model import Kind, Request, Status
from liaisonbot.service.reports import export_case
from liaisonbot.service.stats import percentile, statistics, statistics_text
from liaisonbot.store.db import make_engine
from liaisonbot.store.migrate import upgrade, upgrade_async
from liaisonbot.store.uow import SqlUnitOfWorkFactory

ROOT = Path(__file__).resolve().parent.parent
#: The profiles the example config ships: the tests hold them to their legal clocks.
INSTRUMENTS: dict[str, Any] = tomllib.loads(
    (ROOT / "config" / "liaisonbot.example.toml").read_text())["instruments"]
REQUIRED = {"eio": 'basis:"CCP art. 1" measure:"bank records"',
            "eaw": 'basis:"warrant 12/26" person:"A. B."',
            "freezing": 'basis:"order 3/26" measure:"account 123"',
            "icc": 'basis:"art. 93(1)(l)"', "mla": 'basis:"treaty art. 3"', "informal": ""}


async def _bot(url: str, **overrides: Any) -> TestBot:
    offices = [dict(o) for o in BASE_CONFIG["offices"]] + [dict(o) for o in EU_OFFICES]
    overrides.setdefault("offices", offices)
    return await start_bot(make_settings(url, instruments=INSTRUMENTS, **overrides))


@pytest.fixture
async def bot(sqlite_url: str) -> AsyncIterator[TestBot]:
    started = await _bot(sqlite_url)
    yield started
    await started.core.close()


async def advance_to(bot: TestBot, moment: datetime) -> str:
    start = len(bot.out)
    await bot.console.advance_to(moment)
    return "\n".join(bot.out[start:])


async def _request(bot: TestBot, number: int = 1) -> Request:
    async with bot.core.uow() as uow:
        found = await uow.requests.get(number)
    assert found is not None
    return found


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# ---------------------------------------------------------------------- configuration

def test_example_config_ships_the_eight_instruments_citing_sources() -> None:
    assert set(INSTRUMENTS) == {"eio", "eaw", "freezing", "confiscation", "epoc", "icc", "mla",
                                "informal"}
    assert all(profile["source"] for profile in INSTRUMENTS.values())
    assert "2014/41/EU" in INSTRUMENTS["eio"]["name"]
    assert INSTRUMENTS["eio"]["ack_cite"] == "art. 16(1)"
    # provisional measures: their own 24 h clock from receipt, urgent requests only (art. 32(2))
    provisional = INSTRUMENTS["eio"]["deadlines"]["provisional"]
    assert (provisional["within"], provisional["from"], provisional["cite"],
            provisional["urgent_only"]) == ("24h", "received", "art. 32(2)", True)
    assert INSTRUMENTS["eio"]["deadlines"]["decision"]["cite"] == "art. 12(3)"
    assert "arts. 17 and 23" in INSTRUMENTS["eaw"]["source"]
    assert "art. 97" in INSTRUMENTS["icc"]["source"]
    demo = tomllib.loads((ROOT / "config" / "liaisonbot.toml").read_text())
    assert demo["instruments"] == INSTRUMENTS


def test_check_config_names_every_instrument_problem(sqlite_url: str) -> None:
    bad = {"eio": {"name": "EIO", "ack_within": "7 days", "requires": ["basis", "dna"],
                   "colour": "blue"},
           "Bad Name": {"name": "x", "source": "y"}}
    with pytest.raises(ConfigError) as caught:
        make_settings(sqlite_url, instruments=bad)
    problems = "\n".join(caught.value.problems)
    assert "instruments.eio.source: is required" in problems
    assert "instruments.eio.ack_within: '7 days' is not a duration" in problems
    assert "instruments.eio.requires: a list of fields from: basis, person, measure" in problems
    assert "instruments.eio.colour: unknown key" in problems
    assert "instruments.Bad Name: needs a lower-case name" in problems


# ---------------------------------------------------------------------- opening via an instrument

async def test_incomplete_open_is_refused_naming_the_fields(bot: TestBot) -> None:
    out = await bot.exec("!liaison open C-1 to:nl-om via:eio Bank records", user="dora",
                         room="de")
    assert out == ('[console:de] A request via EIO must carry basis:"…" and measure:"…" '
                   "(Directive 2014/41/EU, arts. 12, 16 and 32); add it and open again.")
    out = await bot.exec('!liaison open C-1 to:nl-om via:eaw basis:"w" Surrender of X',
                         user="dora", room="de")
    assert 'must carry person:"…"' in out
    out = await bot.exec("!liaison open C-1 to:ba-spo via:eoi X", user="alice", room="icc")
    assert out == ("[console:icc] There is no instrument 'eoi'. Instruments: confiscation, "
                   "eaw, eio, epoc, freezing, icc, informal, mla.")
    assert "does not exist" in await bot.exec("!liaison show R-1")  # nothing was stored


async def test_via_without_any_instrument_configured(testbot: TestBot) -> None:
    out = await testbot.exec("!liaison open C-1 to:ba-spo via:eio X", user="alice", room="icc")
    assert "No instruments are configured here" in out


#: Instrument, what else is typed on ``open``, expected due and ack due (UTC) for a request
#: opened Mon 30 Nov 2026 10:00 CET: the EU instruments from DE GBA to NL OM (Amsterdam, closes
#: 17:00 CET), the others from the ICC to BA SPO (Sarajevo, closes 16:00 CET). A deadline in
#: days ends with the local day (23:59:59 CET); one in hours runs from the moment, a date
#: given alone meaning the start of that day. While the event a deadline runs from is unknown
#: the policy's per-kind default (information: 10bd; urgent: 2bd) is what is chased.
RECEIVED = "received:2026-11-30"
ACK_7D_NL = _utc(2026, 12, 7, 16)  # EIO art. 16(1): 7 d; others: policy 5bd (Mon 7 Dec)
CLOCKS = [
    ("eio", RECEIVED, _utc(2026, 12, 30, 22, 59, 59), ACK_7D_NL),  # art. 12(3): 30 d
    ("eio", "", _utc(2026, 12, 14, 16), ACK_7D_NL),                  # receipt unknown: 10bd
    ("eio", f"urgent {RECEIVED}", _utc(2026, 11, 30, 23), _utc(2026, 11, 30, 23)),  # 32(2) 24 h
    ("eaw", "arrest:2026-11-30", _utc(2027, 1, 29, 22, 59, 59), ACK_7D_NL),  # art. 17(3): 60 d
    ("eaw", "consent:2026-11-30", _utc(2026, 12, 10, 22, 59, 59), ACK_7D_NL),  # 17(2): 10 d
    ("freezing", RECEIVED, _utc(2026, 12, 14, 16), ACK_7D_NL),  # art. 9(1): no fixed clock
    ("freezing", f"urgent {RECEIVED}", _utc(2026, 12, 1, 23), _utc(2026, 12, 1, 23)),  # 9(3)
    ("icc", "", _utc(2026, 12, 14, 15), _utc(2026, 12, 7, 15)),  # no legal deadline: 10bd
    ("icc", "urgent", _utc(2026, 12, 2, 15), _utc(2026, 12, 2, 15)),  # 2bd; ack not after it
    ("mla", "", _utc(2026, 12, 14, 15), _utc(2026, 12, 7, 15)),
    ("informal", "", _utc(2026, 12, 14, 15), _utc(2026, 12, 7, 15)),
]
EU = {"eio", "eaw", "freezing"}


@pytest.mark.parametrize(("via", "extra", "due", "ack_due"), CLOCKS)
async def test_each_instrument_sets_its_clocks(bot: TestBot, via: str, extra: str,
                                               due: datetime, ack_due: datetime) -> None:
    to, room, user = ("nl-om", "de", "dora") if via in EU else ("ba-spo", "icc", "alice")
    out = await bot.exec(f"!liaison open C-1 to:{to} via:{via} {REQUIRED[via]} {extra} Help",
                         user=user, room=room)
    assert "R-1 opened" in out, out
    request = await _request(bot)
    assert request.instrument == via and request.due_at == due
    assert request.ack_due_at == ack_due
    assert request.ack_due_at <= request.due_at  # never acknowledged after the answer is due


async def test_card_and_show_name_the_instrument_and_its_clocks(bot: TestBot) -> None:
    out = await bot.exec(f"!liaison open C-1 to:nl-om via:eio {REQUIRED['eio']} Records",
                         user="dora", room="de")
    assert "R-1 · C-1 · information · EIO" in out
    assert ("EIO · ack within 7 d (art. 16(1)) · decision 30 d after the receipt (art. 12(3)) "
            "· execution 90 d after the decision (art. 12(4))") in out  # receipt not known yet
    assert "Measure: bank records" in out
    await bot.exec("!liaison ack R-1 received:2026-11-30", user="niels", room="nl")
    shown = await bot.exec("!liaison show R-1", user="niels", room="nl")
    assert ("EIO · ack within 7 d (art. 16(1)) · decision by Wed 2026-12-30 (art. 12(3)) · "
            "execution 90 d after the decision (art. 12(4))") in shown, shown
    assert "via: eio" in shown
    await bot.exec("!liaison open C-2 to:ba-spo via:icc urgent basis:x Witness", user="alice",
                   room="icc")
    shown = await bot.exec("!liaison show R-2", user="alice", room="icc")
    assert "ICC Part 9 · no legal deadline (Rome Statute arts. 86-102; art. 87(3)" in shown


async def test_urgent_freezing_order_is_chased_after_48_hours(bot: TestBot) -> None:
    """Reg. 2018/1805 art. 9(3)-(4): in an urgent case 48 h from receipt to decide, then 48 h
    from the decision to carry out the freezing."""
    await bot.exec(f"!liaison open C-1 to:nl-om via:freezing {REQUIRED['freezing']} urgent "
                   "Freeze", user="dora", room="de")
    await bot.exec("!liaison ack R-1 received:2026-11-30T10:00", user="niels", room="nl")
    assert (await _request(bot)).due_at == _utc(2026, 12, 2, 9)  # Wed 10:00 CET
    before = await advance_to(bot, _utc(2026, 12, 2, 8, 59))
    assert "Reminder" not in before
    after = await advance_to(bot, _utc(2026, 12, 2, 9, 30))
    assert after.count("[console:nl] Reminder 1: R-1") == 1
    await bot.exec("!liaison record R-1 decision:2026-12-02T10:15 recognised", user="niels",
                   room="nl")
    shown = await bot.exec("!liaison show R-1", user="dora", room="de")
    assert "execution by Fri 2026-12-04 10:15 CET (art. 9(4))" in shown, shown


async def test_instrument_ack_clock_overrides_the_policy(sqlite_url: str) -> None:
    bot = await _bot(sqlite_url, policy={"ack_within": "2bd"})
    try:
        await bot.exec(f"!liaison open C-1 to:nl-om via:eio {REQUIRED['eio']} Records",
                       user="dora", room="de")
        await bot.exec("!liaison open C-2 to:nl-om Records", user="dora", room="de")
        out = await advance_to(bot, _utc(2026, 12, 3, 12))  # policy 2bd: due Wed 2 Dec
        assert "R-2 (C-2" in out and "R-1 (C-1" not in out
        out = await advance_to(bot, _utc(2026, 12, 8, 12))  # EIO 7 d: due Mon 7 Dec
        assert "Reminder: R-1 (C-1, information from DE GBA) has not been acknowledged" in out
    finally:
        await bot.core.close()


# ---------------------------------------------------------------------- completeness

async def test_incomplete_pauses_chases_the_requesting_office_and_complete_resumes(
        any_url: str) -> None:
    bot = await _bot(any_url)
    try:
        # An instrument without a scope (issue 23: the EIO no longer runs from the ICC to
        # BA); what is tested is the completeness pause of a due date given with due:.
        await bot.exec(f"!liaison open C-1 to:ba-spo via:mla due:2026-12-02 {REQUIRED['mla']} "
                       "Records", user="alice", room="icc")
        await bot.exec("!liaison ack R-1", user="bojan", room="ba")
        refused = await bot.exec("!liaison incomplete R-1 x", user="alice", room="icc")
        assert "Only the requested office" in refused
        assert "incomplete needs what is missing" in await bot.exec(
            "!liaison incomplete R-1", user="bojan", room="ba")
        bot.clock.set(_utc(2026, 12, 1, 9))
        out = await bot.exec("!liaison incomplete R-1 the account number", user="bojan",
                             room="ba")
        assert "[console:ba] R-1 is incomplete now." in out
        assert ("[console:icc] [R-1 thread] R-1 marked incomplete by console:bojan (ba-spo) · "
                "clocks stopped until ICC OTP completes it:\n    the account number") in out
        overdue = await bot.exec("!liaison overdue", user="bojan", room="ba")
        assert overdue.startswith("[console:ba] Overdue for BA SPO: 0 requests; 1 incomplete "
                                  "(clocks stopped, waiting for completion).")
        assert "R-1 · information · MLA · icc-otp → ba-spo · incomplete · due" in overdue
        assert "waiting for ICC OTP" in overdue

        waiting = await advance_to(bot, _utc(2026, 12, 11, 12))
        assert "[console:ba] Reminder" not in waiting  # the requested office is not chased
        chases = re.findall(r"\[console:icc\] Reminder (\d+): R-1 .*", waiting)
        assert chases == ["1", "2"], waiting  # +2bd and +5bd, in ICC hours
        assert "is waiting for: the account number. Please complete R-1 TEXT." in waiting
        assert "1 incomplete (clocks stopped, waiting for completion)." in waiting  # digests

        out = await bot.exec("!liaison complete R-1 account 123", user="alice", room="icc")
        assert "R-1: clocks resume, due now Mon 2026-12-14 16:00 CET" in out
        assert "(moved by 8 business days)" in out
        request = await _request(bot)
        assert request.status is Status.ACKNOWLEDGED
        assert request.due_at == _utc(2026, 12, 14, 15)  # Wed 2 Dec + 8 business days

        quiet = await advance_to(bot, _utc(2026, 12, 14, 14))
        assert "[console:ba] Reminder" not in quiet and "[console:icc] Reminder" not in quiet
        resumed = await advance_to(bot, _utc(2026, 12, 15, 12))
        assert resumed.count("[console:ba] Reminder 1: R-1") == 1
        async with bot.core.uow() as uow:
            actions = [e.action for e in await uow.history.for_request(1)]
        assert "marked incomplete" in actions and "completed" in actions
    finally:
        await bot.core.close()


async def test_withdraw_while_incomplete_and_status_rules(bot: TestBot) -> None:
    await bot.exec("!liaison open C-1 to:ba-spo Records", user="alice", room="icc")
    await bot.exec("!liaison incomplete R-1 the dates", user="bojan", room="ba")
    assert "cannot be answered now" in await bot.exec("!liaison answer R-1 x", user="bojan",
                                                      room="ba")
    assert "cannot be completed now" not in await bot.exec(
        "!liaison complete R-1 1-3 May", user="alice", room="icc")
    assert (await _request(bot)).status is Status.OPEN  # back where it was
    assert "cannot be completed now" in await bot.exec("!liaison complete R-1 again",
                                                       user="alice", room="icc")
    await bot.exec("!liaison incomplete R-1 more", user="bojan", room="ba")
    assert "R-1 is withdrawn now." in await bot.exec("!liaison withdraw R-1 moot",
                                                     user="alice", room="icc")
    assert "Reminder" not in await advance_to(bot, _utc(2026, 12, 31, 12))


async def test_no_ack_nudge_while_incomplete(bot: TestBot) -> None:
    await bot.exec("!liaison open C-1 to:ba-spo Records", user="alice", room="icc")
    await bot.exec("!liaison incomplete R-1 the dates", user="bojan", room="ba")
    out = await advance_to(bot, _utc(2026, 12, 9, 12))  # the ack was due Mon 7 Dec
    assert "has not been acknowledged" not in out and "[console:ba] Reminder" not in out
    await bot.exec("!liaison complete R-1 1-3 May", user="alice", room="icc")
    request = await _request(bot)
    assert request.ack_due_at == _utc(2026, 12, 16, 15)  # Mon 7 Dec + 7 business days
    out = await advance_to(bot, _utc(2026, 12, 17, 12))
    assert out.count("[console:ba] Reminder: R-1 (C-1, information from ICC OTP) has not "
                     "been acknowledged") == 1


async def test_confidential_incomplete_keeps_what_is_missing_out_of_rooms(bot: TestBot) -> None:
    await bot.exec("!liaison open C-1 to:ba-spo conf:confidential Secret", user="alice",
                   room="icc")
    out = await bot.exec("!liaison incomplete R-1 the witness's address", user="bojan",
                         room="ba")
    rooms = [line for line in out.splitlines() if line.startswith("[console:")]
    assert not any("address" in line for line in rooms)
    assert "[dm:console:alice]" in out
    chase = await advance_to(bot, _utc(2026, 12, 3, 12))
    assert "[console:icc] Reminder 1: R-1" in chase and "address" not in chase


# ---------------------------------------------------------------------- promised dates

async def test_eta_reminder_once_and_a_new_eta_replaces_it(any_url: str) -> None:
    bot = await _bot(any_url)
    try:
        await bot.exec("!liaison open C-1 to:ba-spo due:2026-12-31 Records", user="alice",
                       room="icc")
        await bot.exec("!liaison open C-1 to:ba-spo due:2026-12-31 Other", user="alice", room="icc")
        await bot.exec("!liaison ack R-1 eta:2026-12-03", user="bojan", room="ba")
        await bot.exec("!liaison ack R-2 eta:2026-12-03", user="bojan", room="ba")
        await bot.exec("!liaison answer R-2 here it is", user="bojan", room="ba")
        early = await advance_to(bot, _utc(2026, 12, 4, 6, 59))
        assert "you expected" not in early
        out = await advance_to(bot, _utc(2026, 12, 11, 12))
        reminders = [ln for ln in out.splitlines() if "you expected to answer" in ln]
        assert reminders == ["[console:ba] Reminder: you expected to answer R-1 (C-1, information "
                             "from ICC OTP) by Thu 2026-12-03 16:00 CET (16 hours ago). Please "
                             "answer R-1, or give a new date with ack R-1 eta:DATE."]
        await bot.exec("!liaison ack R-1 eta:2026-12-15 court delay", user="bojan", room="ba")
        out = await advance_to(bot, _utc(2026, 12, 18, 12))
        reminders = [ln for ln in out.splitlines() if "you expected to answer" in ln]
        assert len(reminders) == 1 and "by Tue 2026-12-15" in reminders[0]
        assert "you expected" not in await advance_to(bot, _utc(2026, 12, 23, 12))
    finally:
        await bot.core.close()


# ---------------------------------------------------------------------- pausing never shortens

_ZONES = ["Europe/Sarajevo", "Europe/Amsterdam", "America/New_York", "Asia/Tokyo",
          "Australia/Lord_Howe"]


@settings(max_examples=300, deadline=None)
@given(zone=st.sampled_from(_ZONES),
       days=st.sets(st.integers(0, 6), min_size=1),
       holidays=st.sets(st.dates(date(2026, 1, 1), date(2027, 12, 31)), max_size=20),
       due=st.datetimes(datetime(2026, 1, 1), datetime(2027, 6, 1), timezones=st.just(UTC)),
       since=st.datetimes(datetime(2026, 1, 1), datetime(2027, 6, 1), timezones=st.just(UTC)),
       paused=st.timedeltas(timedelta(0), timedelta(days=90)))
def test_pausing_never_shortens_a_deadline(zone: str, days: set[int], holidays: set[date],
                                           due: datetime, since: datetime,
                                           paused: timedelta) -> None:
    calendar = BusinessCalendar(tz=ZoneInfo(zone), opens=time(8), closes=time(16),
                                days=frozenset(days), is_holiday=holidays.__contains__)
    request = Request(id=1, case="C", kind=Kind.MLA, requesting="a", requested="b", summary="s",
                      status=Status.ACKNOWLEDGED, created_at=since, due_at=due,
                      ack_due_at=due - timedelta(days=1), opened_by="u", eta=due)
    until = since + paused
    pause(request, since, "x")
    moved = resume(request, until, calendar)
    assert moved >= 1 and moved == paused_business_days(calendar, since, until)
    assert request.due_at > due and request.ack_due_at > due - timedelta(days=1)
    assert request.eta is not None and request.eta > due
    assert request.status is Status.ACKNOWLEDGED
    # The business days left after the pause are at least those left when it began.
    local = calendar.local
    left_before = calendar.business_days_between(local(since).date(), local(due).date())
    left_after = calendar.business_days_between(local(until).date(),
                                                local(request.due_at).date())
    assert left_after >= left_before


# ---------------------------------------------------------------------- statistics

T0 = _utc(2026, 11, 2, 9)


def _stat_request(n: int, *, to: str, via: str | None, urgent: bool = False,
                  events: dict[str, float] | None = None) -> Request:
    """A request from DE GBA, answered; ``events`` in hours after T0 (its opening)."""
    return Request(id=n, case="C-1", kind=Kind.MLA, requesting="de-gba", requested=to,
                   summary="s", status=Status.ANSWERED, created_at=T0, updated_at=T0,
                   due_at=T0 + timedelta(days=30), ack_due_at=T0 + timedelta(days=5),
                   opened_by="console:dora", instrument=via, urgent=urgent,
                   events={name: T0 + timedelta(hours=h) for name, h in (events or {}).items()})


def _at(n: int, action: str, hours: float, real: float | None = None) -> Entry:
    """A history entry typed ``hours`` after T0; ``real``: the moment given with ``at:``."""
    detail = {} if real is None else {"at": (T0 + timedelta(hours=real)).isoformat()}
    return Entry(0, n, (T0 + timedelta(hours=hours)).isoformat(), "x", "console", action, detail)


def _directory(url: str) -> Any:
    offices = [dict(o) for o in BASE_CONFIG["offices"]] + [dict(o) for o in EU_OFFICES]
    return make_settings(url, instruments=INSTRUMENTS, offices=offices).directory


def test_percentile_is_nearest_rank() -> None:
    assert percentile([float(v) for v in range(1, 11)], 0.9) == 9.0
    assert percentile([5.0], 0.9) == 5.0
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0


def test_statistics_per_partner_and_instrument_discount_time_incomplete(
        sqlite_url: str) -> None:
    directory = _directory(sqlite_url)
    # Urgent freezing orders (Reg. 2018/1805 art. 9(3)-(4)): 48 h from receipt to decide, 48 h
    # from the decision to freeze (met by the answer). Both received at opening.
    requests = [_stat_request(1, to="nl-om", via="freezing", urgent=True,
                              events={"received": 0, "decision": 20}),
                _stat_request(2, to="nl-om", via="freezing", urgent=True,
                              events={"received": 0, "decision": 10}),
                _stat_request(3, to="ua-pgo", via=None)]
    histories = {
        # acked 2 h; incomplete from 10 h to 34 h; answered at 60 h: 36 h taken; decided at
        # 20 h (≤ 48 h), executed by 60 h (≤ 20 + 48 h) → within the legal time
        1: [_at(1, "acknowledged", 2), _at(1, "marked incomplete", 10), _at(1, "completed", 34),
            _at(1, "answered", 60)],
        # acked 4 h, decided at 10 h, answered at 72 h: after 10 + 48 h → late
        2: [_at(2, "acknowledged", 4), _at(2, "answered", 72)],
        3: [_at(3, "answered", 24)],
    }
    figures = statistics("de-gba", requests, histories, T0 + timedelta(days=10), directory)
    nl, ua = figures["by_office"]
    assert (nl.group, nl.requests, nl.ack_median_hours, nl.ack_p90_hours) == \
        ("nl-om", 2, 3.0, 4.0)
    assert (nl.answer_median_days, nl.answer_p90_days) == (2.2, 3.0)  # 1.5 d and 3 d
    assert (nl.legal_answered, nl.within_legal, nl.within_legal_share) == (2, 1, 0.5)
    assert (nl.incomplete_days, nl.incomplete_requests) == (1.0, 1)
    assert (ua.group, ua.ack_median_hours, ua.legal_answered, ua.within_legal_share) == \
        ("ua-pgo", 24.0, 0, None)
    freezing, none = figures["by_instrument"]
    assert (freezing.group, freezing.requests, freezing.within_legal) == ("freezing", 2, 1)
    assert none.group == "none"
    text_out = statistics_text(figures, directory)
    assert ("- via Freezing: acknowledged in 3.0 h (p90 4.0 h), answered in 2.2 d (p90 3.0 d); "
            "within the legal time 50% (1/2); incomplete 1.0 d over 1 request") in text_out
    assert "- with ua-pgo: acknowledged in 24.0 h" in text_out


def test_statistics_count_the_real_moment_and_no_pause_against_the_law(sqlite_url: str) -> None:
    """An answer sent through the official channel at 50 h and typed at 72 h (``answer R-n …
    at:``) counts at 50 h; the law suspends no deadline while a request is incomplete, so a
    pause does not save a late decision (EIO art. 16(2)(a))."""
    directory = _directory(sqlite_url)
    requests = [_stat_request(1, to="nl-om", via="freezing", urgent=True,
                              events={"received": 0, "decision": 10}),
                _stat_request(2, to="nl-om", via="eio",
                              events={"received": 0, "decision": 32 * 24})]
    histories = {
        1: [_at(1, "acknowledged", 30, real=1), _at(1, "answered", 72, real=50)],
        # decided on day 32 (art. 12(3): 30 d), though incomplete for five days meanwhile
        2: [_at(2, "marked incomplete", 24), _at(2, "completed", 6 * 24),
            _at(2, "answered", 40 * 24)],
    }
    figures = statistics("de-gba", requests, histories, T0 + timedelta(days=60), directory)
    freezing, eio = sorted(figures["by_instrument"], key=lambda row: row.group, reverse=True)
    assert (freezing.group, freezing.ack_median_hours, freezing.within_legal) == \
        ("freezing", 1.0, 1)
    assert freezing.answer_median_days == round(50 / 24, 1)
    assert (eio.group, eio.legal_answered, eio.within_legal) == ("eio", 1, 0)


async def test_weekly_report_and_json_export_carry_the_statistics(sqlite_url: str) -> None:
    bot = await _bot(sqlite_url, reports={"weekly": ["de-gba"]})
    try:
        await bot.exec(f"!liaison open C-1 to:nl-om via:eio {REQUIRED['eio']} Records",
                       user="dora", room="de")
        await bot.exec("!liaison ack R-1 received:2026-11-30", user="niels", room="nl")
        await bot.exec("!liaison incomplete R-1 the account", user="niels", room="nl")
        bot.clock.set(MONDAY_10 + timedelta(days=1))
        await bot.exec("!liaison complete R-1 123", user="dora", room="de")
        # recognised on 1 Dec (art. 12(3): by 30 Dec), executed the same day (art. 12(4))
        await bot.exec("!liaison record R-1 decision:2026-12-01", user="niels", room="nl")
        await bot.exec("!liaison answer R-1 records attached", user="niels", room="nl")
        out = await advance_to(bot, _utc(2026, 12, 7, 12))
        assert "[console:de] Weekly report for DE GBA" in out
        assert "Legal clocks (time spent incomplete not counted):" in out
        assert "- via EIO: acknowledged in 0.0 h (p90 0.0 h), answered in 0.0 d (p90 0.0 d); " \
               "within the legal time 100% (1/1); incomplete 1.0 d over 1 request" in out
        exported = json.loads(await export_case(bot.core.uow, "C-1", fmt="json", office=None,
                                                directory=bot.core.settings.directory,
                                                now=bot.clock.now()))
        row = exported["requests"][0]
        assert (row["instrument"], row["within_legal_time"], row["incomplete_days"]) == \
            ("eio", True, 1.0)
        by_instrument = exported["statistics"]["by_instrument"]
        assert by_instrument[0]["group"] == "eio"
        assert by_instrument[0]["within_legal_share"] == 1.0
        assert exported["statistics"]["by_office"][0]["group"] == "nl-om"
    finally:
        await bot.core.close()


# ---------------------------------------------------------------------- migration

async def test_an_existing_database_upgrades_to_0002(any_url: str) -> None:
    await asyncio.to_thread(upgrade, any_url, "0001")
    engine = make_engine(any_url)
    async with engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO request (case_ref, kind, requesting, requested, summary, basis, urgent,"
            " confidentiality, status, opened_by, created_at, updated_at, due_at, ack_due_at,"
            " ack_nudges_sent, answer_nudges_sent, version) VALUES ('C-1', 'mla', 'icc-otp',"
            " 'ba-spo', 'old', '', false, 'restricted', 'open', 'console:alice', :t, :t, :t,"
            " :t, 0, 0, 1)"), {"t": MONDAY_10.replace(tzinfo=None)})  # naive UTC, as stored
    await upgrade_async(any_url)
    async with SqlUnitOfWorkFactory(engine)() as uow:
        old = await uow.requests.get(1)
    await engine.dispose()
    assert old is not None and old.summary == "old"
    assert (old.instrument, old.person, old.measure, old.paused_at, old.paused_from) == \
        (None, "", "", None, None)
    assert (old.incomplete_nudges_sent, old.eta_reminded) == (0, False)


def test_check_config_command_exits_1_naming_the_instrument(tmp_path: Path) -> None:
    import subprocess
    import sys

    example = (ROOT / "config" / "liaisonbot.example.toml").read_text()
    broken = example.replace('requires = ["basis", "person"]', 'requires = ["basis", "dna"]')
    config = tmp_path / "broken.toml"
    config.write_text(broken)
    done = subprocess.run([sys.executable, "-m", "liaisonbot.cli", "check-config", "--config",
                           str(config)], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert done.returncode == 1
    assert "instruments.eaw.requires: a list of fields from: basis, person, measure" in \
        done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_the_contracts_profile_form_is_sound(sqlite_url: str) -> None:
    """CONTRACT.md's example profile has no ``source`` key: its name cites the source in
    brackets, which then counts as the source."""
    contract = {"eio": {"name": "European Investigation Order (Directive 2014/41/EU)",
                        "ack_within": "7d", "due": "120d", "urgent": "1d",
                        "requires": ["basis"]}}
    settings = make_settings(sqlite_url, instruments=contract)
    assert settings.directory.instruments["eio"].source == "Directive 2014/41/EU"
