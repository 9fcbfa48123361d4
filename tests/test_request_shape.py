"""A request as the instruments shape it (issue 24, this part): several requested offices in one
``open`` (parallel requests), postponement and consultation with ``resume`` (EIO arts. 15 and
6(3); Rome Statute arts. 93(3), 94, 95, 97), and forwarding to the competent office (EIO art.
7(6)). Console scenarios on SQLite and on the real PostgreSQL with a moving clock."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from conftest import (
    BASE_CONFIG,
    EU_OFFICES,
    MONDAY_10,
    TestBot,
    console_posts,
    make_settings,
    start_bot,
)
from liaisonbot.domain import commands as c
from liaisonbot.domain.forwarding import from_snapshot, snapshot
from liaisonbot.domain.grammar import CommandError, parse
from liaisonbot.domain.model import RULES, Side, Status
from liaisonbot.service.reports import export_case, verify_audit

#: A second office of the same Member State as DE GBA: where DE GBA forwards what it is not
#: competent for (EIO art. 7(6)).
DE_GSTA = {"slug": "de-gsta", "name": "DE GStA Frankfurt", "timezone": "Europe/Berlin",
           "working_hours": "08:00-16:00", "holidays": "DE", "rooms": ["console:gsta"],
           "country": "DE", "members": ["console:greta"]}
EIO = {"name": "European Investigation Order (Directive 2014/41/EU)", "short": "EIO",
       "ack_within": "7d", "due": "120d", "scope": "eu", "requires": ["basis"]}


@pytest.fixture
async def bot(any_url: str) -> AsyncIterator[TestBot]:
    offices = copy.deepcopy(BASE_CONFIG["offices"]) + copy.deepcopy(EU_OFFICES) \
        + [dict(DE_GSTA)]
    started = await start_bot(make_settings(any_url, offices=offices,
                                            instruments={"eio": EIO}))
    yield started
    await started.core.close()


_posts = console_posts


def _in(room: str, out: str) -> list[str]:
    return [p for p in _posts(out) if p.startswith(f"[console:{room}]")]


def _dm(user: str, out: str) -> list[str]:
    return [p for p in _posts(out) if p.startswith(f"[dm:console:{user}]")]


async def _sound(bot: TestBot) -> None:
    """Every request's history chain and sealed state still hold."""
    assert await verify_audit(bot.core.uow) is None


# ---------------------------------------------------------------------- grammar and rules

def test_to_names_several_offices_each_once() -> None:
    cmd = parse("open OP-1 to:DE-GBA,nl-om kind:evidence Bank records")
    assert isinstance(cmd, c.OpenRequest)
    assert (cmd.to, cmd.also_to, cmd.offices) == ("de-gba", ("nl-om",), ("de-gba", "nl-om"))
    single = parse("open OP-1 to:de-gba Bank records")
    assert isinstance(single, c.OpenRequest) and single.offices == ("de-gba",)
    for bad, said in (("to:de-gba,,nl-om", "names an empty office"),
                      ("to:de-gba,", "names an empty office"),
                      ("to:de-gba,DE-GBA", "names de-gba twice")):
        with pytest.raises(CommandError, match=said):
            parse(f"open OP-1 {bad} Bank records")


def test_postpone_consult_resume_forward_parse() -> None:
    postpone = parse("postpone R-4 2027-01-15 it would harm an ongoing investigation")
    assert isinstance(postpone, c.Postpone)
    assert (postpone.request_id, str(postpone.until), postpone.reason) == (
        4, "2027-01-15", "it would harm an ongoing investigation")
    assert str(parse("postpone 4 3w reason").until) == "3w"  # type: ignore[union-attr]
    consult = parse("consult R-4 is a hearing by video acceptable?")
    assert isinstance(consult, c.Transition) and consult.verb == "consult"
    resume = parse("resume R-4")
    assert isinstance(resume, c.Transition) and (resume.verb, resume.text) == ("resume", "")
    forward = parse("forward R-4 to:DE-GSTA the bank sits in Frankfurt")
    assert isinstance(forward, c.Forward)
    assert (forward.request_id, forward.to, forward.reason) == (
        4, "de-gsta", "the bank sits in Frankfurt")
    for text, said in (("postpone R-4", "Say until when"),
                       ("postpone R-4 soon reason", "is not a date"),
                       ("postpone R-4 30d", "needs a reason"),
                       ("consult R-4", "needs what is to be consulted on"),
                       ("forward R-4 de-gsta reason", "with to:OFFICE"),
                       ("forward R-4 to:de-gsta,nl-om reason", "to one office"),
                       ("forward R-4 to:de-gsta", "needs a reason")):
        with pytest.raises(CommandError, match=said):
            parse(text)


