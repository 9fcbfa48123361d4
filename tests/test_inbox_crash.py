"""Acknowledged means kept (issue 25): real ``liaisonbot run`` processes SIGKILLed at each stage
of a Slack command, on SQLite and PostgreSQL, then a restart or a surviving replica.

The process kills itself at the named stage (``LIAISONBOT_CRASH_AT``, ``liaisonbot.crashpoint``):

* ``inbox-insert``: the command's row is inserted, not committed; no answer went out;
* ``acked``: the row is committed and the HTTP 200 (Socket Mode: the envelope's ack) written;
* ``work``: inside the command's transaction, its changes and the row's done mark sent;
* ``committed``: that transaction committed, none of its posts (two cards, the reply) sent.

Whatever the stage: a command that got its acknowledgement is done exactly once (one request,
one card in each office's channel, one ephemeral reply through its response URL), one that did
not is not done at all. The survivor is a fresh start of the same configuration, or, on
PostgreSQL, a replica that was running all along. A later command answered by the survivor,
and no inbox row or post left pending, is the barrier before counting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from liaisonbot.crashpoint import STAGES
from liaisonbot.store.db import is_sqlite
from liaisonbot.store.migrate import upgrade_async
from support.bot_process import APP_TOKEN, BotProcess, nothing_pending, scalar
from support.fake_slack import FakeSlack, slash_command_payload
from support.poll import eventually


@contextlib.asynccontextmanager
async def fake_slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as slack:
        slack.add_user("T0DEFAULT", "U0ALICE", "alice", "Alice A")
        slack.add_app_token(APP_TOKEN)
        yield slack


def replies(slack: FakeSlack, name: str) -> list[str]:
    return [c.args.get("text", "") for c in slack.calls("response_url")
            if c.args.get("name") == name]


def cards(slack: FakeSlack, channel: str, case: str = "") -> list[dict[str, object]]:
    """The request cards in ``channel`` (of ``case``, else all): top-level posts that say a
    request was opened (a channel also gets other posts, e.g. a daily audit checkpoint)."""
    return [m for m in slack.messages(channel) if m.get("thread_ts") in (None, m["ts"])
            and m.get("metadata", {}).get("event_type") == "liaisonbot_delivery"
            and f" opened: {case}" in str(m.get("text", ""))]


async def done_once_or_never(slack: FakeSlack, url: str, survivor: BotProcess, *,
                             acknowledged: bool) -> None:
    """The barrier (a later command answered, nothing pending), then the counts for C-1."""
    assert await survivor.command(slack, "open C-2 to:ba-spo Later", "later") == 200
    async def settled() -> bool:
        return bool(replies(slack, "later") and cards(slack, "C0BA", "C-2,")
                    and await nothing_pending(url))

    await eventually(settled, timeout=60, interval=0.1, what="the survivor settled")
    expected = 1 if acknowledged else 0
    opened = await scalar(url, "SELECT count(*) FROM request WHERE case_ref = 'C-1'")
    assert (opened, len(cards(slack, "C0BA", "C-1,")), len(cards(slack, "C0ICC", "C-1,")),
            len(replies(slack, "first"))) == (expected,) * 4, survivor.log.read_text()[-3000:]
    if acknowledged:
        assert "C-1" in replies(slack, "first")[0]
    assert await scalar(url, "SELECT count(*) FROM inbox WHERE status = 'failed'") == 0


@pytest.mark.parametrize("stage", STAGES)
async def test_a_command_killed_at_any_stage_is_done_once_after_a_restart(
        any_url: str, tmp_path: Path, stage: str) -> None:
    await upgrade_async(any_url)
    async with fake_slack() as slack:
        first = BotProcess(tmp_path, "first", url=any_url, slack=slack, crash_at=stage)
        again: BotProcess | None = None
        try:
            await first.up()
            status = await first.command(slack, "open C-1 to:ba-spo Bank records", "first")
            assert await first.exited() == -9  # it killed itself at the stage
            assert (status == 200) == (stage != "inbox-insert"), status
            again = BotProcess(tmp_path, "again", url=any_url, slack=slack)
            await again.up()
            await done_once_or_never(slack, any_url, again, acknowledged=status == 200)
        finally:
            first.kill()
            if again is not None:
                again.terminate()
                assert await again.exited() == 0


@pytest.mark.parametrize("stage", STAGES)
async def test_a_surviving_replica_does_what_the_killed_one_acknowledged(
        pg_url: str, tmp_path: Path, stage: str) -> None:
    await upgrade_async(pg_url)
    async with fake_slack() as slack:
        first = BotProcess(tmp_path, "first", url=pg_url, slack=slack, crash_at=stage)
        replica = BotProcess(tmp_path, "replica", url=pg_url, slack=slack)
        try:
            await first.up()
            await replica.up()
            status = await first.command(slack, "open C-1 to:ba-spo Bank records", "first")
            assert await first.exited() == -9
            assert (status == 200) == (stage != "inbox-insert"), status
            await done_once_or_never(slack, pg_url, replica, acknowledged=status == 200)
        finally:
            first.kill()
            replica.terminate()
            assert await replica.exited() == 0


@pytest.mark.parametrize("stage", STAGES)
async def test_socket_mode_a_command_killed_at_any_stage_is_done_once_after_a_restart(
        any_url: str, tmp_path: Path, stage: str) -> None:
    """The same over Socket Mode: the envelope's ack is the acknowledgement."""
    await upgrade_async(any_url)
    async with fake_slack() as slack:
        first = BotProcess(tmp_path, "first", url=any_url, slack=slack, mode="socket",
                           crash_at=stage)
        again: BotProcess | None = None
        try:
            await first.up()
            await eventually(lambda: slack.socket_connections == 1, what="socket connected")
            payload = slash_command_payload(text="open C-1 to:ba-spo Bank records",
                                            user_id="U0ALICE", channel_id="C0ICC",
                                            response_url=slack.response_url("first"))
            ack = await slack.socket_send("slash_commands", payload,
                                          accepts_response_payload=True)
            assert await first.exited() == -9
            # Once the fake has seen the socket close, it has read everything sent before.
            await eventually(lambda: slack.socket_connections == 0, what="socket closed")
            acknowledged = ack.done() and not ack.cancelled()
            assert acknowledged == (stage != "inbox-insert")
            again = BotProcess(tmp_path, "again", url=any_url, slack=slack, mode="socket")
            await again.up()
            await eventually(lambda: slack.socket_connections == 1, what="socket again")
            await done_once_or_never(slack, any_url, again, acknowledged=acknowledged)
        finally:
            first.kill()
            if again is not None:
                again.terminate()
                assert await again.exited() == 0


