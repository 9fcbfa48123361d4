"""A unit of work cancelled at any await leaves no transaction open and no lock held (issue 21).

``MatrixPlatform.stop`` cancels the sync task, which runs commands inline, and then writes the
sync token at once; a Slack lane or a shutdown may cancel a command anywhere. Here a command
(``ack R-1``) is cancelled at each of its statements in turn (as the statement is sent: the
cancellation lands on the driver's await of it), at its commit, and after each number of loop
steps from its start, on SQLite and on PostgreSQL; each time another writer must then commit
at once (SQLite: within 5 s, not after the 30 s busy timeout), and on PostgreSQL no connection
of the bot's may be left idle in a transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event, text

from conftest import MONDAY_10, TestBot, make_settings, start_bot
from liaisonbot.service.desk import Actor


async def _another_writer_commits(bot: TestBot, n: int) -> None:
    async def write() -> None:
        async with bot.core.uow() as tx:
            await tx.state.put(f"after-cancel-{n}", "ok", MONDAY_10)
            await tx.commit()
        async with bot.core.uow(read_only=True) as tx:
            assert await tx.state.get(f"after-cancel-{n}") == "ok"

    await asyncio.wait_for(write(), 5)
    engine = bot.core.engine
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            stuck = (await conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state LIKE 'idle in transaction%'"))).scalar()
        assert stuck == 0


def _ack(bot: TestBot, n: int) -> asyncio.Task[Any]:
    return asyncio.create_task(bot.core.desk.handle_command(
        Actor("console:bojan", "console:ba"), f"ack R-1 step {n}", event_id=f"ev-ack-{n}"))


async def _settle(task: asyncio.Task[Any]) -> bool:
    """True when the task was cancelled, False when it ran to its end."""
    try:
        await task
    except asyncio.CancelledError:
        return True
    return False


@pytest.fixture
async def bot(any_url: str) -> Any:
    bot = await start_bot(make_settings(any_url))
    await bot.exec("!liaison open C-1 to:ba-spo Bank records", user="alice", room="icc")
    try:
        yield bot
    finally:
        await bot.core.close()


def _cancel_on(engine: Any, name: str, when: Callable[[], bool]) -> Callable[[], None]:
    """Cancel the current task from inside the engine's ``name`` event when ``when()``; returns
    what removes the listener."""
    def listener(*_: Any) -> None:
        if when():
            task = asyncio.current_task()
            assert task is not None
            task.cancel()

    event.listen(engine.sync_engine, name, listener)
    return lambda: event.remove(engine.sync_engine, name, listener)


async def test_a_command_cancelled_at_each_statement_leaves_nothing_held(bot: TestBot) -> None:
    engine = bot.core.engine
    cancelled_at = 0
    n = 0
    while True:
        n += 1
        seen = 0

        def nth() -> bool:
            nonlocal seen
            seen += 1
            return seen == n  # noqa: B023  (read when the statement runs)

        remove = _cancel_on(engine, "before_cursor_execute", nth)
        try:
            was_cancelled = await _settle(_ack(bot, n))
        finally:
            remove()
        await _another_writer_commits(bot, n)
        if not was_cancelled:
            break
        cancelled_at += 1
    # The command has several statements (BEGIN, the mark, the read, the entry, the
    # write-back, the thread rooms, the posts), and every one of them was a cancellation point.
    assert cancelled_at >= 6
    outcome = await bot.core.desk.handle_command(Actor("console:bojan", "console:ba"),
                                                 "ack R-1 at last", event_id="ev-final")
    assert outcome is not None and outcome.ok


async def test_a_command_cancelled_at_its_commit_stores_nothing(bot: TestBot) -> None:
    engine = bot.core.engine
    remove = _cancel_on(engine, "commit", lambda: True)
    try:
        assert await _settle(_ack(bot, 1))
    finally:
        remove()
    await _another_writer_commits(bot, 1)
    async with bot.core.uow(read_only=True) as tx:
        entries = await tx.history.for_request(1)
    # The commit was cancelled as it was sent: either it took effect whole or not at all.
    assert [e.action for e in entries] in (["opened"], ["opened", "acknowledged"])


async def test_a_command_cancelled_after_any_number_of_loop_steps(bot: TestBot) -> None:
    n = 0
    while True:
        task = _ack(bot, n)
        for _ in range(n):
            await asyncio.sleep(0)
        task.cancel()
        was_cancelled = await _settle(task)
        await _another_writer_commits(bot, n)
        if not was_cancelled or n > 400:
            break
        n += 1
    assert n > 5
