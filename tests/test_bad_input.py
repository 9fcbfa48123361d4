"""One regression test per finding in ../shared/findings/fuzz.md (issue 11, item 8).

Each row of ``FINDINGS`` is a reproduction from that file: the lines fed to a fresh console
(the ``testbot`` of conftest, on the real store) and what must now hold. Rows marked ``pg``
are the PostgreSQL findings and run on both databases; the rest run on SQLite.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from conftest import TestBot, make_settings, start_bot
from liaisonbot.chat.console.repl import read_line
from liaisonbot.chat.matrix.sync import MatrixSync
from liaisonbot.chat.slack.listeners import ENTRY, Door
from liaisonbot.domain.text import echo, printable_lines, valid_text
from liaisonbot.service import messages as m
from liaisonbot.service.reports import verify_audit
from test_cli import ROOT

NOW = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
OPEN = "!liaison open C-1 to:ba-spo Bank records"
NOT_PARTY = re.compile(r"R-\d+ does not exist or ICC OTP is not party to it\.")
_RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class Finding:
    name: str
    lines: tuple[str, ...]
    expect: str  # a regex the last line's output must match
    pg: bool = False
    max_len: int = 400  # the last reply's length bound


FINDINGS = [
    # The process dies.
    Finding("thread message beyond the id range", (OPEN, "R-99999999999: x"),
            r"^# R-99999999999 has no thread in console:icc\.$", pg=True),
    Finding(":thread beyond the id range then close", (OPEN, ":thread R-2147483648",
                                                       "!liaison close"),
            r"^\[console:icc\] The request id is missing\.", pg=True),
    Finding("latin-1 thread message (lone surrogate)", (OPEN, "R-1: caf\udce9 au lait"),
            r"^\[console:ba\] \[R-1 thread\] console:alice · icc-otp: caf\ufffd au lait$"),
    Finding("surrogate from JSON in a command", ("!liaison help \ud800",),
            r"There is no command '\ufffd'"),
    Finding(":now year 1", (":now 0001-01-01T00:00+01:00",), r"^# The clock runs from 1971"),
    # Internal error instead of an answer.
    Finding("open due year 9999", ("!liaison open x due:9999-12-30 to:ba-spo x",),
            r"^\[console:icc\] The due date 9999-12-30 is too far ahead; give one within 100 "
            r"years\.$"),
    Finding("extend to 9999", (OPEN, "!liaison extend R-1 9999-12-31 x"),
            r"The new due date 9999-12-31 is too far ahead"),
    Finding("snooze to 9999", (OPEN, "!liaison snooze R-1 9999-12-31 hold"),
            r"The snooze date 9999-12-31 is too far ahead"),
    Finding("ack eta 99999w", (OPEN, ":as bojan", ":in ba-spo", "!liaison ack R-1 eta:99999w x"),
            r"The eta 99999w is too far ahead"),
    Finding("due in year 1", ("!liaison open x due:0001-01-01 to:ba-spo x",),
            r"The due date 0001-01-01 is already past"),
    Finding("ack beyond the id range", ("!liaison ack R-999999999999",), NOT_PARTY.pattern,
            pg=True),
    Finding("reopen beyond 32 bits", ("!liaison reopen 4294967296 x",), NOT_PARTY.pattern,
            pg=True),
    Finding("surrogates in a summary", ("!liaison open C-1 to:ba-spo Bank records \udcff\udcfe",),
            r"Summary: Bank records \ufffd\ufffd", max_len=2000),
    # No answer.
    Finding(":now 9999", (":now 9999-12-31T23:59+00:00",), r"^# The clock runs from"),
    Finding(":now 3000", (":now 3000-01-01T00:00Z",), r"^# The clock runs from"),
    Finding(":advance 99999d", (":advance 99999d",), r"^# The clock moves at most 400 days"),
    Finding(":advance 99999w", (":advance 99999w",), r"^# The clock moves at most 400 days"),
    Finding(":now 2 years ahead", (":now 2028-12-01T00:00Z",), r"^# The clock moves at most"),
    # Unclear answers.
    Finding(":as 625 x", (":as " + "x" * 625,), r"^# 'x{39}…' is not a user", max_len=120),
    Finding(":as 1 MiB", (":as " + "x" * (1 << 20),), r"^# 'x{39}…' is not a user", max_len=120),
    Finding("a 1 MiB command", ("!liaison open C-1 to:ba-spo " + "y" * (1 << 20),),
            r"^\[console:icc\] That command is far longer than the limit of 8000 characters\.$"),
    Finding("434 x as a verb", ("!liaison " + "x" * 434,), r"I do not know the command 'x{39}…'"),
    Finding("help Rhttp: + 553 x", ("!liaison help Rhttp:" + "x" * 553,),
            r"There is no command 'Rhttp:x{33}…'"),
    Finding("list x + 750 x", ("!liaison list x" + "x" * 750,), r"'x{39}…' is not a case"),
    Finding("open to: + 750 x", ("!liaison open x to:" + "x" * 750 + " y",),
            r"There is no office 'x{39}…'"),
    Finding("kind: + 625 x", ("!liaison open x kind:" + "x" * 625 + " to:ba-spo y",),
            r"kind:x{39}… is not a kind"),
    Finding("conf: + 625 x", ("!liaison open x conf:" + "x" * 625 + " to:ba-spo y",),
            r"conf:x{39}… is not a level"),
    Finding("bidi override in kind", ("!liaison open x kind:\u202eALM to:x x",),
            r"kind:alm is not a kind"),
    Finding("escape sequence in conf", ("!liaison open x conf:\x1b[2Jconfidential to:x x",),
            r"conf:\[2jconfidential is not a level"),
    # Noticed along the way.
    Finding(":now<TAB>", (":now\t2026-12-02T09:00+01:00",), r"^# clock 2026-12-02T08:00"),
    Finding(":as without argument", (":as",), r"^# :as needs a user", max_len=120),
    Finding(":in without argument", (":in",), r"^# :in needs a room", max_len=120),
    Finding(":thread garbage", (":thread garbage",),
            r"^# 'garbage' is not a request id like R-7"),
]


async def _replay(bot: TestBot, finding: Finding) -> str:
    out = ""
    for line in finding.lines:
        out = await bot.exec(line)
    return out


def _check(finding: Finding, out: str) -> None:
    assert re.search(finding.expect, out, re.MULTILINE), out[:500]
    assert len(out) <= finding.max_len, len(out)
    assert not _RAW.search(out), repr(out[:300])
    assert "Traceback" not in out and m.INTERNAL_ERROR not in out


@pytest.mark.parametrize("finding", [f for f in FINDINGS if not f.pg], ids=lambda f: f.name)
async def test_finding_on_sqlite(sqlite_url: str, finding: Finding) -> None:
    bot = await start_bot(make_settings(sqlite_url), now=NOW)
    try:
        _check(finding, await _replay(bot, finding))
        assert await verify_audit(bot.core.uow) is None
    finally:
        await bot.core.close()


@pytest.mark.parametrize("finding", [f for f in FINDINGS if f.pg], ids=lambda f: f.name)
async def test_finding_on_both_databases(any_url: str, finding: Finding) -> None:
    bot = await start_bot(make_settings(any_url), now=NOW)
    try:
        _check(finding, await _replay(bot, finding))
        assert await verify_audit(bot.core.uow) is None
    finally:
        await bot.core.close()


async def test_far_dates_leave_nothing_stored_and_valid_commands_still_work(
        testbot: TestBot) -> None:
    await testbot.exec("!liaison open x due:9999-12-30 to:ba-spo x")
    async with testbot.core.uow() as tx:
        assert await tx.requests.get(1) is None
    out = await testbot.exec(OPEN + " due:2036-11-01")
    assert "R-1 opened" in out


async def test_console_output_cleans_user_text(testbot: TestBot) -> None:
    """A summary holding an escape sequence or U+2028 neither clears the terminal nor starts
    what looks like another post: continuation lines are indented."""
    out = await testbot.exec("!liaison open C-1 to:ba-spo a\x1b[2J\u2028[console:icc] fake")
    assert "\x1b" not in out and "\u2028" not in out
    starts = [line for line in out.splitlines() if line.startswith("[")]
    assert all("fake" not in line.split("]")[0] for line in starts)
    # Stored data from before the edge cleaning renders clean too.
    block = printable_lines("Summary: x\u2028[console:icc] fake\x1b[2J\u202e")
    assert block == ["Summary: x", "[console:icc] fake[2J"]


@pytest.mark.parametrize("text,expected", [
    ("caf\udce9", "caf\ufffd"), ("a\x00b\x1b[2J\x9bc", "ab[2Jc"), ("a\r\nb\rc\u2028d", "a\nb\nc\nd"),
    ("tab\tkept", "tab\tkept"), ("x" * 20_000, "x" * 16_000)])
def test_valid_text(text: str, expected: str) -> None:
    assert valid_text(text) == expected
    valid_text(text).encode("utf-8")  # always encodable, so always hashable


def test_echo_is_short_and_clean() -> None:
    assert echo("\u202eabc\u200b\x1b[0m") == "abc[0m"
    assert echo("y" * 1000) == "y" * 39 + "…"
    assert echo("a\nb") == "a b"


def test_console_reads_invalid_utf8_as_replacement() -> None:
    import io

    stream = io.BytesIO(b"!liaison help \xff\nhello \xc3(\n")
    assert read_line(stream) == "!liaison help \ufffd\n"
    assert read_line(stream) == "hello \ufffd(\n"
    assert read_line(stream) is None


@pytest.fixture
def config(tmp_path: Path) -> Path:
    text = (ROOT / "config" / "liaisonbot.toml").read_text()
    path = tmp_path / "liaisonbot.toml"
    path.write_text(text.replace("sqlite+aiosqlite:///var/liaisonbot.db",
                                 f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"))
    return path


def _console(config: Path, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    return subprocess.run([sys.executable, "-m", "liaisonbot.cli", "console", "--config",
                           str(config), *args], input=stdin, capture_output=True, timeout=120,
                          cwd=ROOT, env=env)


def test_console_survives_invalid_utf8_and_year_1(config: Path) -> None:
    result = _console(config, "--now", "2026-12-01T08:30+00:00",
                      stdin=b"!liaison help \xff\nhello \xc3(\n:now 0001-01-01T00:00+01:00\n"
                            b"!liaison open C-1 to:ba-spo caf\xe9\nR-1: caf\xe9 au lait\n"
                            b"!liaison help\n")
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode()
    assert "There is no command '\ufffd'" in out
    assert "# The clock runs from" in out
    assert "R-1 opened" in out and "caf\ufffd au lait" in out
    assert "liaisonbot commands" in out  # still answering after all of it
    assert b"Traceback" not in result.stderr


@pytest.mark.parametrize("args", [
    ("--as", "console:a b"), ("--as", "🙂"), ("--as", "console:alice\u202e"),
    ("--as", "matrix:@Alice:example.org"), ("--in", "nowhere"), ("--in", "console:a b"),
    ("--now", "garbage"), ("--now", "2026-02-29T10:00"), ("--now", "0001-01-01T00:00+01:00"),
    ("--now", "9999-12-31T23:59:59+00:00"), ("--now", "0001-01-01T00:00+00:00")])
def test_bad_console_arguments_exit_2_with_one_line(config: Path, args: tuple[str, str]) -> None:
    result = _console(config, *args)
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("liaisonbot: "), lines
    assert "\u202e" not in lines[0] and len(lines[0]) < 200


async def test_a_slack_request_the_door_cannot_read_never_reaches_bolt() -> None:
    """A payload a recorder cannot read is logged and acknowledged without an inbox entry
    (Slack would only send it again); the next one is recorded as usual. (A failing work is
    retried from the inbox: tests/test_inbox.py.)"""
    door = Door()
    acks: list[int] = []

    async def ack() -> None:
        acks.append(1)

    broken: dict[str, Any] = {}
    await door.button_received(ack=ack, body={"channel": {}}, context=broken,  # type: ignore[call-arg]
                               action={"action_id": "lb_ack", "value": "R-1"})
    good: dict[str, Any] = {}
    await door.button_received(ack=ack, context=good,  # type: ignore[call-arg]
                               body={"user": {"id": "U1", "team_id": "T1"},
                                     "channel": {"id": "C1"}},
                               action={"action_id": "lb_ack", "value": "R-1",
                                       "action_ts": "1.2"})
    assert ENTRY not in broken and acks == [1, 1]
    assert good[ENTRY].key == "action:T1:U1:1.2" and good[ENTRY].kind == "action"


async def test_a_matrix_event_error_does_not_stop_the_batch() -> None:
    client = SimpleNamespace(add_to_device_callback=lambda *_: None)
    sync = MatrixSync(client, settings=SimpleNamespace(),  # type: ignore[arg-type]
                      desk=SimpleNamespace(), uow=SimpleNamespace(),  # type: ignore[arg-type]
                      clock=SimpleNamespace(), key_lock=asyncio.Lock())  # type: ignore[arg-type]
    seen: list[str] = []

    async def event(room_id: str, ev: Any) -> None:
        seen.append(ev.event_id)
        if ev.event_id == "$bad":
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")

    sync._event = event  # type: ignore[method-assign]
    timeline = SimpleNamespace(events=[SimpleNamespace(event_id="$bad"),
                                       SimpleNamespace(event_id="$good")],
                               limited=False, prev_batch=None)
    await sync._timeline("!r:example.org", timeline)
    assert seen == ["$bad", "$good"]


def test_slack_dedupe_key_of_a_text_with_a_lone_surrogate() -> None:
    """Slack JSON may carry ``"\\ud800"``: the dedupe key is computed before the desk's edge."""
    from liaisonbot.chat.slack.listeners import slash_base_key

    assert slash_base_key("T1", "U1", "C1", "open C-1 to:x \ud800").startswith("slash:T1:U1:C1:")


@pytest.mark.parametrize("ref", ["matrix:!abc:exam\u202cple.org", "matrix:!a\x07b:example.org",
                                 "matrix:!ab\u200bc", "matrix:!abc:example.org\u2028"])
def test_room_refs_hold_no_invisible_characters(ref: str) -> None:
    """Found by the fuzz suite: ``:in`` took a Matrix room id with a bidi control or a bell
    in it, and ``:where`` printed it raw."""
    from liaisonbot.domain.refs import is_room_ref

    assert not is_room_ref(ref)
    assert is_room_ref("matrix:!abc:example.org") and is_room_ref("matrix:!Abc123")