async def test_a_stopping_process_hands_back_the_commands_it_has_not_started(
        any_url: str, tmp_path: Path) -> None:
    """SIGTERM with acknowledged commands still waiting for a lane (the fake Slack holds
    ``users.info``, so the first ones cannot finish): the process exits within 5 s, and the
    next start (SQLite) or a replica (PostgreSQL) does every acknowledged command once."""
    await upgrade_async(any_url)
    async with fake_slack() as slack:
        slack.delay("users.info", 30)  # every command's work waits for the author's name
        first = BotProcess(tmp_path, "first", url=any_url, slack=slack)
        survivor: BotProcess | None = None
        if not is_sqlite(any_url):
            survivor = BotProcess(tmp_path, "replica", url=any_url, slack=slack)
        try:
            await first.up()
            if survivor is not None:
                await survivor.up()
            statuses = await asyncio.gather(*(
                first.command(slack, f"open C-{n} to:ba-spo Records {n}", f"r{n}",
                              user="U0BOB") for n in range(10)))
            assert statuses == [200] * 10
            loop = asyncio.get_running_loop()
            first.terminate()
            started = loop.time()
            assert await first.exited() == 0
            assert loop.time() - started < 5
            slack.delay("users.info", 0)
            if survivor is None:
                survivor = BotProcess(tmp_path, "again", url=any_url, slack=slack)
                await survivor.up()

            async def all_done() -> bool:
                return all(replies(slack, f"r{n}") for n in range(10)) \
                    and await nothing_pending(any_url)

            await eventually(all_done, timeout=60, interval=0.1, what="every command done")
            assert await scalar(any_url, "SELECT count(*) FROM request") == 10
            assert len(cards(slack, "C0BA")) == 10
            assert all(len(replies(slack, f"r{n}")) == 1 for n in range(10))
            levels = {json.loads(line)["level"] for line in first.log.read_text().splitlines()
                      if line.startswith("{")}
            assert levels <= {"info", "debug"}, levels  # a normal stop says nothing louder
        finally:
            first.kill()
            if survivor is not None:
                survivor.terminate()
                assert await survivor.exited() == 0
