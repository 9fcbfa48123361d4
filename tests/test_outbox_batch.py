"""The outbox leases several entries of a room per round (in order), reads the round's thread
links with the claim, and settles each post in one transaction after the platform confirmed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
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
from support.poll import eventually


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


class Doubtful(ChatGateway):
    """Records whether each delivery came ``in_doubt``; raises the errors it is told to, once
    each, in order."""

    platform = "console"

    def __init__(self, errors: dict[str, list[DeliveryError]]) -> None:
        self.calls: list[tuple[str, bool]] = []
        self.errors = errors

    async def deliver(self, delivery: Delivery) -> Receipt:
        self.calls.append((delivery.post.text, delivery.in_doubt))
        queued = self.errors.get(delivery.post.text)
        if queued:
            raise queued.pop(0)
        return Receipt(delivery.delivery_id)


async def _doubts(uow: Any) -> dict[str, bool]:
    """Post text → in_doubt of the pending entries."""
    async with uow(read_only=True) as tx:
        rows = await tx.conn.execute(text(
            "SELECT post, in_doubt FROM outbox WHERE status = 'pending'"))
        return {Post.from_json(row.post).text: bool(row.in_doubt) for row in rows}


def _unknown() -> DeliveryError:
    return DeliveryError("502 after the send, maybe posted")


def _refused() -> DeliveryError:
    return DeliveryError("403 refused", not_sent=True)


async def test_an_entry_is_in_doubt_only_while_an_attempt_may_have_posted(any_url: str) -> None:
    posts = [("console:a", "a1"), ("console:a", "a2"), ("console:a", "a3"), ("console:b", "b1")]
    engine, uow, clock = await _setup(any_url, posts)
    try:
        gateway = Doubtful({"a1": [_unknown()], "b1": [_refused()]})
        worker = OutboxWorker(uow=uow, gateways={"console": gateway}, clock=clock,
                              retry=RetryPolicy(base_seconds=1), per_room=5)
        assert await worker.run_once() == 4
        assert sorted(gateway.calls) == [("a1", False), ("b1", False)]  # first tries: no doubt
        # a1's outcome is unknown; a2, a3 were handed back unattempted; b1 was refused.
        assert await _doubts(uow) == {"a1": True, "a2": False, "a3": False, "b1": False}
        gateway.calls.clear()
        clock.set(clock.now() + timedelta(hours=1))
        assert await worker.run_once() == 4
        assert sorted(gateway.calls) == [("a1", True), ("a2", False), ("a3", False),
                                         ("b1", False)]
        assert await _doubts(uow) == {}
    finally:
        await engine.dispose()


async def test_a_refusal_after_a_doubtful_attempt_keeps_the_doubt(any_url: str) -> None:
    engine, uow, clock = await _setup(any_url, [("console:a", "a1")])
    try:
        gateway = Doubtful({"a1": [_unknown(), _refused()]})
        worker = OutboxWorker(uow=uow, gateways={"console": gateway}, clock=clock,
                              retry=RetryPolicy(base_seconds=1))
        for _ in range(3):
            assert await worker.run_once() == 1
            clock.set(clock.now() + timedelta(hours=1))
        # The refusal proves only that the second attempt posted nothing, not the first.
        assert gateway.calls == [("a1", False), ("a1", True), ("a1", True)]
        assert worker.delivered == 1
    finally:
        await engine.dispose()


async def test_after_a_crash_only_the_entry_in_flight_is_in_doubt(any_url: str) -> None:
    posts = [("console:a", "a1"), ("console:a", "a2"), ("console:a", "a3")]
    engine, uow, clock = await _setup(any_url, posts)
    try:
        crashed = OutboxWorker(uow=uow, gateways={}, clock=clock, owner="gone-1", per_room=5)
        assert len((await crashed._claim()).items) == 3  # leased, a1 in flight, then it died
        gateway = Doubtful({})
        worker = OutboxWorker(uow=uow, gateways={"console": gateway}, clock=clock,
                              owner="alive-2", per_room=5)
        assert len(await worker.reclaim()) == 3
        assert await worker.run_once() == 3
        # Entries are delivered in order, so only the room's first can have been posted;
        # the later ones still marked were leased before their turn came.
        assert gateway.calls == [("a1", True), ("a2", False), ("a3", False)]
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def _worker_running(
        core: Any) -> AsyncIterator[tuple[list[int], Callable[[], Awaitable[None]]]]:
    """``core``'s outbox worker running (its first round done) until the block ends, then
    stopped and the core closed; yields the list its rounds append to, and ``halt`` (stop the
    worker and wait for its task to end: a round it had begun has then run to its end, its
    claim committed and the round counted)."""
    stop = asyncio.Event()
    rounds: list[int] = []
    core.outbox.on_success = lambda: rounds.append(1)
    worker = asyncio.create_task(core.outbox.run(stop, idle_seconds=30))

    async def halt() -> None:
        stop.set()
        await worker

    try:
        await eventually(lambda: rounds, timeout=5, what="the worker's first (empty) round")
        yield rounds, halt
    finally:
        await halt()
        await core.close()


async def test_a_command_reply_is_leased_in_the_command_transaction(any_url: str) -> None:
    """While the worker runs, a command's posts are leased inside its own transaction and go
    out at once: two transactions in all (the command, the record of the delivery)."""
    from conftest import make_settings, start_bot
    from liaisonbot.service.desk import Actor

    bot = await start_bot(make_settings(any_url))
    core = bot.core
    async with _worker_running(core) as (rounds, halt):
        commits = _transactions(core.engine)
        before = core.outbox.delivered
        outcome = await core.desk.handle_command(Actor("console:alice", "console:icc"),
                                                 "help", event_id="ev-help-1")
        assert outcome is not None and outcome.ok
        # No round is due: the worker's idle wait is 30 s, the command's own lease sends it.
        await eventually(lambda: core.outbox.delivered > before, timeout=5, what="the reply")
        assert core.outbox.delivered == before + 1
        # And nothing after it: no claim transaction either. Checked after a barrier, not a
        # sleep: (1) the reply's round has ended and its done callback has run, so every step
        # that could ask for a round because of this command (the desk's commit, the lease's
        # hand-off, the end of the round) has run; (2) no wake is left pending (a round asked
        # for and not begun: stopping would skip it); (3) the worker is stopped and its task
        # awaited, so a round it had begun has committed its claim and been counted.
        await eventually(lambda: not core.outbox._direct, timeout=5,
                         what="the reply's round over")
        assert not core.outbox._wake.is_set(), "a round was asked for after the reply"
        await halt()
        assert commits[0] == 2 and len(rounds) == 1
        assert any("help" in line.lower() for line in bot.out)


async def _as_a_command(uow: Any, worker: OutboxWorker, clock: ManualClock,
                        text: str) -> Any:
    """Queue a post to console:a and lease it as a command's transaction does; returns what
    the desk calls after its commit."""
    async with uow() as tx:
        await tx.outbox.add(platform="console", room="console:a",
                            post=Post(kind="reply", text=text), request_id=None,
                            at=clock.now())
        deliver = await worker.claim_in(tx, ["console:a"])
        await tx.commit()
    assert deliver is not None
    return deliver


async def test_a_command_leaves_a_busy_room_to_the_round_that_holds_it(any_url: str) -> None:
    """A room whose head is in flight in a round gets nothing leased by a command: its post
    goes after, in order."""
    engine, uow, clock = await _setup(any_url, [("console:a", "a1")])
    try:
        release = asyncio.Event()

        class Held(Recorder):
            async def deliver(self, delivery: Delivery) -> Receipt:
                if delivery.post.text == "a1":
                    await release.wait()
                return await super().deliver(delivery)

        gateway = Held()
        worker = OutboxWorker(uow=uow, gateways={"console": gateway}, clock=clock)
        stop = asyncio.Event()
        running = asyncio.create_task(worker.run(stop, idle_seconds=30))
        await eventually(lambda: worker._held, timeout=5, what="a1 in flight")
        (await _as_a_command(uow, worker, clock, "a2"))()  # nothing leased: only a wake
        release.set()
        await eventually(lambda: len(gateway.seen) == 2, timeout=5, what="a1, then a2")
        assert gateway.seen == [("console:a", "a1"), ("console:a", "a2")]
        stop.set()
        await running
    finally:
        await engine.dispose()


async def test_a_shutdown_hands_back_a_command_reply_still_in_flight(any_url: str) -> None:
    """A reply leased in its command's transaction and stuck at the platform when the process
    stops is handed back at once (pending, no lease, still in doubt), not left leased."""
    engine, uow, clock = await _setup(any_url, [])
    try:
        stuck = asyncio.Event()

        class Stuck(Recorder):
            async def deliver(self, delivery: Delivery) -> Receipt:
                stuck.set()
                await asyncio.Event().wait()  # never answers
                raise AssertionError("unreachable")

        worker = OutboxWorker(uow=uow, gateways={"console": Stuck()}, clock=clock)
        stop = asyncio.Event()
        running = asyncio.create_task(worker.run(stop, idle_seconds=30))
        await eventually(lambda: worker._live, timeout=5, what="the worker running")
        (await _as_a_command(uow, worker, clock, "r1"))()
        await eventually(stuck.is_set, timeout=5, what="the reply at the platform")
        stop.set()
        await running
        await worker.finish(0.05)
        assert not worker._direct  # the delivery was cancelled, not left running behind
        assert not worker._held
        async with uow(read_only=True) as tx:
            row = (await tx.conn.execute(text(
                "SELECT status, lease_owner, in_doubt FROM outbox"))).one()
        assert (row.status, row.lease_owner, bool(row.in_doubt)) == ("pending", None, True)
    finally:
        await engine.dispose()


async def test_a_lease_that_ran_out_leaves_its_entry_in_doubt(any_url: str) -> None:
    """A replica that takes over a dead one's rooms after their leases ran out (no reclaim):
    the head entry, maybe posted by the dead one, is looked for first."""
    posts = [("console:a", "a1"), ("console:a", "a2")]
    engine, uow, clock = await _setup(any_url, posts)
    try:
        crashed = OutboxWorker(uow=uow, gateways={}, clock=clock, owner="gone-3", per_room=5)
        assert len((await crashed._claim()).items) == 2
        gateway = Doubtful({})
        other = OutboxWorker(uow=uow, gateways={"console": gateway}, clock=clock,
                             owner="alive-4", per_room=5)
        assert await other.run_once() == 0  # still leased
        clock.set(clock.now() + timedelta(seconds=60))
        assert await other.run_once() == 2
        assert gateway.calls == [("a1", True), ("a2", False)]
    finally:
        await engine.dispose()
