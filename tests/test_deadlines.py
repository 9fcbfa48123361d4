"""Deadlines from events (issue 23): the EIO and EAW worked examples as console scenarios on
both databases, extensions within the law's limits, Annex B on the ack, real moments, the EU
scope, and the arithmetic's two invariants (Hypothesis)."""

from __future__ import annotations

import copy
import tomllib
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import BASE_CONFIG, EU_OFFICES, TestBot, make_settings, start_bot
from liaisonbot.config import ConfigError
from liaisonbot.domain.calendar import BusinessCalendar
from liaisonbot.domain.deadlines import after, clocks
from liaisonbot.domain.durations import Duration

ROOT = Path(__file__).resolve().parent.parent
INSTRUMENTS: dict[str, Any] = tomllib.loads(
    (ROOT / "config" / "liaisonbot.example.toml").read_text())["instruments"]
EIO = 'via:eio basis:"StPO 161" measure:"bank records"'
EAW = 'via:eaw basis:"warrant 12/26" person:"Ivan K."'


async def _bot(url: str, now: datetime) -> TestBot:
    offices = copy.deepcopy(BASE_CONFIG["offices"]) + copy.deepcopy(EU_OFFICES)
    return await start_bot(make_settings(url, instruments=INSTRUMENTS, offices=offices), now)


