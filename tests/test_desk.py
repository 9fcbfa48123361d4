"""The request desk through the console: lifecycle, permissions, need-to-know, bad input."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from conftest import TestBot


async def open_one(bot: TestBot, extra: str = "kind:mla due:30d Bank records of X") -> str:
    out = await bot.exec(f"!liaison open ICC-01/14 to:ba-spo {extra}", user="alice", room="icc")
    assert "R-1 opened" in out
    return out


async def test_open_posts_card_in_requested_room(testbot: TestBot) -> None:
    out = await open_one(testbot)
    assert "[console:ba] R-1 opened: ICC-01/14, mla from ICC OTP to BA SPO" in out
    assert "[console:icc] R-1 opened" in out
    assert "Summary: Bank records of X" in out
    # 30 calendar days from Monday 30 Nov → Wed 30 Dec, close of business in Sarajevo.
    assert "due Wed 2026-12-30 16:00 CET" in out


async def test_whole_lifecycle_with_permissions(testbot: TestBot) -> None:
    await open_one(testbot)
    refused = await testbot.exec("!liaison ack R-1", user="alice", room="icc")
    assert "Only the requested office (BA SPO) can ack R-1." in refused
    out = await testbot.exec("!liaison ack R-1 eta:2026-12-20 checking", user="bojan", room="ba")
    assert "R-1 is acknowledged now." in out
    assert "[console:icc] [R-1 thread] R-1 acknowledged by console:bojan (ba-spo)" in out
    assert "cannot be closed now" in await testbot.exec("!liaison close R-1", user="alice",
                                                        room="icc")
    out = await testbot.exec("!liaison answer R-1 Records attached via secure channel",
                             user="bojan", room="ba")
    assert "R-1 is answered now." in out and "Records attached via secure channel" in out
    out = await testbot.exec("!liaison reopen R-1 Page 3 is missing", user="alice", room="icc")
    assert "R-1 is acknowledged now." in out
    await testbot.exec("!liaison answer R-1 Page 3 sent", user="bojan", room="ba")
    assert "R-1 is closed now." in await testbot.exec("!liaison close R-1 thanks", user="alice",
                                                      room="icc")
    show = await testbot.exec("!liaison show R-1", user="alice", room="icc")
    for action in ("opened", "acknowledged", "answered", "reopened", "closed"):
        assert f"· {action} by" in show


async def test_decline_withdraw_extend_assign(testbot: TestBot) -> None:
    await open_one(testbot)
    out = await testbot.exec("!liaison extend R-1 2027-01-15 holidays", user="bojan", room="ba")
    assert "due now Fri 2027-01-15 16:00 CET" in out
    out = await testbot.exec("!liaison assign R-1 console:bojan", user="bojan", room="ba")
    assert "handled by console:bojan" in out
    assert "Only the requesting office (ICC OTP) can withdraw R-1." in await testbot.exec(
        "!liaison withdraw R-1", user="bojan", room="ba")
    out = await testbot.exec("!liaison decline R-1 outside our jurisdiction", user="bojan",
                             room="ba")
    assert "R-1 is declined now." in out
    assert "cannot be withdrawn now" in await testbot.exec("!liaison withdraw R-1 x",
                                                           user="alice", room="icc")


async def test_members_only_act_for_their_office(testbot: TestBot) -> None:
    out = await testbot.exec("!liaison open ICC-01/14 to:ba-spo Records", user="mallory",
                             room="icc")
    assert "Only the listed members of ICC OTP act for it" in out
    async with testbot.core.uow() as uow:
        assert await uow.requests.for_case("ICC-01/14", "icc-otp") == []


async def test_need_to_know(testbot: TestBot) -> None:
    await open_one(testbot)
    await testbot.exec("!liaison open ICC-01/14 to:ua-pgo Witness list", user="alice", room="icc")
    ua_list = await testbot.exec("!liaison list ICC-01/14", user="olena", room="ua")
    assert "R-2" in ua_list and "R-1" not in ua_list
    assert "R-1 does not exist or UA PGO is not party to it." in await testbot.exec(
        "!liaison show R-1", user="olena", room="ua")
    # An unknown id gets the very same sentence: no hint that R-1 exists.
    assert "R-99 does not exist or UA PGO is not party to it." in await testbot.exec(
        "!liaison show R-99", user="olena", room="ua")
    icc_list = await testbot.exec("!liaison list ICC-01/14 all", user="alice", room="icc")
    assert "R-1" in icc_list and "R-2" in icc_list


async def test_confidential_summary_only_by_direct_message(testbot: TestBot) -> None:
    out = await testbot.exec(
        "!liaison open ICC-01/14 to:ba-spo conf:confidential Identity of witness W-17",
        user="alice", room="icc")
    room_lines = [ln for ln in out.split("\n[") if not ln.startswith("dm:")]
    assert all("W-17" not in block for block in room_lines)
    assert "[dm:console:bojan]" in out and "Identity of witness W-17" in out
    answer = await testbot.exec("!liaison answer R-1 Witness is W. Smith", user="bojan",
                                room="ba")
    blocks = answer.split("\n[")
    assert all("W. Smith" not in b for b in blocks if not b.startswith(("dm:", "[dm:")))
    assert any("W. Smith" in b for b in blocks if "dm:console:alice" in b)


async def test_overdue_and_list_order(testbot: TestBot) -> None:
    await testbot.exec("!liaison open C-1 to:ba-spo due:2026-12-02 First", user="alice",
                       room="icc")
    await testbot.exec("!liaison open C-1 to:ba-spo urgent Second", user="alice", room="icc")
    assert "Nothing overdue" in await testbot.exec("!liaison overdue", user="bojan", room="ba")
    testbot.clock.set(datetime(2026, 12, 3, 20, tzinfo=UTC))
    out = await testbot.exec("!liaison overdue", user="bojan", room="ba")
    assert "Overdue for BA SPO: 2 requests" in out
    listing = await testbot.exec("!liaison list C-1", user="alice", room="icc")
    assert listing.index("R-2 ·") < listing.index("R-1 ·")  # urgent (due Wed 2 Dec 16:00) first


@pytest.mark.parametrize("line, sentence", [
    ("!liaison", "The command is empty."),
    ("!liaison frobnicate R-1", "I do not know the command 'frobnicate'."),
    ("!liaison open ICC-01/14 to:nowhere X", "There is no office 'nowhere'."),
    ("!liaison open ICC-01/14 to:icc-otp X", "A request goes to another office"),
    ("!liaison open ICC';DROP to:ba-spo X", "is not a case reference"),
    ("!liaison open C-1 to:ba-spo kind:mla", "The request needs a summary"),
    ("!liaison open ICC<>14 to:ba-spo X", "is not a case reference"),
    ("!liaison show R-abc", "'R-abc' is not a request id like R-7."),
    ("!liaison show R-42", "R-42 does not exist or ICC OTP is not party to it."),
    ("!liaison open C-1 to:ba-spo due:2020-01-01 X", "The due date 2020-01-01 is already past"),
    ("!liaison open C-1 to:ba-spo due:soon X", "DUE 'soon' is not a date"),
    ("!liaison open C-1 to:ba-spo due:2026-02-30 X", "2026-02-30 is not a real date."),
    ("!liaison open C-1 to:ba-spo kind:bribe X", "kind:bribe is not a kind"),
    ("!liaison open C-1 to:ba-spo " + "x" * 2100, "the limit is 2000"),
    ('!liaison open C-1 to:ba-spo basis:"unclosed X', "A quote is not closed"),
])
async def test_bad_input_gets_one_sentence_and_stores_nothing(testbot: TestBot, line: str,
                                                              sentence: str) -> None:
    out = await testbot.exec(line, user="alice", room="icc")
    assert sentence in out
    assert "Traceback" not in out
    async with testbot.core.uow() as uow:
        assert await uow.requests.get(1) is None
        assert await uow.history.chain() == []


async def test_room_bound_to_no_office_only_gets_help(testbot: TestBot) -> None:
    assert "only help works here" in await testbot.exec("!liaison list C-1", room="lobby")
    shown = await testbot.exec("!liaison help", room="lobby")
    assert "open CASE to:OFFICE" in shown and "record R-n EVENT:DATE" in shown
    assert ('Usage: ack R-n [received:DATE] [ref:"TEXT"] [contact:"TEXT"] [eta:DATE] '
            "[at:DATETIME] [NOTE]") in await testbot.exec("!liaison help ack", room="lobby")
    shown = await testbot.exec("!liaison help record", room="lobby")
    assert "Usage: record R-n EVENT:DATE" in shown
    assert "Events: received, decision, arrest, consent, surrender-decision." in shown, shown


async def test_hostile_and_unicode_text_is_stored_literally(testbot: TestBot) -> None:
    hostile = "'); DROP TABLE request;-- <script>alert(1)</script> \u202eevil\u202c مرحبا"
    out = await testbot.exec(f"!liaison open C-1 to:ba-spo {hostile}", user="alice", room="icc")
    assert "R-1 opened" in out
    async with testbot.core.uow() as uow:
        request = await uow.requests.get(1)
    assert request is not None and request.summary == hostile


async def test_thread_relay_between_offices(testbot: TestBot) -> None:
    await open_one(testbot)
    out = await testbot.exec("R-1: We found the account", user="bojan", room="ba")
    assert "[console:icc] [R-1 thread] console:bojan · ba-spo: We found the account" in out
    assert "[console:ba]" not in out  # never echoed back to its own side
    show = await testbot.exec("!liaison show R-1", user="alice", room="icc")
    assert "relayed by console:bojan" in show


async def test_each_room_reads_dates_in_its_own_time_zone(testbot: TestBot) -> None:
    out = await testbot.exec("!liaison open C-1 to:ua-pgo due:2026-12-10 Records", user="alice",
                             room="icc")
    ua = next(block for block in out.split("\n[") if block.startswith("console:ua]"))
    icc = next(block for block in out.split("\n[") if "console:icc]" in block[:15])
    assert "due Thu 2026-12-10 18:00 EET" in ua.splitlines()[0]  # Kyiv close of business
    assert "due Thu 2026-12-10 17:00 CET" in icc.splitlines()[0]  # the same moment in Amsterdam
