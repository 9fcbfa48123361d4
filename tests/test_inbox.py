"""The inbox (issue 25): written before the acknowledgement, done exactly once, leased like the
outbox, handed back at once by a stopping process; on SQLite and PostgreSQL.

The processes killed at each stage are in ``tests/test_inbox_crash.py``; these drive the
store and the worker directly, with an injected clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from datetime import timedelta

import pytest

from conftest import MONDAY_10
from liaisonbot.service.inbox import InboxPolicy, InboxWorker, Ticket
from liaisonbot.service.ports import AlreadySettled, InboxEntry, InboxItem, ManualClock
from liaisonbot.store.db import INSTANCE, is_sqlite, make_engine
from liaisonbot.store.inbox import SqlInboxDoor
from liaisonbot.store.migrate import upgrade_async
from liaisonbot.store.uow import SqlUnitOfWorkFactory
from support.poll import eventually


def entry(key: str, kind: str = "command") -> InboxEntry:
    return InboxEntry("slack", key, kind, "slack:T1/C1", '{"text": "help"}')


@contextlib.asynccontextmanager
async def store(url: str, owner: str = "liaisonbot-test-me"
                ) -> AsyncIterator[tuple[SqlUnitOfWorkFactory, SqlInboxDoor, ManualClock]]:
    await upgrade_async(url)
    engine = make_engine(url)
    door = SqlInboxDoor(engine, owner=owner)
    try:
        yield SqlUnitOfWorkFactory(engine), door, ManualClock(MONDAY_10)
    finally:
        await door.close()
        await engine.dispose()


class Handler:
    """Records what it works; ``fail`` names keys whose work raises; ``gate`` holds the work."""

    def __init__(self, uow: SqlUnitOfWorkFactory) -> None:
        self.uow = uow
        self.worked: list[str] = []
        self.fail: set[str] = set()
        self.gate: asyncio.Event | None = None
        self.lanes = asyncio.Semaphore(1)

    def lane(self, item: InboxItem) -> AbstractAsyncContextManager[None]:
        return self.lanes  # type: ignore[return-value]

    async def work(self, item: InboxItem, ticket: Ticket) -> None:
        self.worked.append(item.key)
        if self.gate is not None:
            await self.gate.wait()
        if item.key in self.fail:
            raise RuntimeError("the work failed")
        async with self.uow() as uow:  # as the desk does: the change and the mark together
            await uow.state.put(f"worked:{item.key}", "1", MONDAY_10)
            await ticket.settle_in(uow)
            await uow.commit()
        ticket.settled = True


async def statuses(uow: SqlUnitOfWorkFactory) -> dict[str, str]:
    from sqlalchemy import text

    async with uow(read_only=True) as tx:
        rows = await tx.connection().execute(text("SELECT event_key, status FROM inbox"))
        return {row[0]: row[1] for row in rows}


async def test_the_door_keeps_each_thing_once_and_batches_what_arrives_together(
        any_url: str) -> None:
    async with store(any_url) as (uow, door, clock):
        until = clock.now() + timedelta(seconds=8)
        items = await asyncio.gather(*(door.admit(entry(f"k{n % 40}"), now=clock.now(),
                                                  until=until) for n in range(50)))
        kept = [i for i in items if i is not None]
        assert sorted(i.key for i in kept) == sorted(f"k{n}" for n in range(40))
        assert door.writes < 10  # acknowledgements arriving together share a transaction
        again = await door.admit(entry("k1"), now=clock.now(), until=until)  # a retry
        assert again is None
        assert kept[0].attempts == 1 and kept[0].received_at == MONDAY_10
        async with uow() as tx:
            assert await tx.inbox.pending() == 40


async def test_a_row_is_done_once_whoever_works_it(any_url: str) -> None:
    async with store(any_url) as (uow, door, clock):
        item = await door.admit(entry("k"), now=clock.now(), until=clock.now())
        assert item is not None
        async with uow() as first:  # one worker's unit of work
            await first.state.put("changed", "1", clock.now())
            await first.inbox.done(item.id, clock.now())
            await first.commit()
        async with uow() as second:  # another's, whose lease ran out meanwhile
            await second.state.put("changed", "2", clock.now())
            with pytest.raises(AlreadySettled):
                await second.inbox.done(item.id, clock.now())
        async with uow(read_only=True) as tx:
            assert await tx.state.get("changed") == "1"
        async with uow() as tx:
            assert await tx.inbox.claim(clock.now(), owner="x", limit=10, lease_seconds=8,
                                        platforms={"slack"}) == []


async def test_rows_left_by_a_dead_process_are_taken_in_arrival_order(any_url: str) -> None:
    """A lease that ran out is anyone's; at start the leases of owners that are gone come back
    at once; on PostgreSQL a replica takes a gone owner's rows without waiting for its lease,
    and leaves a live owner's alone (this process, ``INSTANCE``, is connected)."""
    async with store(any_url, owner="liaisonbot-dead-1") as (uow, door, clock):
        later = clock.now() + timedelta(seconds=8)
        for key in ("a", "b", "c"):
            await door.admit(entry(key), now=clock.now(), until=later)
        async with uow() as tx:
            assert await tx.inbox.claim(clock.now(), owner=INSTANCE, limit=10, lease_seconds=8,
                                        platforms={"slack"}) == [] or not is_sqlite(any_url)
        await door.close()  # the dead process's connection is gone with it
        if is_sqlite(any_url):
            async with uow() as tx:
                assert await tx.inbox.release_dead(INSTANCE, clock.now()) != []
                await tx.commit()
        async with uow() as tx:
            taken = await tx.inbox.claim(clock.now(), owner=INSTANCE, limit=2, lease_seconds=60,
                                         platforms={"slack"})
            await tx.commit()
        assert [i.key for i in taken] == ["a", "b"] and taken[0].attempts == 2
        async with uow() as tx:  # nothing for another platform's workers
            assert await tx.inbox.claim(clock.now(), owner=INSTANCE, limit=9, lease_seconds=8,
                                        platforms={"matrix"}) == []
        clock.set(later + timedelta(seconds=1))  # "c"'s lease has run out anyway
        async with uow() as tx:
            rest = await tx.inbox.claim(clock.now(), owner=INSTANCE, limit=9, lease_seconds=8,
                                        platforms={"slack"})
        assert [i.key for i in rest] == ["c"]