@pytest.fixture
async def dec1(any_url: str) -> AsyncIterator[TestBot]:
    bot = await _bot(any_url, datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    yield bot
    await bot.core.close()


async def at(bot: TestBot, moment: datetime) -> None:
    await bot.console.advance_to(moment)


async def test_eio_received_on_ack_then_decision_then_execution(dec1: TestBot) -> None:
    bot = dec1
    out = await bot.exec(f"!liaison open OP-1 to:nl-om {EIO} Bank records of X", user="dora",
                         room="de")
    assert "decision 30 d after the receipt (art. 12(3))" in out, out
    assert "execution 90 d after the decision (art. 12(4))" in out
    await at(bot, datetime(2026, 12, 4, 9, 0, tzinfo=UTC))
    out = await bot.exec('!liaison ack R-1 received:2026-12-03 ref:"3 ARP 112/26-4" '
                         'contact:"J. de Vries" looking into it', user="niels", room="nl")
    show = await bot.exec("!liaison show R-1", user="niels", room="nl")
    assert "decision by Sat 2027-01-02 (art. 12(3))" in show, show
    assert "execution 90 d after the decision (art. 12(4))" in show
    assert "3 ARP 112/26-4" in show and "J. de Vries" in show and "2026-12-03" in show
    await at(bot, datetime(2026, 12, 21, 9, 0, tzinfo=UTC))
    out = await bot.exec("!liaison record R-1 decision:2026-12-20 recognised", user="niels",
                         room="nl")
    show = await bot.exec("!liaison show R-1", user="dora", room="de")
    assert "execution by Sat 2027-03-20 (art. 12(4))" in show, show
    assert "decision by" not in show.split("History")[0]


async def test_eio_extension_of_the_decision_deadline_capped(dec1: TestBot) -> None:
    bot = dec1
    await bot.exec(f"!liaison open OP-1 to:nl-om {EIO} Bank records", user="dora", room="de")
    await at(bot, datetime(2026, 12, 4, 9, 0, tzinfo=UTC))
    await bot.exec("!liaison ack R-1 received:2026-12-03", user="niels", room="nl")
    out = await bot.exec("!liaison extend R-1 2027-03-02 workload", user="niels", room="nl")
    assert out.count("\n") == 0, out  # one sentence
    assert "may be extended by 30 d at most (art. 12(5))" in out, out
    start = len(bot.out)
    out = await bot.exec("!liaison extend R-1 2027-01-25 awaiting the bank", user="niels",
                         room="nl")
    told = "\n".join(bot.out[start:])
    assert "[console:de]" in told and "art. 12(5)" in told and "awaiting the bank" in told, told
    show = await bot.exec("!liaison show R-1", user="dora", room="de")
    assert "decision by Mon 2027-01-25 (extended from Sat 2027-01-02, art. 12(5))" in show, show
    # the issuing office may agree a later date itself
    out = await bot.exec("!liaison extend R-1 2027-03-02 agreed", user="dora", room="de")
    assert "may be extended" not in out


async def test_eaw_from_arrest_and_from_consent(dec1: TestBot) -> None:
    bot = dec1
    await at(bot, datetime(2026, 12, 7, 9, 0, tzinfo=UTC))
    await bot.exec(f"!liaison open OP-2 to:nl-om {EAW} arrest:2026-12-04 Surrender of Ivan K.",
                   user="dora", room="de")
    show = await bot.exec("!liaison show R-1", user="dora", room="de")
    assert "decision by Tue 2027-02-02 (art. 17(3))" in show, show
    assert "arrest" not in show.split("Summary")[1].split("\n")[0]  # not swallowed
    await at(bot, datetime(2026, 12, 15, 9, 0, tzinfo=UTC))
    await bot.exec(f"!liaison open OP-3 to:nl-om {EAW} consent:2026-12-10 Surrender of M.",
                   user="dora", room="de")
    show = await bot.exec("!liaison show R-2", user="dora", room="de")
    assert "decision after consent by Sun 2026-12-20 (art. 17(2))" in show, show
    # late: the card says what the Framework Decision requires
    await at(bot, datetime(2026, 12, 22, 9, 0, tzinfo=UTC))
    show = await bot.exec("!liaison show R-2", user="dora", room="de")
    assert "Late: inform Eurojust" in show and "art. 17(7)" in show, show


async def test_eio_to_a_non_eu_office_or_ireland_refused(dec1: TestBot) -> None:
    bot = dec1
    out = await bot.exec(f"!liaison open OP-1 to:ua-pgo {EIO} X", user="dora", room="de")
    assert "EIO works only between EU Member States bound by it" in out and "UA PGO" in out
    out = await bot.exec(f"!liaison open OP-1 to:ie-dpp {EIO} X", user="dora", room="de")
    assert "IE DPP is not in one" in out
    out = await bot.exec(f"!liaison open OP-1 to:ie-dpp {EAW} X", user="dora", room="de")
    assert "not in one" not in out  # Ireland is bound by the EAW


async def test_events_in_the_future_refused(dec1: TestBot) -> None:
    bot = dec1
    out = await bot.exec(f"!liaison open OP-1 to:nl-om {EIO} received:2027-01-01 X",
                         user="dora", room="de")
    assert "is after now" in out
    await bot.exec(f"!liaison open OP-1 to:nl-om {EIO} X", user="dora", room="de")
    out = await bot.exec("!liaison record R-1 arrest:2026-11-30", user="niels", room="nl")
    assert "EIO counts no deadline from arrest" in out



@pytest.mark.parametrize("when", ["0001-01-01", "1900-01-01", "0001-01-01T00:00"])
async def test_events_from_long_ago_refused_in_one_sentence(dec1: TestBot, when: str) -> None:
    """A receipt in year 1 has no UTC moment in a zone east of it (it was an internal error):
    an event more than ten years back is refused, saying so."""
    bot = dec1
    await bot.exec(f"!liaison open OP-1 to:nl-om {EIO} X", user="dora", room="de")
    out = await bot.exec(f"!liaison ack R-1 received:{when}", user="niels", room="nl")
    assert "more than 10 years ago" in out and "went wrong" not in out, out
    out = await bot.exec(f"!liaison record R-1 decision:{when}", user="niels", room="nl")
    assert "more than 10 years ago" in out, out


async def test_answer_at_real_moment_counts(dec1: TestBot) -> None:
    bot = dec1
    await bot.exec("!liaison open OP-1 to:nl-om due:2026-12-02 Records", user="dora",
                   room="de")
    await at(bot, datetime(2026, 12, 3, 8, 0, tzinfo=UTC))
    out = await bot.exec("!liaison answer R-1 sent at:2026-12-02T06:10 done", user="niels",
                         room="nl")
    assert "after now" not in out
    show = await bot.exec("!liaison show R-1", user="dora", room="de")
    assert "at: Wed 2026-12-02 06:10" in show, show
    out = await bot.exec("!liaison answer R-1 x at:2030-01-01", user="niels", room="nl")
    assert "after now" in out or "cannot" in out or "answered" in out


def test_check_config_refuses_an_unknown_event(sqlite_url: str) -> None:
    bad = copy.deepcopy(INSTRUMENTS)
    bad["eio"]["deadlines"]["decision"]["from"] = "reception"
    with pytest.raises(ConfigError) as caught:
        make_settings(sqlite_url, instruments=bad)
    assert "instruments.eio.deadlines.decision.from: 'reception' is not an event" in \
        "\n".join(caught.value.problems)
    bad = copy.deepcopy(INSTRUMENTS)
    bad["eio"]["deadlines"]["decision"]["colour"] = "x"
    with pytest.raises(ConfigError) as caught:
        make_settings(sqlite_url, instruments=bad)
    assert "instruments.eio.deadlines.decision.colour: unknown key" in \
        "\n".join(caught.value.problems)


def test_example_ships_the_eight_profiles() -> None:
    assert set(INSTRUMENTS) == {"eio", "eaw", "freezing", "confiscation", "epoc", "icc", "mla",
                                "informal"}
    for profile in INSTRUMENTS.values():
        for deadline in profile.get("deadlines", {}).values():
            assert deadline["cite"].startswith("art.")


# ---------------------------------------------------------------------- invariants

CAL = BusinessCalendar(tz=ZoneInfo("Europe/Berlin"))
SPANS = st.builds(Duration, st.integers(0, 400), st.sampled_from(["h", "d", "bd", "w"]))
MOMENTS = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1),
                       timezones=st.just(UTC))


