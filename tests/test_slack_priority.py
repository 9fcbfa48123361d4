"""Acks first (issue 16): work after a Slack ack waits for pending acks, in bounded lanes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from liaisonbot.chat.slack.priority import AckFirst
from liaisonbot.domain.cards import Post
from liaisonbot.service.ports import Delivery
from support.poll import eventually
from test_slack_harness import running_bot


async def _spin(times: int = 20) -> None:
    for _ in range(times):
        await asyncio.sleep(0)


async def test_work_waits_while_an_ack_is_pending_and_starts_after_it() -> None:
    gate = AckFirst(lanes=4, max_wait=60)
    started: list[int] = []

    async def work(n: int) -> None:
        async with gate.lane():
            started.append(n)

    gate.ack_started()
    gate.ack_started()
    tasks = [asyncio.create_task(work(n)) for n in range(3)]
    await _spin()
    assert started == []  # two acks pending: nothing runs
    gate.ack_done()
    await _spin()
    assert started == []  # one still pending
    gate.ack_done()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert sorted(started) == [0, 1, 2]


async def test_lanes_bound_the_work_running_at_once() -> None:
    gate = AckFirst(lanes=2, max_wait=60)
    running = peak = 0
    release = asyncio.Event()

    async def work() -> None:
        nonlocal running, peak
        async with gate.lane():
            running += 1
            peak = max(peak, running)
            await release.wait()
            running -= 1

    tasks = [asyncio.create_task(work()) for _ in range(6)]
    await _spin()
    assert (running, peak) == (2, 2)
    release.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert (running, peak) == (0, 2)


async def test_a_stream_of_acks_slows_the_work_but_never_starves_it() -> None:
    gate = AckFirst(lanes=1, max_wait=0.01)
    gate.ack_started()  # never done: acks keep coming
    ran = asyncio.Event()

    async def work() -> None:
        async with gate.lane():
            ran.set()

    await asyncio.wait_for(work(), 5)
    assert ran.is_set() and gate.acking == 1


async def test_no_desk_work_starts_while_a_burst_is_being_acknowledged(tmp_path: Path) -> None:
    """30 signed commands at once: each reaches the desk only when no ack is pending (before,
    the desk ran as soon as its own ack was set, between the other requests' acks)."""
    async with running_bot(tmp_path) as bot:
        priority = bot.platform.priority
        priority.max_wait = 60  # no give-up in this test: only the ordering is checked
        real = bot.core.desk.handle_command
        pending_acks: list[int] = []

        async def spy(*args: Any, **kw: Any) -> Any:
            pending_acks.append(priority.acking)
            return await real(*args, **kw)

        bot.core.desk.handle_command = spy  # type: ignore[method-assign]
        results = await asyncio.gather(*(
            bot.command(f"list ICC-{i}", user=f"U0B{i:03d}") for i in range(30)))
        assert [status for status, _, _ in results] == [200] * 30
        await bot.settled(30)
        assert len(pending_acks) == 30
        assert pending_acks == [0] * 30


async def test_the_gateway_posts_only_when_no_ack_is_pending(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        priority = bot.platform.priority
        priority.max_wait = 60
        priority.ack_started()  # an ack being answered
        held: set[asyncio.Task[Any] | None] = set()  # the tasks now inside priority.quiet()
        real_quiet = priority.quiet

        async def quiet() -> None:
            task = asyncio.current_task()
            held.add(task)
            try:
                await real_quiet()
            finally:
                held.discard(task)

        priority.quiet = quiet  # type: ignore[method-assign]
        post = Post(kind="note", text="Held behind the ack")
        delivery = Delivery(delivery_id="held-1", room="slack:C0SPO", post=post, thread=None)
        sending = asyncio.create_task(bot.platform.gateway.deliver(delivery))
        # Barrier, not a spin: the delivery is held in the wait behind the ack (all it did
        # before that wait is over, and it goes no further until the ack is done), or it has
        # finished without waiting (then its post is at the fake Slack and the check fails).
        await eventually(lambda: sending.done() or sending in held, timeout=5,
                         what="the delivery held behind the ack (or sent)")
        assert not sending.done() and bot.slack.messages("C0SPO") == []
        priority.ack_done()
        receipt = await asyncio.wait_for(sending, 10)
        assert receipt.message_ref and len(bot.slack.messages("C0SPO")) == 1