def test_rules_for_the_new_verbs() -> None:
    assert RULES["postpone"].sides == {Side.REQUESTED}
    assert RULES["forward"].sides == {Side.REQUESTED}
    assert RULES["consult"].sides == RULES["resume"].sides == set(Side)
    assert RULES["resume"].from_statuses == {Status.POSTPONED, Status.CONSULTING}
    # a held request can still be declined or withdrawn, never answered while held
    assert Status.POSTPONED in RULES["decline"].from_statuses
    assert Status.CONSULTING in RULES["withdraw"].from_statuses
    assert Status.POSTPONED not in RULES["answer"].from_statuses


def test_a_snapshot_gives_back_the_request() -> None:
    from liaisonbot.domain.model import Kind, Request
    request = Request(id=3, case="OP-1", kind=Kind.EVIDENCE, requesting="icc-otp",
                      requested="de-gba", summary="x", status=Status.POSTPONED,
                      created_at=MONDAY_10, due_at=MONDAY_10 + timedelta(days=30),
                      ack_due_at=MONDAY_10, opened_by="console:alice",
                      events={"received": MONDAY_10}, hold_from=Status.ACKNOWLEDGED,
                      hold_until=MONDAY_10 + timedelta(days=9), hold_reason="harm")
    assert from_snapshot(snapshot(request)) == request
    # with measures (one answered on conditions, one postponed) and the answer's conditions
    from liaisonbot.domain.measures import Measure, MeasureState
    request.measures = (
        Measure(1, "hearing", MeasureState.ANSWERED, "heard", "case OP-1 only", MONDAY_10),
        Measure(2, "bank records", MeasureState.POSTPONED,
                until=MONDAY_10 + timedelta(days=20), reason="investigation"))
    request.conditions = "for use in OP-1 only"
    assert from_snapshot(snapshot(request)) == request


# ---------------------------------------------------------------------- several offices

async def test_several_offices_each_sees_only_its_own(bot: TestBot) -> None:
    out = await bot.exec('!liaison open OP-1 to:de-gba,nl-om kind:evidence Bank records of '
                         'account 123')
    reply = _in("icc", out)
    assert any("R-1, R-2 opened in parallel: OP-1, one request to each of DE GBA, NL OM."
               in p for p in reply)
    assert len(_in("de", out)) == 1 and "ICC OTP → DE GBA" in _in("de", out)[0]
    assert len(_in("nl", out)) == 1 and "ICC OTP → NL OM" in _in("nl", out)[0]
    assert "R-2" not in _in("de", out)[0] and "R-1" not in _in("nl", out)[0]

    # each requested office sees its own request alone, and nothing of the other
    listed = await bot.exec("!liaison list OP-1 all", room="de")
    assert "R-1 ·" in listed and "R-2" not in listed and "parallel" not in listed
    assert "not party to it" in await bot.exec("!liaison show R-2", room="de")
    shown = await bot.exec("!liaison show R-2", room="nl")
    assert "R-2 history" in shown and "R-1" not in shown and "parallel" not in shown
    assert "not party to it" in await bot.exec("!liaison show R-1", room="nl")
    # a third office learns of neither
    assert "not party to it" in await bot.exec("!liaison show R-1", user="bojan", room="ba")

    # the requesting office sees them together
    shown = await bot.exec("!liaison show R-1", user="alice", room="icc")
    assert "Parallel requests in OP-1: R-2 to NL OM (open)" in shown
    shown = await bot.exec("!liaison show R-2")
    assert "Parallel requests in OP-1: R-1 to DE GBA (open)" in shown
    listed = await bot.exec("!liaison list OP-1")
    assert "Opened in parallel: R-1, R-2" in listed

    # exports: the requesting office's names the first of the group; the requested office's
    # does not
    mine = json.loads(await export_case(bot.core.uow, "OP-1", fmt="json", office="icc-otp"))
    assert [r["parallel_of"] for r in mine["requests"]] == ["", "R-1"]
    theirs = json.loads(await export_case(bot.core.uow, "OP-1", fmt="json", office="nl-om"))
    assert [r["parallel_of"] for r in theirs["requests"]] == [""]
    await _sound(bot)