@given(MOMENTS, SPANS, st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=400)))
def test_never_before_its_event_never_earlier_for_a_later_event(
        event: datetime, span: Duration, later: timedelta) -> None:
    first = after(CAL, event, span)
    assert first >= event
    assert after(CAL, event + later, span) >= first


@given(MOMENTS, st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=100)))
def test_recording_an_event_later_never_moves_a_deadline_earlier(
        event: datetime, later: timedelta) -> None:
    from liaisonbot.config import _deadlines, _Problems
    problems = _Problems()
    deadlines = _deadlines(INSTRUMENTS["eio"]["deadlines"], "eio", problems)
    one = clocks(deadlines, {"received": event, "decision": event}, {}, CAL, urgent=True)
    two = clocks(deadlines, {"received": event + later, "decision": event + later}, {}, CAL,
                 urgent=True)
    for a, b in zip(one, two, strict=True):
        assert a.legal is not None and b.legal is not None and b.legal >= a.legal >= event


def test_worked_dates() -> None:
    start = CAL.at(date(2026, 12, 3), datetime.min.time())
    assert CAL.local(after(CAL, start, Duration(30, "d"))).date() == date(2027, 1, 2)
    start = CAL.at(date(2026, 12, 20), datetime.min.time())
    assert CAL.local(after(CAL, start, Duration(90, "d"))).date() == date(2027, 3, 20)
    assert CAL.local(after(CAL, CAL.at(date(2026, 12, 4), datetime.min.time()),
                           Duration(60, "d"))).date() == date(2027, 2, 2)


async def test_who_lists_only_the_instruments_the_office_can_receive(dec1: TestBot) -> None:
    """``who`` agrees with ``open``: an EU instrument only for an office of a Member State
    bound by it (the EIO not for Ireland, the EAW for Ireland too, neither for Bosnia)."""
    bot = dec1

    def receives(out: str) -> list[str]:
        line = next(ln for ln in out.splitlines() if "Instruments it receives" in ln)
        return [item.split(" (")[0] for item in line.split("(via:): ")[1].split(", ")]

    ba = receives(await bot.exec("!liaison who ba-spo", user="dora", room="de"))
    assert "eio" not in ba and "eaw" not in ba and "icc" in ba and "mla" in ba, ba
    nl = receives(await bot.exec("!liaison who nl-om", user="dora", room="de"))
    assert {"eio", "eaw", "freezing", "confiscation", "epoc", "icc"} <= set(nl), nl
    ie = receives(await bot.exec("!liaison who ie-dpp", user="dora", room="de"))
    assert "eaw" in ie and "epoc" in ie and "eio" not in ie and "freezing" not in ie, ie


FREEZING = 'via:freezing basis:"§ 111b StPO" measure:"account NL91 ABNA 0417 1643 00"'


