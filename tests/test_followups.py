"""Follow-ups: nudges in the requested office's hours, escalation, digests, snooze, once only."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

from conftest import TestBot, make_settings, start_bot
from liaisonbot.service.ports import ManualClock

#: Wednesday 2 December 2026, 16:00 in Sarajevo: the due moment of "due:2026-12-02".
DUE = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)


async def advance_to(bot: TestBot, moment: datetime) -> str:
    start = len(bot.out)
    await bot.console.advance_to(moment)
    return "\n".join(bot.out[start:])


async def open_due_wednesday(bot: TestBot) -> None:
    await bot.exec("!liaison open C-1 to:ba-spo due:2026-12-02 Records", user="alice", room="icc")
    await bot.exec("!liaison ack R-1", user="bojan", room="ba")


async def test_nudge_waits_for_opening_hours(testbot: TestBot) -> None:
    await open_due_wednesday(testbot)
    night = await advance_to(testbot, datetime(2026, 12, 3, 5, 0, tzinfo=UTC))  # 06:00 local
    assert "Reminder" not in night
    morning = await advance_to(testbot, datetime(2026, 12, 3, 7, 30, tzinfo=UTC))
    nudges = [ln for ln in morning.splitlines() if "Reminder 1: R-1" in ln]
    assert len(nudges) == 1 and nudges[0].startswith("[console:ba]")
    assert "[console:icc] [R-1 thread] Reminder 1 sent to BA SPO for R-1." in morning


async def test_weekend_nudge_goes_out_monday(testbot: TestBot) -> None:
    await testbot.exec("!liaison open C-1 to:ba-spo due:2026-12-04 Records", user="alice",
                       room="icc")
    await testbot.exec("!liaison ack R-1", user="bojan", room="ba")
    weekend = await advance_to(testbot, datetime(2026, 12, 6, 20, tzinfo=UTC))
    assert "Reminder" not in weekend
    monday = await advance_to(testbot, datetime(2026, 12, 7, 12, tzinfo=UTC))
    assert "Reminder 1: R-1" in monday
    assert "Morning digest for BA SPO: 1 overdue" in monday


async def test_escalation_from_third_nudge_and_no_double(testbot: TestBot) -> None:
    await open_due_wednesday(testbot)
    out = await advance_to(testbot, datetime(2026, 12, 15, 12, tzinfo=UTC))
    reminders = [ln for ln in out.splitlines() if ln.startswith("[console:ba] Reminder")]
    assert [re.search(r"Reminder (\d+):", r).group(1) for r in reminders] == ["1", "2", "3"]  # type: ignore[union-attr]
    assert "Escalated to console:head-ba." in reminders[2]
    assert "Escalated" not in reminders[0] + reminders[1]
    again = await advance_to(testbot, datetime(2026, 12, 15, 13, tzinfo=UTC))
    assert "Reminder" not in again


async def test_no_nudge_after_answer_or_withdraw(testbot: TestBot) -> None:
    await open_due_wednesday(testbot)
    await testbot.exec("!liaison open C-1 to:ba-spo due:2026-12-02 Other", user="alice",
                       room="icc")
    await testbot.exec("!liaison answer R-1 here", user="bojan", room="ba")
    await testbot.exec("!liaison withdraw R-2 not needed", user="alice", room="icc")
    out = await advance_to(testbot, datetime(2026, 12, 20, tzinfo=UTC))
    assert "Reminder" not in out


async def test_snooze_holds_nudges(testbot: TestBot) -> None:
    await open_due_wednesday(testbot)
    refused = await testbot.exec("!liaison snooze R-1 2026-12-09 x", user="bojan", room="ba")
    assert "Only the requesting office" in refused
    await testbot.exec("!liaison snooze R-1 2026-12-09 waiting for court", user="alice",
                       room="icc")
    held = await advance_to(testbot, datetime(2026, 12, 9, 12, tzinfo=UTC))
    assert "Reminder" not in held
    after = await advance_to(testbot, datetime(2026, 12, 10, 12, tzinfo=UTC))
    assert after.count("[console:ba] Reminder") == 1
    assert "reminders fell due" in after  # merged, not a flood


async def test_extend_moves_the_clock(testbot: TestBot) -> None:
    await open_due_wednesday(testbot)
    await testbot.exec("!liaison extend R-1 2026-12-11 need a week", user="bojan", room="ba")
    out = await advance_to(testbot, datetime(2026, 12, 11, 12, tzinfo=UTC))
    assert "Reminder" not in out


async def test_ack_nudge(testbot: TestBot) -> None:
    await testbot.exec("!liaison open C-1 to:ba-spo Records", user="alice", room="icc")
    out = await advance_to(testbot, datetime(2026, 12, 8, 12, tzinfo=UTC))
    assert "has not been acknowledged" in out


async def test_digest_only_when_something_to_say(testbot: TestBot) -> None:
    quiet = await advance_to(testbot, datetime(2026, 12, 2, 12, tzinfo=UTC))
    assert "digest" not in quiet
    await open_due_wednesday(testbot)
    out = await advance_to(testbot, datetime(2026, 12, 3, 12, tzinfo=UTC))
    assert out.count("Morning digest for BA SPO") == 1
    assert out.count("Morning digest for ICC OTP") == 1


async def test_two_processes_on_postgres_nudge_exactly_once(pg_url: str) -> None:
    settings = make_settings(pg_url)
    first = await start_bot(settings)
    second = await start_bot(settings)
    try:
        for n in range(30):
            await first.exec(f"!liaison open C-{n} to:ba-spo due:2026-12-02 R{n}", user="alice",
                             room="icc")
        moment = DUE + timedelta(hours=17)  # Thursday 09:00 in Sarajevo
        for bot in (first, second):
            bot.clock.set(moment)
        await asyncio.gather(first.core.ticker.nudges(moment), second.core.ticker.nudges(moment),
                             first.core.ticker.nudges(moment))
        async with first.core.uow() as uow:
            chain = await uow.history.chain()
        nudged = [item.entry.request_id for item in chain if item.entry.action == "nudged"]
        assert sorted(nudged) == list(range(1, 31))
    finally:
        await first.core.close()
        await second.core.close()


async def test_restart_between_claim_and_delivery(sqlite_url: str) -> None:
    settings = make_settings(sqlite_url)
    bot = await start_bot(settings)
    await bot.exec("!liaison open C-1 to:ba-spo due:2026-12-02 Records", user="alice", room="icc")
    await bot.exec("!liaison ack R-1", user="bojan", room="ba")
    moment = DUE + timedelta(hours=17)
    bot.clock.set(moment)
    await bot.core.ticker.nudges(moment)  # nudge claimed and queued; the process dies here
    await bot.core.close()
    again = await start_bot(settings, now=moment + timedelta(minutes=5))
    try:
        out = await advance_to(again, moment + timedelta(hours=1))
        assert out.count("Reminder 1: R-1") == 1
    finally:
        await again.core.close()
    assert isinstance(again.clock, ManualClock)


async def test_housekeeping_forgets_only_old_marks(testbot: TestBot) -> None:
    now = testbot.clock.now()
    async with testbot.core.uow() as uow:
        await uow.inbound.first_time("slack", "Ev-old", now - timedelta(days=40))
        await uow.inbound.first_time("slack", "Ev-new", now - timedelta(days=1))
        await uow.state.put("relay:old", "1", now - timedelta(days=91))
        await uow.state.put("relay:new", "1", now - timedelta(days=1))
        await uow.state.put("relayx", "x", now - timedelta(days=180))  # not the prefix
        await uow.state.put("matrix:next_batch", "s1", now - timedelta(days=80))
        await uow.commit()
    from liaisonbot.service.ports import InboxEntry

    rows = {}
    for key, age in (("done-old", 10), ("done-new", 1), ("pending-old", 10)):
        at = now - timedelta(days=age)
        rows[key] = await testbot.core.door.admit(InboxEntry("slack", key, "command", None, "{}"),
                                                  now=at, until=at)
    async with testbot.core.uow() as uow:
        for key in ("done-old", "done-new"):
            await uow.inbox.done(rows[key].id, now)  # type: ignore[union-attr]
        await uow.commit()
    testbot.clock.set(now + timedelta(days=1))
    assert await testbot.core.ticker.housekeeping(testbot.clock.now()) == 3
    async with testbot.core.uow() as uow:  # the old done row went; a pending one never goes
        assert await uow.inbox.pending() == 1
        assert await uow.inbox.forget_before(now + timedelta(days=1)) == 1
    assert await testbot.core.ticker.housekeeping(testbot.clock.now()) == 0  # once a day
    async with testbot.core.uow() as uow:
        assert not await uow.inbound.first_time("slack", "Ev-new", now)
        assert await uow.inbound.first_time("slack", "Ev-old", now)
        assert await uow.state.get("relay:old") is None
        assert await uow.state.get("relay:new") == "1"
        assert await uow.state.get("relayx") == "x"
        assert await uow.state.get("matrix:next_batch") == "s1"