async def test_several_offices_all_or_nothing(bot: TestBot) -> None:
    out = await bot.exec("!liaison open OP-1 to:de-gba,xx-yy,nl-om Bank records")
    assert "There is no office 'xx-yy'" in out
    assert not _in("de", out) and not _in("nl", out)
    # an EU instrument refused for one of the offices: none is opened
    out = await bot.exec('!liaison open OP-1 to:de-gba,ua-pgo via:eio basis:"CCP" '
                         'Bank records', room="nl")
    assert "UA PGO is not in one" in out and not _in("de", out)
    assert "No open requests in OP-1" in await bot.exec("!liaison list OP-1")
    bot.console.room = "console:icc"
    out = await bot.exec("!liaison open OP-1 to:de-gba,icc-otp Bank records")
    assert "ICC OTP is your own" in out or "icc-otp is your own" in out
    assert "No open requests in OP-1" in await bot.exec("!liaison list OP-1")
    out = await bot.exec("!liaison open OP-1 to:de-gba Bank records")
    assert "R-1 opened" in out  # the refused attempts stored nothing (not even an id)


# ---------------------------------------------------------------------- postpone, consult, resume

async def test_postponed_request_is_not_chased_and_resumes_at_its_date(bot: TestBot) -> None:
    await bot.exec("!liaison open OP-2 to:de-gba due:5d Phone records")
    await bot.exec("!liaison ack R-1", room="de")
    out = await bot.exec("!liaison postpone R-1 2026-12-21 it would harm an ongoing "
                         "investigation (art. 15)")
    assert "R-1 is postponed now." in out
    told = _in("icc", out)
    assert any("postponed until Mon 2026-12-21" in p
               and "it would harm an ongoing investigation" in p for p in told)
    shown = await bot.exec("!liaison show R-1", room="icc")
    assert "postponed · due Sat 2026-12-05" in shown  # the legal date is not moved
    assert "Postponed until Mon 2026-12-21 16:00 CET" in shown
    assert "answer R-1" not in shown

    # past the due date: no nudge while postponed; not overdue, listed apart (the morning
    # digest too, after the rest)
    out = await bot.exec(":advance 2w")
    assert not [p for p in _posts(out) if "Reminder" in p]
    digests = [p for p in _posts(out) if p.startswith("[console:de] Morning digest")]
    assert digests and "1 postponed or in consultation (not chased)" in digests[-1], digests
    assert "R-1 ·" in digests[-1]
    overdue = await bot.exec("!liaison overdue")
    assert "0 requests; 1 postponed or in consultation (not chased)" in overdue
    assert "R-1 is postponed, so it cannot be answered now." in \
        await bot.exec("!liaison answer R-1 too early", room="de")

    # the postponement ends by itself at its date; both sides are told, and the chase
    # resumes after it
    out = await bot.exec(":advance 8d")
    ended = [p for p in _posts(out) if "the postponement ended" in p]
    assert {p.split("]")[0] for p in ended} == {"[console:icc", "[console:de"}
    assert all("it is acknowledged again" in p for p in ended)
    reminders = [p for p in _posts(out) if "Reminder" in p]
    assert reminders and all(p.startswith("[console:de]") or "thread" in p
                             for p in reminders)
    assert out.index("the postponement ended") < out.index("Reminder")
    shown = await bot.exec("!liaison show R-1", room="icc")
    assert "acknowledged · due" in shown
    assert "resumed by liaisonbot · status: postponed → acknowledged" in shown
    await _sound(bot)