async def test_urgent_freezing_opened_friday_evening_chased_on_sunday(any_url: str) -> None:
    """Reg. 2018/1805 art. 9(3): 48 hours to decide from receipt, chased around the clock
    (Sunday included) in the office's room and to its on-call contacts by direct message;
    an ordinary request opened beside it waits for Monday's opening."""
    offices = copy.deepcopy(BASE_CONFIG["offices"]) + copy.deepcopy(EU_OFFICES)
    nl = next(o for o in offices if o["slug"] == "nl-om")
    nl["on_call"] = ["console:duty-nl"]
    friday = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)  # 19:00 in Amsterdam
    bot = await start_bot(make_settings(any_url, instruments=INSTRUMENTS, offices=offices),
                          friday)
    try:
        await bot.exec(f"!liaison open OP-9 to:nl-om {FREEZING} urgent received:2026-12-04T19:00 "
                       "Freeze the account", user="dora", room="de")
        card = "\n".join(bot.out)
        # 48 h to decide, 48 h more to execute (art. 9(3)-(4)); the ack never after the answer
        assert "ack by Sun 2026-12-06 19:00 CET (never after the answer) · decision by Sun " \
               "2026-12-06 19:00 CET (art. 9(3)) · execution 48 h after the decision " \
               "(art. 9(4))" in card, card
        await bot.exec("!liaison open OP-9 to:nl-om due:1d Bank statements", user="dora",
                       room="de")
        start = len(bot.out)
        await at(bot, datetime(2026, 12, 6, 18, 30, tzinfo=UTC))  # Sunday 19:30 local
        sunday = "\n".join(bot.out[start:])
        assert "[console:nl] Reminder 1: R-1" in sunday, sunday
        assert "emergency deadline (art. 9(3))" in sunday
        assert "[dm:console:duty-nl] Reminder 1: R-1" in sunday, sunday
        assert "R-2" not in sunday  # office hours only: Monday
        start = len(bot.out)
        await at(bot, datetime(2026, 12, 6, 19, 30, tzinfo=UTC))  # an hour later: the next one
        assert "Reminder 2: R-1 " in "\n".join(bot.out[start:]), bot.out[start:]
        assert "1 hour late" in "\n".join(bot.out[start:])
        start = len(bot.out)
        await at(bot, datetime(2026, 12, 7, 9, 0, tzinfo=UTC))  # Monday 10:00 local
        assert any("Reminder 1: R-2" in line for line in bot.out[start:]), bot.out[start:]
    finally:
        await bot.core.close()


async def test_incomplete_eio_pauses_only_the_chasing(dec1: TestBot) -> None:
    """Directive 2014/41/EU suspends no deadline (art. 16(2)(a) only obliges the executing
    authority to inform): `incomplete` stops the reminders, the decision date stays put."""
    bot = dec1
    await bot.exec(f"!liaison open OP-1 to:nl-om {EIO} Bank records", user="dora", room="de")
    await at(bot, datetime(2026, 12, 4, 9, 0, tzinfo=UTC))
    await bot.exec("!liaison ack R-1 received:2026-12-03", user="niels", room="nl")
    out = await bot.exec("!liaison incomplete R-1 Annex A section C", user="niels", room="nl")
    told = "\n".join(bot.out[-6:])
    assert "reminders paused until DE GBA completes it; the legal deadlines run on" in told, \
        (out, told)
    assert "clocks stopped" not in told
    await at(bot, datetime(2026, 12, 11, 9, 0, tzinfo=UTC))
    start = len(bot.out)
    await bot.exec("!liaison complete R-1 here it is", user="dora", room="de")
    told = "\n".join(bot.out[start:])
    assert "reminders resume; the legal deadlines did not move, due Sat 2027-01-02" in told, told
    show = await bot.exec("!liaison show R-1", user="dora", room="de")
    assert "decision by Sat 2027-01-02 (art. 12(3))" in show, show
    assert "due Sat 2027-01-02 23:59" in show, show


