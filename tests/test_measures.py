"""Measures, partial execution and conditions on use (issue 24), through the console on SQLite
and PostgreSQL: an EIO with two measures answered one by one, the findings' "Part 1 sent, part
2 postponed", reopen, need to know, confidential measures, the export and the statistics."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from conftest import BASE_CONFIG, EU_OFFICES, TestBot, console_posts
from liaisonbot.domain import measures as ms
from liaisonbot.domain.audit import state_hash
from liaisonbot.domain.commands import DueSpec, PostponeMeasure
from liaisonbot.domain.grammar import CommandError, parse
from liaisonbot.domain.measures import Measure, MeasureError, MeasureState
from liaisonbot.domain.model import Kind, Request, Status
from liaisonbot.service import measures as measures_use
from liaisonbot.service.desk import Actor
from liaisonbot.service.reports import export_case, verify_audit, weekly_figures, weekly_text
from liaisonbot.service.stats import statistics, statistics_text
from test_legal_clocks import _bot

EIO = ('!liaison open OP-7 to:nl-om via:eio basis:"StPO 100a" measure:"hearing of witness W" '
       'measure:"bank records of X" Evidence on the accounts of X')
DE, NL, IE = "console:de", "console:nl", "console:ie"


@pytest.fixture
async def bot(any_url: str) -> AsyncIterator[TestBot]:
    started = await _bot(any_url)
    yield started
    await started.core.close()


async def _get(bot: TestBot, number: int = 1) -> Request:
    async with bot.core.uow() as uow:
        found = await uow.requests.get(number)
    assert found is not None
    return found


def _in(room: str, out: str) -> list[str]:
    """The posts to ``room``."""
    return [p for p in console_posts(out) if p.startswith(f"[{room}]")]


async def _opened(bot: TestBot) -> str:
    out = await bot.exec(EIO, user="hans", room="de")
    assert "R-1 opened" in out
    return out


async def test_two_measures_answered_one_by_one(bot: TestBot) -> None:
    out = await _opened(bot)
    card = _in(NL, out)[0]
    assert "R-1/1 hearing of witness W: pending" in card
    assert "R-1/2 bank records of X: pending" in card
    assert (await _get(bot)).measure == "hearing of witness W"  # the EIO's required measure
    await bot.exec("!liaison ack R-1", user="piet", room="nl")

    out = await bot.exec('!liaison answer R-1/1 Transcript of the hearing sent '
                         'conditions:"for use in case OP-7 only"', user="piet", room="nl")
    assert "R-1/1 is answered; R-1 is partly answered now." in out
    update = _in(DE, out)[0]  # the issuing office's card: one answered, one pending
    assert "R-1 card updated: partly answered" in update
    assert "R-1/1 hearing of witness W: answered" in update
    assert "Conditions on use: for use in case OP-7 only" in update
    assert "R-1/2 bank records of X: pending" in update
    assert "Measures: 1 answered, 0 declined, 0 postponed, 1 pending" in update
    note = _in(DE, out)[1]  # the thread note carries the answer and its conditions
    assert note.startswith("[console:de] [R-1 thread] R-1/1 answered by console:piet (nl-om)")
    assert "Transcript of the hearing sent" in note
    assert "Conditions on use: for use in case OP-7 only" in note
    request = await _get(bot)
    assert request.status is Status.PARTLY_ANSWERED
    assert request.measures[0].conditions == "for use in case OP-7 only"
    listed = await bot.exec("!liaison list OP-7", user="hans", room="de")
    assert "partly answered" in listed and "1/2 measures settled" in listed

    out = await bot.exec("!liaison answer R-1/2 Statements of account 2024-2026 sent",
                         user="piet", room="nl")
    assert "R-1/2 is answered; R-1 is answered now." in out
    assert (await _get(bot)).status is Status.ANSWERED
    show = await bot.exec("!liaison show R-1", user="hans", room="de")
    assert "measure answered by console:piet" in show  # R-1/1: the request still owed
    assert "· answered by console:piet" in show  # R-1/2 settled the request
    assert "conditions on use: for use in case OP-7 only" in show
    assert "measure state: pending → answered" in show
    assert "R-1 is closed now." in await bot.exec("!liaison close R-1 thanks", user="hans",
                                                  room="de")
    assert await verify_audit(bot.core.uow) is None  # measures are sealed with the row


async def test_part_answered_part_postponed_then_answered(bot: TestBot) -> None:
    """The findings: ``answer R-5 Part 1 sent … Part 2 postponed (art. 94)`` is now one answer
    per measure, with the partial execution on the card."""
    await _opened(bot)
    await bot.exec("!liaison answer R-1/1 Part 1 sent", user="piet", room="nl")
    start = len(bot.out)
    outcome = await bot.core.desk.run_command(
        Actor(user="console:piet", room=NL),
        PostponeMeasure(1, 2, DueSpec(on=datetime(2027, 1, 15).date()),
                        "would harm an ongoing investigation (art. 15(1)(a))"))
    await bot.console.settle()  # deliver its posts, as after a typed line
    out = "\n".join(bot.out[start:])
    assert outcome.ok
    assert "R-1/2 is postponed until Fri 2027-01-15" in out
    update = _in(DE, out)[0]
    assert "R-1/1 hearing of witness W: answered" in update
    assert "R-1/2 bank records of X: postponed until Fri 2027-01-15" in update
    assert "would harm an ongoing investigation" in update
    request = await _get(bot)
    assert request.status is Status.PARTLY_ANSWERED
    # The only measure still owed is postponed: the chasing waits until its date.
    assert request.snoozed_until is not None and request.snoozed_until.date().isoformat() \
        == "2027-01-15"
    show = await bot.exec("!liaison show R-1", user="hans", room="de")
    assert "measure postponed by console:piet" in show
    out = await bot.exec("!liaison answer R-1/2 Part 2 sent", user="piet", room="nl")
    assert "R-1/2 is answered; R-1 is answered now." in out
    assert [m.state for m in (await _get(bot)).measures] == [MeasureState.ANSWERED] * 2


async def test_reopen_makes_every_measure_owed_again(bot: TestBot) -> None:
    await _opened(bot)
    await bot.exec('!liaison answer R-1/1 Transcript sent conditions:"case OP-7 only"',
                   user="piet", room="nl")
    out = await bot.exec("!liaison decline R-1/2 bank secrecy", user="piet", room="nl")
    assert "R-1/2 is declined; R-1 is answered now." in out  # one answered: answered
    out = await bot.exec("!liaison reopen R-1 the records are needed", user="hans", room="de")
    assert "R-1 is acknowledged now." in out
    update = _in(NL, out)[0]
    assert "R-1/1 hearing of witness W: pending" in update
    assert "R-1/2 bank records of X: pending" in update
    # The answers given stay in the history.
    show = await bot.exec("!liaison show R-1", user="hans", room="de")
    assert "Transcript sent" in show and "bank secrecy" in show and "case OP-7 only" in show
    # ``answer R-n`` answers every measure still owed at once.
    out = await bot.exec('!liaison answer R-1 Everything sent conditions:"OP-7 only"',
                         user="piet", room="nl")
    assert "R-1 is answered now." in out
    request = await _get(bot)
    assert [m.state for m in request.measures] == [MeasureState.ANSWERED] * 2
    assert request.conditions == "OP-7 only" and request.measures[1].conditions == "OP-7 only"
    assert await verify_audit(bot.core.uow) is None


async def test_all_declined_is_declined(bot: TestBot) -> None:
    await _opened(bot)
    await bot.exec("!liaison decline R-1/2 bank secrecy", user="piet", room="nl")
    out = await bot.exec("!liaison decline R-1/1 witness abroad", user="piet", room="nl")
    assert "R-1/1 is declined; R-1 is declined now." in out
    assert (await _get(bot)).status is Status.DECLINED


async def test_measure_refusals_are_one_sentence_and_store_nothing(bot: TestBot) -> None:
    await _opened(bot)
    before = state_hash(await _get(bot))
    cases = [
        ("!liaison answer R-1/3 x", "nl", "R-1 has no measure 3: its measures are R-1/1 to "
                                          "R-1/2."),
        ("!liaison answer R-1/1 x", "de", "Only the requested office (NL OM) can answer R-1."),
        ("!liaison decline R-1/0 x", "nl", "'R-1/0' is not a request id like R-7 or a measure "
                                           "like R-7/2."),
        ("!liaison ack R-1/1", "nl", "'R-1/1' is not a request id like R-7."),
        ("!liaison answer R-1/1", "nl", "answer needs the answer."),
    ]
    for line, room, sentence in cases:
        out = await bot.exec(line, user="piet" if room == "nl" else "hans", room=room)
        assert sentence in out, (line, out)
        assert "Traceback" not in out and len(out.splitlines()) == 1, out
    assert state_hash(await _get(bot)) == before
    await bot.exec("!liaison answer R-1/1 sent", user="piet", room="nl")
    out = await bot.exec("!liaison decline R-1/1 no", user="piet", room="nl")
    assert "R-1/1 is answered already." in out
    # ``ack`` does not apply to a request already partly answered.
    assert "cannot be acknowledged now" in await bot.exec("!liaison ack R-1", user="piet",
                                                          room="nl")
    # A request with a single measure has no numbered measures: answered as a whole.
    await bot.exec('!liaison open OP-7 to:nl-om via:eio basis:"x" measure:"records" Records',
                   user="hans", room="de")
    out = await bot.exec("!liaison answer R-2/1 sent", user="piet", room="nl")
    assert "R-2 has no numbered measures" in out and "Use answer R-2" in out
    assert "R-2 is answered now." in await bot.exec("!liaison answer R-2 sent", user="piet",
                                                    room="nl")


async def test_a_third_office_never_sees_any_of_it(bot: TestBot) -> None:
    out = await _opened(bot)
    out += await bot.exec('!liaison answer R-1/1 sent conditions:"OP-7 only"', user="piet",
                          room="nl")
    assert not [block for block in _in(IE, out) if "R-1" in block]
    assert "R-1 does not exist or IE DPP is not party to it." in await bot.exec(
        "!liaison show R-1", user="ian", room="ie")
    assert "R-1 does not exist" in await bot.exec("!liaison answer R-1/1 x", user="ian",
                                                  room="ie")
    assert "R-1" not in await bot.exec("!liaison list OP-7 all", user="ian", room="ie")
    assert "No requests" in await export_case(bot.core.uow, "OP-7", fmt="md", office="ie-dpp")


async def test_conditions_reach_the_export(bot: TestBot) -> None:
    await _opened(bot)
    await bot.exec('!liaison answer R-1/1 Transcript sent conditions:"for use in case OP-7 only"',
                   user="piet", room="nl")
    data = json.loads(await export_case(bot.core.uow, "OP-7", fmt="json", office="de-gba",
                                        directory=bot.core.desk.directory,
                                        now=bot.clock.now()))
    row = data["requests"][0]
    assert row["status"] == "partly_answered"
    assert [(x["ref"], x["state"], x["conditions"]) for x in row["measures"]] == [
        ("R-1/1", "answered", "for use in case OP-7 only"), ("R-1/2", "pending", "")]
    assert row["measures"][0]["answer"] == "Transcript sent"
    assert data["statistics"]["by_office"][0]["with_measures"] == 1
    assert data["statistics"]["by_office"][0]["partial"] == 1
    table = list(csv.DictReader(io.StringIO(await export_case(
        bot.core.uow, "OP-7", fmt="csv", office="de-gba"))))
    assert "R-1/1 hearing of witness W: answered (conditions on use: for use in case OP-7 " \
           "only)" in table[0]["measures"]
    md = await export_case(bot.core.uow, "OP-7", fmt="md", office="nl-om")
    assert "## R-1 answer" in md and "for use in case OP-7 only" in md
    # A whole-request answer's conditions: their own column.
    await bot.exec("!liaison answer R-1 rest sent conditions:\"no onward transfer\"",
                   user="piet", room="nl")
    table = list(csv.DictReader(io.StringIO(await export_case(
        bot.core.uow, "OP-7", fmt="csv", office="de-gba"))))
    assert table[0]["conditions"] == "no onward transfer" and table[0]["answer"] == "rest sent"


async def test_a_partly_answered_request_is_still_chased_and_overdue(bot: TestBot) -> None:
    await bot.exec('!liaison open ICC-01/14 to:ba-spo due:3d measure:"a" measure:"b" Two things',
                   user="alice", room="icc")
    await bot.exec("!liaison answer R-1/1 a sent", user="bojan", room="ba")
    start = len(bot.out)
    await bot.console.advance_to(bot.clock.now() + timedelta(days=5))
    out = "\n".join(bot.out[start:])
    assert "Reminder 1: R-1" in out
    assert "R-1" in await bot.exec("!liaison overdue", user="alice", room="icc")
    assert (await _get(bot)).is_overdue(bot.clock.now())


async def test_confidential_measures_and_conditions_stay_with_the_members(
        bot: TestBot) -> None:
    out = await bot.exec('!liaison open ICC-01/14 to:ba-spo conf:confidential '
                         'measure:"hearing of Suspect M." measure:"phone records" Secret',
                         user="alice", room="icc")
    room_card = _in("console:ba", out)[0]
    assert "Suspect M." not in room_card and "R-1/1 (confidential): pending" in room_card
    out = await bot.exec('!liaison answer R-1/1 sent conditions:"only for the ICC case"',
                         user="bojan", room="ba")
    for room in ("console:icc", "console:ba"):
        for block in _in(room, out):
            assert "only for the ICC case" not in block and "Suspect M." not in block
    direct = _in("dm:console:alice", out)
    assert direct and any("only for the ICC case" in block for block in direct)
    assert any("R-1/1 hearing of Suspect M.: answered" in block for block in direct)
    exported = json.loads(await export_case(bot.core.uow, "ICC-01/14", fmt="json",
                                            office="icc-otp"))
    measure = exported["requests"][0]["measures"][0]
    assert measure["conditions"] == "(confidential)" and measure["text"] == "(confidential)"
    show = await bot.exec("!liaison show R-1", user="alice", room="icc")
    assert "only for the ICC case" not in _in("console:icc", show)[0]


async def test_french_and_ukrainian_rooms_read_measures_in_their_language(
        any_url: str) -> None:
    offices = [dict(o) for o in BASE_CONFIG["offices"]] + [dict(o) for o in EU_OFFICES]
    for office in offices:
        if office["slug"] == "nl-om":
            office["language"] = "fr"
    started = await _bot(any_url, offices=offices)
    try:
        await started.exec(EIO, user="hans", room="de")
        out = await started.exec("!liaison answer R-1/1 envoyé", user="piet", room="nl")
        assert "R-1/1 : réponse apportée ; statut de R-1 : réponse partielle." in out
        assert "R-1/2 bank records of X : en attente" in out
    finally:
        await started.core.close()


# ---------------------------------------------------------------------- the units


def _request(*texts: str) -> Request:
    now = datetime(2026, 12, 1, 9, tzinfo=UTC)
    return Request(id=5, case="C", kind=Kind.MLA, requesting="a", requested="b", summary="s",
                   status=Status.ACKNOWLEDGED, created_at=now, due_at=now + timedelta(days=30),
                   ack_due_at=now, opened_by="console:x", measures=ms.numbered(texts))


def test_postpone_measure_is_a_service_function() -> None:
    request = _request("hearing", "records", "search")
    until = datetime(2027, 1, 15, 16, tzinfo=UTC)
    detail = measures_use.postpone_measure(request, 2, until=until, reason="art. 94")
    assert request.measures[1].state is MeasureState.POSTPONED
    assert request.measures[1].until == until and request.measures[1].reason == "art. 94"
    assert detail["measure_no"] == 2 and detail["measure_state"] == ["pending", "postponed"]
    assert request.snoozed_until is None  # others still owed: the chasing goes on
    request.measures, _ = ms.settle(request.measures, "R-5", 1, verb="answer", text="x",
                                    at=until)
    detail = measures_use.postpone_measure(request, 3, until=until + timedelta(days=3),
                                           reason="art. 94")
    assert request.snoozed_until == until  # every owed measure postponed: the earliest date
    assert detail["chasing_until"] == "2027-01-15T16:00:00+00:00"
    with pytest.raises(MeasureError) as refused:
        measures_use.postpone_measure(request, 1, until=until, reason="r")
    assert str(refused.value) == "R-5/1 is answered already."
    with pytest.raises(MeasureError):
        measures_use.postpone_measure(request, 4, until=until, reason="r")
    with pytest.raises(MeasureError):
        measures_use.postpone_measure(_request(), 1, until=until, reason="r")


def test_the_status_follows_the_measures() -> None:
    measures = ms.numbered(["a", "b"])
    assert ms.overall(measures) is None
    one, _ = ms.settle(measures, "R-1", 1, verb="decline", text="no", at=datetime.now(UTC))
    assert ms.overall(one) == "partly_answered" and not ms.partial(one)
    both, _ = ms.settle(one, "R-1", 2, verb="decline", text="no", at=datetime.now(UTC))
    assert ms.overall(both) == "declined"
    mixed, _ = ms.settle(one, "R-1", 2, verb="answer", text="ok", at=datetime.now(UTC))
    assert ms.overall(mixed) == "answered" and ms.partial(mixed)
    assert ms.numbered(["only one"]) == ()  # a single measure is the whole request's
    with pytest.raises(MeasureError):
        ms.numbered(["x"] * (ms.MAX_MEASURES + 1))
    assert Measure.from_json(mixed[1].as_json()) == mixed[1]


def test_the_grammar_of_measures() -> None:
    command = parse('open C to:b measure:"a" measure:"b b" Sum')
    assert command.measures == ("a", "b b") and command.measure == "a"  # type: ignore[union-attr]
    answer = parse('answer R-3/2 sent conditions:"use in C only" at:2026-12-01')
    assert (answer.measure, answer.conditions, answer.text) == (  # type: ignore[union-attr]
        2, "use in C only", "sent")
    with pytest.raises(CommandError, match="empty"):
        parse('open C to:b measure:"a" measure:"" Sum')
    with pytest.raises(CommandError, match="conditions on use are 1001"):
        parse('answer R-1 x conditions:"' + "c" * 1001 + '"')


def test_statistics_count_partial_execution() -> None:
    now = datetime(2026, 12, 20, tzinfo=UTC)
    partly = _request("a", "b")
    partly.measures, _ = ms.settle(partly.measures, "R-5", 1, verb="answer", text="x", at=now)
    partly.status = Status.PARTLY_ANSWERED
    rows = weekly_figures("a", [partly], {}, now)
    assert rows[0].partly == 1
    assert "1 request partly answered" in weekly_text("A", rows)


async def test_statistics_text_names_partial_execution(bot: TestBot) -> None:
    await _opened(bot)
    await bot.exec("!liaison answer R-1/1 x", user="piet", room="nl")
    request = await _get(bot)
    async with bot.core.uow() as uow:
        histories = await uow.history.for_requests([1])
    figures = statistics("de-gba", [request], histories, bot.clock.now(), bot.core.desk.directory)
    assert figures["by_office"][0].ack_median_hours == 0.0  # the partial answer: received
    assert "- partial execution: 1 of 1 requests with measures" in statistics_text(
        figures, bot.core.desk.directory)


async def test_no_measure_is_settled_while_the_request_is_incomplete(bot: TestBot) -> None:
    await _opened(bot)
    await bot.exec("!liaison incomplete R-1 the court order", user="piet", room="nl")
    for line in ("!liaison decline R-1/1 no", "!liaison answer R-1/2 sent"):
        out = await bot.exec(line, user="piet", room="nl")
        assert "R-1 is incomplete, so it cannot be" in out, out
    assert all(m.state is MeasureState.PENDING for m in (await _get(bot)).measures)
