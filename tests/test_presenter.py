"""Every date in every post is in its reader's zone: offices in The Hague, Tokyo and New York
share requests; cards, change notes (extend, ack eta, snooze), replies, nudges and digests are
each read in the room's own office zone, whoever acted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from conftest import TestBot, make_settings, start_bot

OFFICES = [
    {"slug": "icc-otp", "name": "ICC OTP", "timezone": "Europe/Amsterdam",
     "working_hours": "09:00-17:30", "rooms": ["console:icc"], "members": ["console:alice"]},
    {"slug": "jp-ppo", "name": "JP PPO", "timezone": "Asia/Tokyo",
     "working_hours": "09:00-17:30", "rooms": ["console:tokyo"]},
    {"slug": "us-doj", "name": "US DOJ", "timezone": "America/New_York",
     "working_hours": "09:00-17:00", "rooms": ["console:ny"]},
]


@pytest.fixture
async def bot(sqlite_url: str) -> AsyncIterator[TestBot]:
    testbot = await start_bot(make_settings(sqlite_url, offices=OFFICES))
    yield testbot
    await testbot.core.close()


def posts(out: str, room: str) -> list[str]:
    """The posts printed into ``room`` (each a block starting ``[room]``)."""
    found: list[str] = []
    current: list[str] | None = None
    for line in out.splitlines():
        if line.startswith("["):
            current = [line] if line.startswith(f"[{room}]") else None
            if current is not None:
                found.append("")
        if current is not None:
            found[-1] += line + "\n"
    return found


def one(out: str, room: str, needle: str) -> str:
    matching = [p for p in posts(out, room) if needle in p]
    assert len(matching) == 1, (room, needle, out)
    return matching[0]


async def test_cards_and_change_notes_in_each_rooms_zone(bot: TestBot) -> None:
    # The Hague opens a request to Tokyo, due at Tokyo's close of business.
    out = await bot.exec("!liaison open C-1 to:jp-ppo due:2026-12-21 Records", user="alice",
                         room="icc")
    assert "due Mon 2026-12-21 17:30 JST" in one(out, "console:tokyo", "R-1 opened")
    assert "due Mon 2026-12-21 09:30 CET" in one(out, "console:icc", "R-1 opened")

    # ICC extends: Tokyo's room reads Tokyo time (the report), ICC's reads CET.
    out = await bot.exec("!liaison extend R-1 2026-12-28 holidays", user="alice", room="icc")
    assert "due now Mon 2026-12-28 17:30 JST" in one(out, "console:tokyo", "R-1 extended")
    assert "due now Mon 2026-12-28 09:30 CET" in one(out, "console:icc", "R-1 extended by")
    assert "R-1: due now Mon 2026-12-28 09:30 CET" in out  # the reply to Alice

    # Tokyo acknowledges with an expected date: ICC reads it in CET.
    out = await bot.exec("!liaison ack R-1 eta:2026-12-24 checking", user="kenji",
                         room="tokyo")
    assert "answer expected Thu 2026-12-24 09:30 CET" in one(out, "console:icc",
                                                             "R-1 acknowledged by")
    assert "answer expected Thu 2026-12-24 17:30 JST" in one(out, "console:tokyo",
                                                             "R-1 acknowledged by")

    # ICC holds the nudges: Tokyo reads until when in JST.
    out = await bot.exec("!liaison snooze R-1 2026-12-29 waiting", user="alice", room="icc")
    assert "nudges held until Tue 2026-12-29 17:30 JST" in one(out, "console:tokyo",
                                                                "R-1 snoozed by")
    assert "nudges held until Tue 2026-12-29 09:30 CET" in one(out, "console:icc",
                                                                "R-1 snoozed by")

    # show, list: the reader's zone, whatever the history recorded
    show = await bot.exec("!liaison show R-1", user="kenji", room="tokyo")
    assert "due: Mon 2026-12-21 17:30 JST → Mon 2026-12-28 17:30 JST" in show
    listing = await bot.exec("!liaison list C-1", user="alice", room="icc")
    assert "due Mon 2026-12-28 09:30 CET" in listing


async def test_nudges_and_digests_in_each_rooms_zone(bot: TestBot) -> None:
    out = await bot.exec("!liaison open C-1 to:us-doj due:2026-12-10 Witness list",
                         user="alice", room="icc")
    assert "due Thu 2026-12-10 17:00 EST" in one(out, "console:ny", "R-1 opened")
    assert "due Thu 2026-12-10 23:00 CET" in one(out, "console:icc", "R-1 opened")
    start = len(bot.out)
    await bot.console.advance_to(datetime(2026, 12, 11, 15, tzinfo=UTC))  # Fri 10:00 in NY
    out = "\n".join(bot.out[start:])
    ack = one(out, "console:ny", "Reminder: R-1")
    assert "due for acknowledgement Mon 2026-12-07 17:00 EST" in ack
    answer = one(out, "console:ny", "Reminder 1: R-1")
    assert "was due Thu 2026-12-10 17:00 EST" in answer and "CET" not in answer
    # each working morning from two business days before the due date, in each office's zone
    ny_digests = [p for p in posts(out, "console:ny") if "Morning digest for US DOJ" in p]
    assert len(ny_digests) == 4  # Tue, Wed, Thu (due within two business days), Fri (overdue)
    assert "1 overdue" in ny_digests[-1]
    assert all("due Thu 2026-12-10 17:00 EST" in d for d in ny_digests)
    icc_digests = [p for p in posts(out, "console:icc") if "Morning digest for ICC OTP" in p]
    assert icc_digests and all("due Thu 2026-12-10 23:00 CET" in d for d in icc_digests)
    assert "[console:icc] [R-1 thread] Reminder 1 sent to US DOJ for R-1." in out


async def test_empty_lists_say_so_in_one_sentence(bot: TestBot) -> None:
    assert "No open requests in C-9 that ICC OTP is party to." in await bot.exec(
        "!liaison list C-9", user="alice", room="icc")
    assert "No requests in C-9 that ICC OTP is party to." in await bot.exec(
        "!liaison list C-9 all", user="alice", room="icc")
    assert "Nothing overdue for JP PPO." in await bot.exec("!liaison overdue", user="kenji",
                                                           room="tokyo")