def test_a_deadline_the_instrument_stops_moves_by_the_time_spent_incomplete() -> None:
    """Only a deadline with ``pause_cite`` moves; hours by the exact time, days by the
    calendar days between the local dates (wall time kept across a DST change)."""
    from liaisonbot.domain.deadlines import Deadline, paused
    cal = BusinessCalendar(ZoneInfo("Europe/Amsterdam"))
    received = datetime(2026, 10, 20, 8, 0, tzinfo=UTC)
    deadlines = (Deadline("decision", Duration(30, "d"), "received", "art. 1",
                          pause_cite="art. 2"),
                 Deadline("urgent", Duration(8, "h"), "received", "art. 3", pause_cite="art. 4"),
                 Deadline("execution", Duration(30, "d"), "received", "art. 5"))
    found = clocks(deadlines, {"received": received}, {}, cal, urgent=True)
    since, until = datetime(2026, 10, 21, 9, 0, tzinfo=UTC), datetime(2026, 10, 31, 9, 0, tzinfo=UTC)
    moved = paused(found, since, until, cal)
    assert set(moved) == {"decision"}  # the 8 h one fell before the pause; execution runs on
    assert cal.local(moved["decision"]).date() == date(2026, 11, 29)
    assert cal.local(moved["decision"]).time() == cal.local(found[0].legal).time()  # type: ignore[arg-type]
    early = paused(found, received, received + timedelta(hours=3), cal)
    assert early["urgent"] == received + timedelta(hours=11)


async def test_annex_b_reaches_every_export_format(dec1: TestBot) -> None:
    import csv
    import io
    import json

    from liaisonbot.service.reports import export_case
    bot = dec1
    await bot.exec(f"!liaison open OP-1 to:nl-om {EIO} Bank records", user="dora", room="de")
    await at(bot, datetime(2026, 12, 4, 9, 0, tzinfo=UTC))
    await bot.exec('!liaison ack R-1 received:2026-12-03 ref:"3 ARP 112/26-4" '
                   'contact:"J. de Vries, +31 70 000"', user="niels", room="nl")
    row = json.loads(await export_case(bot.core.uow, "OP-1", fmt="json",
                                       office="de-gba"))["requests"][0]
    assert (row["their_ref"], row["their_contact"]) == ("3 ARP 112/26-4",
                                                         "J. de Vries, +31 70 000")
    assert row["received_at"].startswith("2026-12-02T23:00")  # 3 Dec 00:00 in Amsterdam
    cells = next(csv.DictReader(io.StringIO(
        await export_case(bot.core.uow, "OP-1", fmt="csv", office="nl-om"))))
    assert cells["their_ref"] == "3 ARP 112/26-4"
    md = await export_case(bot.core.uow, "OP-1", fmt="md", office="de-gba")
    assert "| R-1 | 2026-12-02T23:00 | 3 ARP 112/26-4 | J. de Vries, +31 70 000 |" in md, md


async def test_eio_execution_time_does_not_run_while_postponed(dec1: TestBot) -> None:
    """Directive 2014/41/EU art. 12(4): the 90 days to execute run "unless grounds for
    postponement under Article 15 exist": a 10-day postponement moves the execution date by
    10 days; the thread says which deadline waits and why."""
    bot = dec1
    await bot.exec(f"!liaison open OP-1 to:nl-om {EIO} Bank records", user="dora", room="de")
    await at(bot, datetime(2026, 12, 4, 9, 0, tzinfo=UTC))
    await bot.exec("!liaison ack R-1 received:2026-12-03", user="niels", room="nl")
    await at(bot, datetime(2026, 12, 21, 9, 0, tzinfo=UTC))
    await bot.exec("!liaison record R-1 decision:2026-12-20 recognised", user="niels", room="nl")
    start = len(bot.out)
    await bot.exec("!liaison postpone R-1 2027-01-10 it would prejudice our investigation",
                   user="niels", room="nl")
    told = "\n".join(bot.out[start:])
    assert "the execution time does not run while postponed (art. 12(4))" in told, told
    await at(bot, datetime(2026, 12, 31, 9, 0, tzinfo=UTC))
    await bot.exec("!liaison resume R-1 investigation closed", user="niels", room="nl")
    show = await bot.exec("!liaison show R-1", user="dora", room="de")
    # 20 Mar 2027 + the 10 days it was postponed (21 → 31 Dec)
    assert "execution by Tue 2027-03-30" in show, show