async def test_a_live_replicas_rows_are_left_to_it(pg_url: str) -> None:
    async with store(pg_url) as (uow, _door, clock):
        alive = "liaisonbot-alive-2"
        engine = make_engine(pg_url, connect_args={"server_settings": {
            "application_name": alive}})
        door = SqlInboxDoor(engine, owner=alive)  # its connection stays open: it is alive
        try:
            await door.admit(entry("a"), now=clock.now(),
                             until=clock.now() + timedelta(seconds=8))
            async with uow() as tx:
                assert await tx.inbox.release_dead(INSTANCE, clock.now()) == []
                assert await tx.inbox.claim(clock.now(), owner=INSTANCE, limit=9,
                                            lease_seconds=8, platforms={"slack"}) == []
        finally:
            await door.close()
            await engine.dispose()


async def test_the_worker_does_each_row_once_and_retries_a_failure_later(any_url: str) -> None:
    async with store(any_url) as (uow, door, clock):
        worker = InboxWorker(uow=uow, door=door, clock=clock, owner="liaisonbot-test-me",
                             policy=InboxPolicy(base_seconds=10))
        handler = Handler(uow)
        handler.fail = {"b"}
        worker.handle("slack", handler)
        for key in ("a", "b", "c"):
            item = await worker.admit(entry(key))
            assert item is not None
            worker.start(item)
        await eventually(lambda: not worker.busy, what="the three worked")
        assert handler.worked == ["a", "b", "c"]
        assert await statuses(uow) == {"a": "done", "b": "pending", "c": "done"}
        assert await worker.claim_once() == 0  # "b" backs off 10 s
        handler.fail = set()
        clock.set(clock.now() + timedelta(seconds=11))
        assert await worker.claim_once() == 1
        await eventually(lambda: not worker.busy, what="b again")
        assert handler.worked == ["a", "b", "c", "b"]
        assert await statuses(uow) == {"a": "done", "b": "done", "c": "done"}
        async with uow(read_only=True) as tx:
            for key in "abc":
                assert await tx.state.get(f"worked:{key}") == "1"


async def test_a_stopping_worker_hands_back_what_it_has_not_started(any_url: str) -> None:
    """SIGTERM: the row working gets the deadline and is then cancelled (nothing kept) and
    handed back; rows waiting for a lane are handed back at once; another process takes both
    at once, with no lease to wait for."""
    async with store(any_url) as (uow, door, clock):
        worker = InboxWorker(uow=uow, door=door, clock=clock, owner="liaisonbot-test-me")
        handler = Handler(uow)
        handler.gate = asyncio.Event()
        worker.handle("slack", handler)
        for key in ("a", "b", "c"):
            item = await worker.admit(entry(key))
            assert item is not None
            worker.start(item)
        await eventually(lambda: handler.worked == ["a"], what="a working, b and c waiting")
        handed = await worker.stop(0.05)
        assert len(handed) == 3 and not worker.busy
        assert await statuses(uow) == {"a": "pending", "b": "pending", "c": "pending"}
        other = InboxWorker(uow=uow, door=door, clock=clock, owner="liaisonbot-test-other")
        done = Handler(uow)
        other.handle("slack", done)
        assert await other.claim_once() == 3
        await eventually(lambda: not other.busy, what="taken over")
        assert done.worked == ["a", "b", "c"]
        assert set((await statuses(uow)).values()) == {"done"}


async def test_the_door_writes_on_a_new_connection_when_its_own_was_lost(pg_url: str) -> None:
    """The database dropped the door's kept connection (a restart, a failover): the next
    acknowledgement's write goes through on a new one, not a 503."""
    from sqlalchemy import text

    async with store(pg_url) as (uow, _door, clock):
        name = "liaisonbot-door-lost"
        engine = make_engine(pg_url, connect_args={"server_settings": {"application_name": name}})
        door = SqlInboxDoor(engine, owner=name)
        try:
            until = clock.now() + timedelta(seconds=8)
            assert await door.admit(entry("before"), now=clock.now(), until=until) is not None
            async with uow() as tx:
                await tx.connection().execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = :name"), {"name": name})
                await tx.commit()
            assert await door.admit(entry("after"), now=clock.now(), until=until) is not None
        finally:
            await door.close()
            await engine.dispose()
        assert set(await statuses(uow)) == {"before", "after"}
