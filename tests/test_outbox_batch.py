"""The outbox leases several entries of a room per round (in order), reads the round's thread
links with the claim, and settles each post in one transaction after the platform confirmed."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event, text

from conftest import MONDAY_10
from liaisonbot.domain.cards import Post
from liaisonbot.service.outbox import OutboxWorker, RetryPolicy
from liaisonbot.service.ports import (
    ChatGateway,
    Delivery,
    DeliveryError,
    ManualClock,
    Receipt,
)
from liaisonbot.store.db import make_engine
from liaisonbot.store.migrate import upgrade
from liaisonbot.store.uow import SqlUnitOfWorkFactory


class Recorder(ChatGateway):
    platform = "console"

    def __init__(self, fail: set[str] | None = None) -> None:
        self.seen: list[tuple[str, str]] = []
        self.fail = fail or set()

    async def deliver(self, delivery: Delivery) -> Receipt:
        await asyncio.sleep(0)  # let the rooms interleave
        if delivery.post.text in self.fail:
            self.fail.discard(delivery.post.text)
            raise DeliveryError("busy", retry_after=30)
        self.seen.append((delivery.room, delivery.post.text))
        return Receipt(delivery.delivery_id)


async def _setup(url: str, posts: list[tuple[str, str]]) -> tuple[Any, Any, ManualClock]:
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url)
    uow = SqlUnitOfWorkFactory(engine)
    clock = ManualClock(MONDAY_10)
    async with uow() as tx:
        for room, body in posts:
            await tx.outbox.add(platform="console", room=room, post=Post(kind="note", text=body),
                                request_id=None, at=clock.now())
        await tx.commit()
    return engine, uow, clock


def _transactions(engine: Any) -> list[int]:
    """Counts COMMITs on the engine (one element, mutated)."""
    count = [0]

    def bump(*_: Any) -> None:
        count[0] += 1

    event.listen(engine.sync_engine, "commit", bump)
    return count


async def test_a_round_delivers_several_entries_per_room_in_order(any_url: str) -> None:
    posts = [(f"console:{room}", f"{room}{n}") for n in range(5) for room in "abc"]
    engine, uow, clock = await _setup(any_url, posts)
    try:
        gateway = Recorder()
        worker = OutboxWorker(uow=uow, gateways={"console": gateway}, clock=clock,
                              retry=RetryPolicy(lease_seconds=60), per_room=4)
        commits = _transactions(engine)
        assert await worker.run_once() == 12  # four of each room in one round
        for room in "abc":
            assert [t for r, t in gateway.seen if r == f"console:{room}"] == \
                [f"{room}{n}" for n in range(4)]
        # One transaction to claim, then exactly one per delivered post (none to read).
        assert commits[0] == 1 + 12
        assert await worker.drain() == 3
        async with uow() as tx:
            assert await tx.outbox.backlog() == 0
    finally:
        await engine.dispose()


async def test_after_a_failure_the_rooms_later_entries_wait_behind_it(any_url: str) -> None:
    posts = [("console:a", "a1"), ("console:a", "a2"), ("console:a", "a3"), ("console:b", "b1")]
    engine, uow, clock = await _setup(any_url, posts)
    try:
        gateway = Recorder(fail={"a2"})
        worker = OutboxWorker(uow=uow, gateways={"console": gateway}, clock=clock,
                              retry=RetryPolicy(lease_seconds=60), per_room=10)
        await worker.drain()
        assert sorted(gateway.seen) == [("console:a", "a1"), ("console:b", "b1")]
        async with engine.connect() as conn:
            rows = dict((await conn.execute(text(
                "SELECT id, attempts FROM outbox WHERE status = 'pending' ORDER BY id"))).all())
            leased = (await conn.execute(text(
                "SELECT count(*) FROM outbox WHERE lease_until IS NOT NULL"))).scalar()
        # a2 backs off (a rate limit: its attempt is not counted); a3 was handed back unleased
        # and uncounted, and waits behind it.
        assert rows == {2: 0, 3: 0} and leased == 0
        clock.set(clock.now().replace(minute=1))
        await worker.drain()
        assert [t for r, t in gateway.seen if r == "console:a"] == ["a1", "a2", "a3"]
    finally:
        await engine.dispose()


async def test_a_room_whose_first_entry_another_replica_holds_gives_nothing(
        pg_url: str) -> None:
    """PostgreSQL: while one transaction holds a room's first row (claimed, not committed),
    another claim skips it and must not take that room's later rows either."""
    posts = [("console:a", "a1"), ("console:a", "a2"), ("console:b", "b1")]
    engine, uow, clock = await _setup(pg_url, posts)
    try:
        async with uow() as first:
            one = await first.outbox.claim(clock.now(), 1, 60, owner="r1", per_room=1)
            assert [i.post.text for i in one] == ["a1"]
            async with uow() as second:
                got = await second.outbox.claim(clock.now(), 10, 60, owner="r2", per_room=10)
                assert [i.post.text for i in got] == ["b1"]
                await second.commit()
            await first.commit()
    finally:
        await engine.dispose()
