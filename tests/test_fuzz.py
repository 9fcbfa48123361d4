"""The fuzz suite (issue 11): seeded, reproducible console input against the whole desk.

``support.fuzz.console_lines`` builds the lines (grammar-aware mutations of every verb and
option, Unicode and control characters, bidi and zero-width marks, very long lines,
Slack/Matrix/HTML injection, huge ids, extreme dates, console meta-commands). They are fed
one by one to the console (``Console.line``, as stdin would): 10,000 on SQLite, 1,500 on
PostgreSQL, and 900 more in short sessions on fresh stores. Every answer is checked:

- no exception escapes and the internal-error sentence never appears;
- each ``!liaison`` line is answered in its room (one sentence or a card), without raw
  control, bidi or separator characters, and never echoes an over-long command back;
- plain lines get nothing, or are relayed into a request's thread, or one ``#`` remark;
- meta-commands answer in short ``#`` lines (or the console help);
- afterwards the history chain verifies and a plain command still works.

A failure names the seed and the line's index: ``console_lines(SEED, n)[index]`` replays it.
"""

from __future__ import annotations

import re
import time

import pytest

from conftest import TestBot, make_settings, start_bot
from liaisonbot.chat.console.repl import PREFIX
from liaisonbot.domain.text import valid_text
from liaisonbot.service import messages as m
from liaisonbot.service.reports import verify_audit
from support.fuzz import console_lines

SEED = 20261201
_RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
#: A printed line: at most a relayed message (inbound text is cut at 16,000 characters; `show`
#: lists relays in the history) with its prefix.
MAX_LINE = 16_500
MAX_REMARK = 300


def _kind(line: str) -> str:
    stripped = valid_text(line).strip()  # as the console reads it
    if not stripped:
        return "empty"
    if stripped.startswith(":"):
        return "meta"
    return "command" if stripped.split()[0].lower() == PREFIX else "plain"


def _check(index: int, line: str, room: str, out: str) -> None:
    where = f"seed {SEED}, line {index}: {line[:120]!r} → {out[:300]!r}"
    assert "Traceback" not in out and m.INTERNAL_ERROR not in out, where
    assert not _RAW.search(out), where
    lines = out.split("\n") if out else []
    kind = _kind(line)
    if kind == "command":
        assert any(x.startswith(f"[{room}] ") for x in lines), where
        assert all(len(x) <= MAX_LINE for x in lines), where
        if len(line) > 8_000:  # refused for its length: the reply does not carry it back
            assert len(out) < 2_000, where
    elif kind == "plain":
        for x in lines:
            if x.startswith("#"):
                assert len(x) <= MAX_REMARK, where
            elif x.startswith("[dm:"):  # a confidential request's thread: members only
                assert " · " in x and len(x) <= MAX_LINE, where
            elif x.startswith("["):
                assert "thread] " in x and len(x) <= MAX_LINE, where
            else:
                assert x.startswith("    ") and len(x) <= MAX_LINE, where
    elif kind == "meta":
        remarks = [x for x in lines if x.startswith("#")]
        assert all(len(x) <= MAX_REMARK for x in remarks), where
        assert all(len(x) <= MAX_LINE for x in lines), where
    else:
        assert out == "", where


async def _storm(bot: TestBot, lines: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for index, line in enumerate(lines):
        room = bot.console.room
        out = await bot.exec(line)
        _check(index, line, room, out)
        kind = _kind(line)
        counts[kind] = counts.get(kind, 0) + 1
    return counts


async def _after(bot: TestBot) -> None:
    assert await verify_audit(bot.core.uow) is None
    bot.console.thread = None
    out = await bot.exec("!liaison help ack", user="alice", room="icc")
    assert out == ('[console:icc] Usage: ack R-n [received:DATE] [ref:"TEXT"] [contact:"TEXT"] '
                   "[eta:DATE] [at:DATETIME] [NOTE]")
    out = await bot.exec("!liaison open FUZZ-1 to:ba-spo After the storm")
    assert re.search(r"\[console:ba\] R-\d+ opened: FUZZ-1", out), out


def test_the_lines_are_reproducible() -> None:
    assert console_lines(SEED, 300) == console_lines(SEED, 300)
    assert console_lines(SEED, 300) != console_lines(SEED + 1, 300)


async def test_fuzz_console_on_sqlite(sqlite_url: str) -> None:
    lines = console_lines(SEED, 10_000)
    bot = await start_bot(make_settings(sqlite_url))
    try:
        started = time.monotonic()
        counts = await _storm(bot, lines)
        assert sum(counts.values()) == 10_000
        assert counts["command"] > 3_000 and counts["meta"] > 1_500 and counts["plain"] > 1_500
        await _after(bot)
        print(f"fuzz sqlite: {counts} in {time.monotonic() - started:.0f} s")
    finally:
        await bot.core.close()


async def test_fuzz_console_on_postgresql(pg_url: str) -> None:
    lines = console_lines(SEED + 1, 1_500)
    bot = await start_bot(make_settings(pg_url))
    try:
        counts = await _storm(bot, lines)
        assert sum(counts.values()) == 1_500
        await _after(bot)
    finally:
        await bot.core.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_fuzz_short_sessions(sqlite_url: str, seed: int) -> None:
    """Fresh deployments: the first lines of a session meet an empty store."""
    bot = await start_bot(make_settings(sqlite_url))
    try:
        await _storm(bot, console_lines(seed, 300)[3:])
        await _after(bot)
    finally:
        await bot.core.close()
