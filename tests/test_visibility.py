"""Who sees what, and who is who: the visibility policy as a table (audience × level × field),
``same_user`` as a table, and the paths that ask them, through the console."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from conftest import BASE_CONFIG, TestBot, console_posts, make_settings, start_bot
from liaisonbot.domain.model import Confidentiality, Kind, Request, Status
from liaisonbot.domain.refs import distinct_users, same_user
from liaisonbot.domain.visibility import (
    ENVELOPE,
    MASK,
    SUBSTANCE,
    Audience,
    Place,
    Shown,
    by_direct_message,
    seen,
    visibility,
)

T0 = datetime(2026, 11, 30, 9, tzinfo=UTC)
S, M, A = Shown.SHOWN, Shown.MASKED, Shown.ABSENT


def _request(level: Confidentiality) -> Request:
    return Request(id=1, case="C-1", kind=Kind.MLA, requesting="icc-otp", requested="ba-spo",
                   summary="s", status=Status.OPEN, created_at=T0, due_at=T0, ack_due_at=T0,
                   opened_by="console:alice", confidentiality=level)


AUDIENCES = {
    "requesting room": Audience(Place.ROOM, "icc-otp"),
    "requested room": Audience(Place.ROOM, "ba-spo"),
    "another office's room": Audience(Place.ROOM, "ua-pgo"),
    "listed member's DM": Audience(Place.MEMBER_DM, "ba-spo", member=True),
    "export": Audience(Place.EXPORT),
    "export --office party": Audience(Place.EXPORT, "icc-otp"),
    "export --office other": Audience(Place.EXPORT, "ua-pgo"),
    "report": Audience(Place.REPORT, "icc-otp"),
    "board, listed member": Audience(Place.BOARD, "ba-spo", member=True),
    "board, office user": Audience(Place.BOARD, "ba-spo"),
    "board, other office": Audience(Place.BOARD, "ua-pgo", member=True),
}
# audience → (envelope, restricted substance, confidential summary/answers/notes,
#             confidential thread messages and file names)
EXPECTED = {
    "requesting room": (S, S, M, A),
    "requested room": (S, S, M, A),
    "another office's room": (A, A, A, A),
    "listed member's DM": (S, S, S, S),
    "export": (S, S, M, A),
    "export --office party": (S, S, M, A),
    "export --office other": (A, A, A, A),
    "report": (S, A, A, A),
    "board, listed member": (S, S, S, S),
    "board, office user": (S, S, M, A),
    "board, other office": (A, A, A, A),
}
FIELDS = ["id", "case", "parties", "dates", "status", "due", "summary", "basis", "answer",
          "note", "reason", "thread", "file", "files", "a field added later"]
CASES = [(who, level, f) for who in AUDIENCES for level in Confidentiality for f in FIELDS]


def _expected(who: str, level: Confidentiality, field: str) -> Shown:
    envelope, restricted, hidden, absent = EXPECTED[who]
    if field in ENVELOPE:
        return envelope
    if level is Confidentiality.RESTRICTED:
        return restricted
    return absent if field in ("thread", "file") else hidden


@pytest.mark.parametrize("who, level, field", CASES)
def test_visibility_table(who: str, level: Confidentiality, field: str) -> None:
    assert visibility(_request(level), AUDIENCES[who], field) is _expected(who, level, field)


def test_every_substance_field_is_outside_the_envelope() -> None:
    assert not SUBSTANCE & ENVELOPE
    assert {"id", "case", "parties", "dates", "status"} <= ENVELOPE


@pytest.mark.parametrize("a, b, same", [
    ("slack:U1", "slack:T0AAA/U1", True),
    ("slack:T0AAA/U1", "slack:U1", True),
    ("slack:T0AAA/U1", "slack:T0AAA/U1", True),
    ("slack:T0AAA/U1", "slack:T0BBB/U1", False),  # the same id in another workspace
    ("slack:U1", "slack:U2", False),
    ("matrix:@a:x.org", "matrix:@a:x.org", True),
    ("matrix:@a:x.org", "matrix:@a:y.org", False),
    ("console:alice", "console:alice", True),
    ("console:alice", "console:bob", False),
    ("console:U1", "slack:U1", False),
    (None, "console:alice", False),
    ("console:alice", None, False),
])
def test_same_user(a: str | None, b: str | None, same: bool) -> None:
    assert same_user(a, b) is same


def test_distinct_users_counts_each_person_once() -> None:
    assert distinct_users(["slack:U1", "slack:T0AAA/U1", "console:a", "slack:T0BBB/U2",
                           "console:a", "slack:U2"]) == ("slack:U1", "console:a", "slack:T0BBB/U2")


_blocks = console_posts


async def test_confidential_thread_reaches_listed_members_never_a_room(testbot: TestBot) -> None:
    """The issue's reproduction: ``:thread R-1`` as alice, then a plain line."""
    await testbot.exec("!liaison open ICC-01/14 to:ba-spo conf:confidential Witness W-17",
                       user="alice", room="icc")
    await testbot.exec(":thread R-1", user="alice", room="icc")
    out = await testbot.exec("the new address is 12 Elm St")
    posts = _blocks(out)
    assert not [p for p in posts if "12 Elm St" in p and not p.startswith("[dm:")]
    dms = {p.split("]")[0][4:] for p in posts if "12 Elm St" in p}
    # the parties' listed members, but not the author (her own room showed it to her)
    assert dms == {"console:bojan", "console:head-ba", "console:head-icc"}
    assert any(p.startswith("[dm:console:bojan] console:alice · icc-otp · R-1: the new address")
               for p in posts)
    # the record keeps it, and a room's show masks it
    show = await testbot.exec("!liaison show R-1", user="bojan", room="ba")
    room_show = "\n".join(p for p in _blocks(show) if p.startswith("[console:ba]"))
    assert "relayed by console:alice" in room_show and "12 Elm St" not in room_show
    assert "text: (confidential)" in room_show
    dm_show = "\n".join(p for p in _blocks(show) if p.startswith("[dm:console:bojan]"))
    assert "12 Elm St" in dm_show