async def test_postpone_then_resume_by_command(bot: TestBot) -> None:
    await bot.exec("!liaison open OP-2 to:de-gba due:5d Phone records")
    assert "Only the requested office (DE GBA) can postpone R-1." in await bot.exec(
        "!liaison postpone R-1 30d we would rather wait")
    await bot.exec("!liaison postpone R-1 30d ongoing investigation", room="de")
    out = await bot.exec("!liaison resume R-1 the investigation allows it now", room="de")
    assert "R-1: back to open; chased again as before." in out
    assert any("resumed by console:alice (de-gba)" in p
               and "the investigation allows it now" in p for p in _in("icc", out))
    assert "R-1 is open, so it cannot be resumed now." in \
        await bot.exec("!liaison resume R-1", room="de")
    out = await bot.exec(":advance 1w")  # chased as before once due
    assert [p for p in _in("de", out) if "Reminder" in p]
    await _sound(bot)


async def test_consult_then_resume(bot: TestBot) -> None:
    await bot.exec("!liaison open OP-3 to:nl-om due:3d Witness hearing")
    await bot.exec("!liaison ack R-1", room="nl")
    out = await bot.exec("!liaison consult R-1 Is a hearing by video acceptable? "
                         "(art. 6(3))", room="icc")
    assert "R-1 is consulting now." in out
    assert any("put to consultation by console:alice (icc-otp)" in p
               and "Is a hearing by video acceptable?" in p for p in _in("nl", out))
    out = await bot.exec(":advance 2w")
    assert not [p for p in _posts(out) if "Reminder" in p]
    shown = await bot.exec("!liaison show R-1", room="nl")
    assert "In consultation since" in shown and "consulting · due" in shown
    out = await bot.exec("!liaison resume R-1 Video is fine.", room="nl")
    assert "back to acknowledged" in out
    assert any("Video is fine." in p for p in _in("icc", out))
    # overdue: chased again at once, one reminder (not those that fell due meanwhile)
    reminders = [p for p in _in("nl", out) if "Reminder" in p]
    assert len(reminders) == 1 and "offline" not in reminders[0]
    out = await bot.exec(":advance 1d")
    assert not [p for p in _in("nl", out) if "Reminder" in p]
    await bot.exec("!liaison consult R-1 one more point", room="nl")
    out = await bot.exec("!liaison withdraw R-1 no longer needed", room="icc")
    assert "R-1 is withdrawn now." in out
    await _sound(bot)


# ---------------------------------------------------------------------- forward

async def test_forward_to_the_competent_office_of_the_same_state(bot: TestBot) -> None:
    await bot.exec('!liaison open OP-4 to:de-gba via:eio basis:"WvSv art. 5.4.1" '
                   'kind:evidence Bank records of account 123', room="nl")
    await bot.exec('!liaison ack R-1 ref:"3 ARP 1/26"', room="de")
    await bot.exec(":thread R-1", room="de")
    await bot.exec("GBA: looking into it")
    await bot.exec(":thread")
    assert "Only the requested office (DE GBA) can forward R-1." in \
        await bot.exec("!liaison forward R-1 to:de-gsta x", room="nl")
    assert "R-1 is already with DE GBA." in \
        await bot.exec("!liaison forward R-1 to:de-gba x", room="de")
    assert "NL OM issued R-1" in await bot.exec("!liaison forward R-1 to:nl-om x", room="de")
    # same instrument checks as open: the EIO does not leave the EU
    assert "UA PGO is not in one" in await bot.exec("!liaison forward R-1 to:ua-pgo x")
    assert "There is no office 'xx'" in await bot.exec("!liaison forward R-1 to:xx x")
    assert "NL OM → DE GBA · acknowledged" in await bot.exec("!liaison show R-1")  # unmoved

    out = await bot.exec("!liaison forward R-1 to:de-gsta the bank sits in Frankfurt",
                         room="de")
    assert "R-1: forwarded to DE GStA Frankfurt, which now handles it." in out
    card = _in("gsta", out)
    assert len(card) == 1 and "R-1 forwarded to DE GStA Frankfurt by DE GBA" in card[0]
    assert "NL OM → DE GStA Frankfurt · open" in card[0]
    told = _in("nl", out)
    assert any("forwarded by console:alice (de-gba)" in p and "the bank sits in Frankfurt" in p
               for p in told)

    # the new office acts; the first one no longer does, and hears nothing more
    out = await bot.exec("!liaison ack R-1", user="greta", room="gsta")
    assert "R-1 is acknowledged now." in out and not _in("de", out)
    out = await bot.exec("!liaison answer R-1 Records attached.", room="gsta")
    bot.console.user = "console:alice"
    assert not _in("de", out) and any("Records attached." in p for p in _in("nl", out))
    refused = await bot.exec("!liaison decline R-1 not ours", room="de")
    assert "R-1 was forwarded to DE GStA Frankfurt" in refused
    assert "no longer acts on it" in refused

    # the first office still reads what it saw, up to the forwarding, and nothing after
    shown = await bot.exec("!liaison show R-1", room="de")
    assert "as it stood when DE GBA forwarded it to DE GStA Frankfurt" in shown
    assert "NL OM → DE GBA · acknowledged" in shown
    assert "3 ARP 1/26" in shown and "looking into it" in shown
    assert "forwarded by console:alice" in shown
    assert "Records attached" not in shown and "answered" not in shown
    listed = await bot.exec("!liaison list OP-4 all", room="de")
    assert "Forwarded to other offices (read only): R-1 to DE GStA Frankfurt" in listed

    # … and so does its export
    exported = json.loads(await export_case(bot.core.uow, "OP-4", fmt="json", office="de-gba"))
    (row,) = exported["requests"]
    assert (row["requested"], row["status"]) == ("de-gba", "acknowledged")
    assert [e["action"] for e in row["history"]][-1] == "forwarded"
    full = json.loads(await export_case(bot.core.uow, "OP-4", fmt="json", office="nl-om"))
    assert full["requests"][0]["requested"] == "de-gsta"
    assert [e["action"] for e in full["requests"][0]["history"]][-2:] == [
        "acknowledged", "answered"]

    # the requesting office sees the whole of it
    shown = await bot.exec("!liaison show R-1", room="nl")
    assert "NL OM → DE GStA Frankfurt · answered" in shown
    assert "forwarded by console:alice" in shown and "Records attached." in shown
    # a thread message now reaches the new office, not the first
    out = await bot.exec(":thread R-1", room="nl")
    out = await bot.exec("thank you", room="nl")
    assert _in("gsta", out) and not _in("de", out)
    await _sound(bot)


async def test_forwarding_a_confidential_request(
        bot: TestBot) -> None:
    await bot.exec("!liaison open OP-5 to:ba-spo conf:confidential Protected witness")
    out = await bot.exec("!liaison forward R-1 to:ua-pgo not competent", user="bojan",
                         room="ba")
    assert "R-1 is confidential and UA PGO lists no members who could read it" in out
    assert "ICC OTP → BA SPO · open" in await bot.exec("!liaison show R-1")
    # to an office that lists members it goes; the first office's listed member still reads
    # the substance of what it saw, by direct message, and its room only the envelope
    out = await bot.exec("!liaison forward R-1 to:de-gsta not competent", user="bojan",
                         room="ba")
    assert "forwarded to DE GStA Frankfurt" in out
    assert "Protected witness" not in "\n".join(_in("gsta", out) + _in("ba", out))
    out = await bot.exec("!liaison show R-1", user="bojan", room="ba")
    room, direct = _in("ba", out), _dm("bojan", out)
    assert room and "Protected witness" not in room[0] and "not competent" not in room[0]
    assert direct and "Protected witness" in direct[0] and "not competent" in direct[0]
    out = await bot.exec("!liaison show R-1", user="greta", room="gsta")
    assert "Protected witness" in "\n".join(_dm("greta", out))


async def test_help_cites_the_law(bot: TestBot) -> None:
    assert "art. 15" in await bot.exec("!liaison help postpone")
    assert "93(3)" in await bot.exec("!liaison help consult")
    assert "art. 7(6)" in await bot.exec("!liaison help forward")
    assert "to:OFFICE[,OFFICE…]" in await bot.exec("!liaison help open")