async def test_restricted_thread_still_relays_into_the_other_room(testbot: TestBot) -> None:
    await testbot.exec("!liaison open C-1 to:ba-spo Records", user="alice", room="icc")
    out = await testbot.exec("R-1: the new address is 12 Elm St", user="alice", room="icc")
    assert "[console:ba] [R-1 thread] console:alice · icc-otp: the new address is 12 Elm St" \
        in out
    assert "[dm:" not in out


async def test_file_names_of_a_confidential_request_stay_out_of_rooms(testbot: TestBot) -> None:
    await testbot.exec("!liaison open C-1 to:ba-spo conf:confidential Witness W-17",
                       user="alice", room="icc")
    from liaisonbot.service.desk import Actor

    async with testbot.core.uow() as uow:
        links = await uow.threads.for_request(1)
    root = next(link.thread_root for link in links if link.room == "console:ba")
    start = len(testbot.out)
    assert await testbot.core.desk.relay(Actor("console:bojan", "console:ba", thread_root=root),
                                         "", files=[("w17-identity.pdf", 2048)])
    await testbot.console.settle()
    posts = _blocks("\n".join(testbot.out[start:]))
    assert posts and all(p.startswith("[dm:") for p in posts)
    assert any("w17-identity.pdf" in p for p in posts if p.startswith("[dm:console:alice]"))
    show = await testbot.exec("!liaison show R-1", user="bojan", room="ba")
    room_show = "\n".join(p for p in _blocks(show) if p.startswith("[console:ba]"))
    assert "relayed by console:bojan" in room_show and "w17-identity" not in room_show


async def test_one_identity_for_members_mine_and_confidential_show(sqlite_url: str) -> None:
    """A member listed as ``slack:U0OLENA`` and seen as ``slack:T0AAA/U0OLENA``."""
    offices = copy.deepcopy(BASE_CONFIG["offices"])
    offices[2]["members"] = ["slack:U0OLENA"]  # ua-pgo
    bot = await start_bot(make_settings(sqlite_url, offices=offices))
    olena = "slack:T0AAA/U0OLENA"
    try:
        out = await bot.exec("!liaison open C-1 to:ua-pgo conf:confidential Witness W-17",
                             user="alice", room="icc")
        assert "[dm:slack:U0OLENA]" in out
        assert "R-1 is" not in await bot.exec("!liaison assign R-1 slack:U0OLENA", user=olena,
                                             room="ua")
        mine = await bot.exec("!liaison list C-1 mine", user=olena, room="ua")
        assert "R-1 ·" in mine  # assigned as slack:U0OLENA, asked as slack:T0AAA/U0OLENA
        show = await bot.exec("!liaison show R-1", user=olena, room="ua")
        assert f"[dm:{olena}]" in show and "Witness W-17" in show
        refused = await bot.exec("!liaison show R-1", user="slack:T0AAA/U0MALLORY", room="ua")
        assert "Only the listed members of UA PGO act for it" in refused
    finally:
        await bot.core.close()


def test_a_person_listed_by_both_offices_gets_one_direct_message(sqlite_url: str) -> None:
    from liaisonbot.service.presenter import Presenter

    offices = copy.deepcopy(BASE_CONFIG["offices"])
    offices[0]["members"] = ["slack:U0LIAISON", "console:alice"]
    offices[1]["members"] = ["slack:T0AAA/U0LIAISON", "console:bojan"]
    present = Presenter(make_settings(sqlite_url, offices=offices).directory)
    request = _request(Confidentiality.CONFIDENTIAL)
    assert present.members(request) == ["slack:U0LIAISON", "console:alice", "console:bojan"]
    assert present.is_listed_member(request, "slack:T0BBB/U0LIAISON")
    assert present.member_reader(request, "console:bojan").tz == "Europe/Sarajevo"


@pytest.mark.parametrize("level", list(Confidentiality))
def test_the_policy_gives_each_audience_its_view_and_says_where_substance_goes(
        level: Confidentiality) -> None:
    """``seen`` is the field as an audience may read it (text, mask, or nothing) and
    ``by_direct_message`` where the substance of a change goes: the paths that route and
    redact (desk DMs, card particulars, exports, chases) ask these, never the level."""
    request = _request(level)
    request.person, request.measure, request.missing = "J. Doe", "", "the annex"
    confidential = level is Confidentiality.CONFIDENTIAL
    for field in ("summary", "note", "thread"):
        assert by_direct_message(request, field) is confidential
    room, dm = AUDIENCES["requested room"], AUDIENCES["listed member's DM"]
    assert seen(request, dm, "person") == "J. Doe"
    assert seen(request, room, "person") == (MASK if confidential else "J. Doe")
    assert seen(request, room, "person", mask="") == ("" if confidential else "J. Doe")
    assert seen(request, room, "measure") == ""  # empty stays empty: a mask would tell
    assert seen(request, AUDIENCES["another office's room"], "missing") == ""
    assert seen(request, AUDIENCES["requesting room"], "case") == "C-1"  # the envelope
