"""The SQL store on SQLite and on the real PostgreSQL: migrations, ids, races, the audit chain."""

from __future__ import annotations

import asyncio
import re
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlmodel import SQLModel

from conftest import MONDAY_10, make_settings, start_bot
from liaisonbot.domain.model import Kind, Request, Status
from liaisonbot.service.ports import ChatGateway, Conflict
from liaisonbot.service.reports import verify_audit
from liaisonbot.store import tables  # noqa: F401
from liaisonbot.store.db import make_engine
from liaisonbot.store.migrate import alembic_config, upgrade_async
from liaisonbot.store.uow import SqlUnitOfWorkFactory
from support.insider import insider


def _request() -> Request:
    return Request(id=0, case="C-1", kind=Kind.MLA, requesting="icc-otp", requested="ba-spo",
                   summary="s", status=Status.OPEN, created_at=MONDAY_10, updated_at=MONDAY_10,
                   due_at=MONDAY_10 + timedelta(days=3), ack_due_at=MONDAY_10 + timedelta(days=1),
                   opened_by="console:alice")


async def test_migrations_match_the_models(any_url: str) -> None:
    """The equivalent of ``alembic check``: no difference between migrations and tables."""
    await upgrade_async(any_url)
    engine = make_engine(any_url)
    async with engine.connect() as conn:
        diff = await conn.run_sync(lambda sync: compare_metadata(
            MigrationContext.configure(sync, opts={"compare_type": True}), SQLModel.metadata))
    await engine.dispose()
    assert diff == []


async def test_request_ids_never_repeat(any_url: str) -> None:
    await upgrade_async(any_url)
    engine = make_engine(any_url)
    uow = SqlUnitOfWorkFactory(engine)
    async with uow() as tx:
        first = await tx.requests.add(_request())
        second = await tx.requests.add(_request())
        await tx.commit()
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM request WHERE id = :id"), {"id": second})
    async with uow() as tx:
        third = await tx.requests.add(_request())
        await tx.commit()
    await engine.dispose()
    assert first < second < third


async def test_stale_update_loses_with_conflict(any_url: str) -> None:
    await upgrade_async(any_url)
    engine = make_engine(any_url)
    uow = SqlUnitOfWorkFactory(engine)
    async with uow() as tx:
        request_id = await tx.requests.add(_request())
        await tx.commit()
    async with uow() as tx:
        mine = await tx.requests.get(request_id)
    async with uow() as tx:
        theirs = await tx.requests.get(request_id)
        assert theirs is not None
        theirs.status = Status.ACKNOWLEDGED
        await tx.requests.update(theirs)
        await tx.commit()
    assert mine is not None
    mine.status = Status.DECLINED
    async with uow() as tx:
        with pytest.raises(Conflict):  # by the statement that found it, before any commit
            await tx.requests.update(mine)
        # the transaction is still usable: a replayed mark is answered by its own statement
        assert await tx.inbound.first_time("console", "e-1", MONDAY_10)
        assert not await tx.inbound.first_time("console", "e-1", MONDAY_10)
        await tx.commit()
    async with uow() as tx:
        final = await tx.requests.get(request_id)
    await engine.dispose()
    assert final is not None and final.status is Status.ACKNOWLEDGED


async def test_racing_commands_one_wins_nothing_lost(any_url: str) -> None:
    bot = await start_bot(make_settings(any_url))
    try:
        await bot.exec("!liaison open C-1 to:ba-spo X", user="alice", room="icc")
        from liaisonbot.service.desk import Actor

        desk = bot.core.desk
        results = await asyncio.gather(
            desk.handle_command(Actor("console:bojan", "console:ba"), "answer R-1 yes"),
            desk.handle_command(Actor("console:bojan", "console:ba"), "decline R-1 no"))
        texts = sorted(r.reply.text for r in results if r)
        assert sum(bool(re.fullmatch(r"R-1 is \w+ now\.", t)) for t in texts) == 1, texts
        assert any("so it cannot be" in t for t in texts), texts
        async with bot.core.uow() as tx:
            request = await tx.requests.get(1)
            entries = await tx.history.for_request(1)
        assert request is not None and request.status in (Status.ANSWERED, Status.DECLINED)
        assert [e.action for e in entries] == ["opened", request.status.value]
        assert await verify_audit(bot.core.uow) is None
    finally:
        await bot.core.close()


async def test_audit_verify_finds_altered_and_removed_entries(any_url: str) -> None:
    bot = await start_bot(make_settings(any_url))
    try:
        await bot.exec("!liaison open C-1 to:ba-spo X", user="alice", room="icc")
        await bot.exec("!liaison ack R-1", user="bojan", room="ba")
        await bot.exec("!liaison answer R-1 done", user="bojan", room="ba")
        assert await verify_audit(bot.core.uow) is None
        async with insider(bot.core.engine) as conn:
            await conn.execute(text("UPDATE history SET actor = 'console:eve' WHERE id = 2"))
        broken = await verify_audit(bot.core.uow)
        assert broken is not None and broken.entry_id == 2
        async with insider(bot.core.engine) as conn:
            await conn.execute(text("DELETE FROM history WHERE id = 3"))
            await conn.execute(text("UPDATE history SET actor = 'console:bojan' WHERE id = 2"))
        broken = await verify_audit(bot.core.uow)
        # Entry 3 was the request's last: its chain now ends at 2, not where the row says.
        assert broken is not None and broken.entry_id == 2 and "last entry" in broken.reason
    finally:
        await bot.core.close()


async def test_outbox_keeps_room_order_and_retries(sqlite_url: str) -> None:
    from liaisonbot.domain.cards import Post
    from liaisonbot.service.outbox import OutboxWorker, RetryPolicy
    from liaisonbot.service.ports import Delivery, DeliveryError, ManualClock, Receipt

    await upgrade_async(sqlite_url)
    engine = make_engine(sqlite_url)
    uow = SqlUnitOfWorkFactory(engine)
    clock = ManualClock(MONDAY_10)
    seen: list[tuple[str, str]] = []
    failures = {"lb-1": 2}

    class Flaky(ChatGateway):
        platform = "console"

        async def deliver(self, delivery: Delivery) -> Receipt:
            if failures.get(delivery.delivery_id, 0):
                failures[delivery.delivery_id] -= 1
                raise DeliveryError("busy", retry_after=30)
            seen.append((delivery.room, delivery.post.text))
            return Receipt(delivery.delivery_id)

    async with uow() as tx:
        for room, body in [("console:a", "a1"), ("console:a", "a2"), ("console:b", "b1")]:
            await tx.outbox.add(platform="console", room=room, post=Post(kind="note", text=body),
                                request_id=None, at=clock.now())
        await tx.commit()
    worker = OutboxWorker(uow=uow, gateways={"console": Flaky()}, clock=clock,
                          retry=RetryPolicy(lease_seconds=60))
    await worker.drain()
    assert seen == [("console:b", "b1")]  # a1 backs off, a2 waits behind it
    clock.set(clock.now() + timedelta(seconds=31))
    await worker.drain()
    clock.set(clock.now() + timedelta(seconds=31))
    await worker.drain()
    assert seen == [("console:b", "b1"), ("console:a", "a1"), ("console:a", "a2")]
    async with uow() as tx:
        assert await tx.outbox.backlog() == 0
    await engine.dispose()


async def test_crash_between_claim_and_delivery_redelivers_same_id(sqlite_url: str) -> None:
    from liaisonbot.domain.cards import Post
    from liaisonbot.service.outbox import OutboxWorker, RetryPolicy
    from liaisonbot.service.ports import Delivery, ManualClock, Receipt

    await upgrade_async(sqlite_url)
    engine = make_engine(sqlite_url)
    uow = SqlUnitOfWorkFactory(engine)
    clock = ManualClock(MONDAY_10)
    async with uow() as tx:
        await tx.outbox.add(platform="console", room="console:a", post=Post(kind="note", text="x"),
                            request_id=None, at=clock.now())
        await tx.outbox.claim(clock.now(), 10, 60)  # a worker leased it, then died
        await tx.commit()
    ids: list[str] = []

    class Gateway(ChatGateway):
        platform = "console"

        async def deliver(self, delivery: Delivery) -> Receipt:
            ids.append(delivery.delivery_id)
            return Receipt("m1")

    worker = OutboxWorker(uow=uow, gateways={"console": Gateway()}, clock=clock,
                          retry=RetryPolicy(lease_seconds=60))
    assert await worker.drain() == 0  # still leased by the dead worker
    clock.set(clock.now() + timedelta(seconds=61))
    assert await worker.drain() == 1
    assert ids == ["lb-1"]
    await engine.dispose()


async def test_replicas_migrating_at_once_do_not_collide(pg_url: str, tmp_path: Path) -> None:
    """Three processes run ``liaisonbot db upgrade`` on one empty database at the same time."""
    config = tmp_path / "pg.toml"
    config.write_text(f'[database]\nurl = "{pg_url}"\n[[offices]]\nslug = "a"\n'
                      'rooms = ["console:a"]\n')
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, "-m", "liaisonbot.cli", "db", "upgrade", "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE) for _ in range(3)]
    results = [await asyncio.wait_for(p.communicate(), 120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], results
    engine = make_engine(pg_url)
    async with engine.connect() as conn:
        version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    await engine.dispose()
    head = ScriptDirectory.from_config(alembic_config(pg_url)).get_current_head()
    assert version == head


async def test_state_forget_matches_the_prefix_literally(any_url: str) -> None:
    await upgrade_async(any_url)
    engine = make_engine(any_url)
    uow = SqlUnitOfWorkFactory(engine)
    old = MONDAY_10 - timedelta(days=10)
    async with uow() as tx:
        for key in ("a_b:1", "a_b:2", "axb:1", "a%b:1"):
            await tx.state.put(key, "v", old)
        await tx.commit()
    async with uow() as tx:
        assert await tx.state.forget("a_b:", MONDAY_10) == 2
        await tx.commit()
    async with uow() as tx:
        assert [await tx.state.get(k) for k in ("a_b:1", "axb:1", "a%b:1")] == [None, "v", "v"]
    async with uow() as tx:  # a key set again: its value and time move (an upsert)
        await tx.state.put("axb:1", "w", MONDAY_10)
        await tx.state.put("new", "n", MONDAY_10)
        await tx.commit()
    async with uow() as tx:
        assert [await tx.state.get(k) for k in ("axb:1", "new")] == ["w", "n"]
        assert await tx.state.forget("axb:", MONDAY_10) == 0  # written at MONDAY_10 now
    await engine.dispose()


async def test_rate_limits_never_use_up_attempts(sqlite_url: str) -> None:
    from liaisonbot.domain.cards import Post
    from liaisonbot.service.outbox import OutboxWorker, RetryPolicy
    from liaisonbot.service.ports import Delivery, DeliveryError, ManualClock, Receipt

    await upgrade_async(sqlite_url)
    engine = make_engine(sqlite_url)
    uow = SqlUnitOfWorkFactory(engine)
    clock = ManualClock(MONDAY_10)
    limited = {"left": 5}

    class Busy(ChatGateway):
        platform = "console"

        async def deliver(self, delivery: Delivery) -> Receipt:
            if limited["left"]:
                limited["left"] -= 1
                raise DeliveryError("ratelimited", retry_after=1)
            return Receipt("m1")

    async with uow() as tx:
        await tx.outbox.add(platform="console", room="console:a", post=Post(kind="note", text="x"),
                            request_id=None, at=clock.now())
        await tx.commit()
    worker = OutboxWorker(uow=uow, gateways={"console": Busy()}, clock=clock,
                          retry=RetryPolicy(max_attempts=2))
    for _ in range(6):
        await worker.drain()
        clock.set(clock.now() + timedelta(seconds=2))
    async with uow() as tx:
        assert await tx.outbox.backlog() == 0
    assert worker.delivered == 1  # five 429s, then delivered; max_attempts=2 did not fail it
    await engine.dispose()


async def test_dedupe_windows_hold_when_two_arrive_at_once(any_url: str) -> None:
    """Two submissions straddling a minute boundary, concurrently: their key windows overlap
    in the database's unique constraint, so exactly one request is opened."""
    from liaisonbot.service.desk import Actor

    bot = await start_bot(make_settings(any_url))
    try:
        actor = Actor("console:alice", "console:icc")
        outcomes = await asyncio.gather(
            bot.core.desk.handle_command(actor, "open C-1 to:ba-spo X", event_id="k:100",
                                         also_mark=["k:101"]),
            bot.core.desk.handle_command(actor, "open C-1 to:ba-spo X", event_id="k:101",
                                         also_mark=["k:102"]))
        assert sorted(o is None for o in outcomes) == [False, True]
        async with bot.core.uow() as tx:
            assert len(await tx.requests.all_for_case("C-1")) == 1
    finally:
        await bot.core.close()


async def test_a_server_error_after_many_rate_limits_is_retried_not_failed(any_url: str) -> None:
    """Five 429 rounds, then one real failure, with ``max_attempts=2``: the post is retried
    (only the failure counted), and delivered at the next round."""
    from liaisonbot.domain.cards import Post
    from liaisonbot.service.outbox import OutboxWorker, RetryPolicy
    from liaisonbot.service.ports import Delivery, DeliveryError, ManualClock, Receipt

    await upgrade_async(any_url)
    engine = make_engine(any_url)
    uow = SqlUnitOfWorkFactory(engine)
    clock = ManualClock(MONDAY_10)
    script = ["429"] * 5 + ["500"]

    class Busy:
        platform = "console"

        async def deliver(self, delivery: Delivery) -> Receipt:
            step = script.pop(0) if script else "ok"
            if step == "429":
                raise DeliveryError("ratelimited", retry_after=1)
            if step == "500":
                raise DeliveryError("internal_error")
            return Receipt("m1")

    async with uow() as tx:
        await tx.outbox.add(platform="console", room="console:a", post=Post(kind="note", text="x"),
                            request_id=None, at=clock.now())
        await tx.commit()
    worker = OutboxWorker(uow=uow, gateways={"console": Busy()}, clock=clock,
                          retry=RetryPolicy(max_attempts=2, base_seconds=1))
    for _ in range(6):
        assert await worker.drain() == 1
        clock.set(clock.now() + timedelta(seconds=2))
    async with engine.connect() as conn:
        status, attempts = (await conn.execute(text(
            "SELECT status, attempts FROM outbox"))).one()
    assert (status, attempts) == ("pending", 1)  # the 429s gave their attempts back
    assert await worker.drain() == 1
    assert worker.delivered == 1
    await engine.dispose()


async def test_a_failing_statement_never_shows_its_parameters(
        any_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """The engine hides bound parameters: an exception logged from a failing statement names
    the SQL, never the summary it carried."""
    import logging

    await upgrade_async(any_url)
    engine = make_engine(any_url)
    summary = "Bank records of witness Z-secret-7731"
    caplog.set_level(logging.ERROR)
    with pytest.raises(Exception) as caught:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO no_such_table (summary) VALUES (:s)"),
                               {"s": summary})
    logging.getLogger("liaisonbot.test").error("statement failed", exc_info=caught.value)
    await engine.dispose()
    assert "no_such_table" in caplog.text  # the failure itself is logged
    assert summary not in caplog.text and summary not in str(caught.value)
    assert "hidden due to hide_parameters" in str(caught.value)


async def test_a_dead_processes_lease_is_reclaimed_at_once_on_restart(any_url: str) -> None:
    """kill -9 while a row is leased: the restarted process hands the dead owner's lease back
    at start and delivers the row at once (same clock instant, nothing waits for the lease).
    On PostgreSQL a lease whose owner is still connected is left alone."""
    from liaisonbot.domain.cards import Post
    from liaisonbot.service.outbox import OutboxWorker
    from liaisonbot.service.ports import Delivery, ManualClock, Receipt
    from liaisonbot.store.db import INSTANCE, is_sqlite

    await upgrade_async(any_url)
    engine = make_engine(any_url)
    uow = SqlUnitOfWorkFactory(engine)
    clock = ManualClock(MONDAY_10)
    postgres = not is_sqlite(any_url)
    alive_owner = "liaisonbot-test-alive-replica"
    other = make_engine(any_url, connect_args={"server_settings": {
        "application_name": alive_owner}}) if postgres else None
    async with uow() as tx:
        for room in ("console:a", "console:b"):
            await tx.outbox.add(platform="console", room=room, post=Post(kind="note", text=room),
                                request_id=None, at=clock.now())
        await tx.commit()
    async with uow() as tx:  # the process that died had leased room a's row
        assert len(await tx.outbox.claim(clock.now(), 1, 10, owner="liaisonbot-dead-1")) == 1
        await tx.commit()
    delivered: list[str] = []

    class Gateway:
        platform = "console"

        async def deliver(self, delivery: Delivery) -> Receipt:
            delivered.append(delivery.room)
            return Receipt(delivery.delivery_id)

    worker = OutboxWorker(uow=uow, gateways={"console": Gateway()}, clock=clock, owner=INSTANCE)
    try:
        if other is not None:  # a live replica's lease on room b
            live = await other.connect()
            async with uow() as tx:
                assert len(await tx.outbox.claim(clock.now(), 1, 10, owner=alive_owner)) == 1
                await tx.commit()
        assert await worker.reclaim() == [1]
        assert await worker.drain() == (1 if postgres else 2)
        assert delivered == (["console:a"] if postgres else ["console:a", "console:b"])
        if other is not None:
            await live.close()
            await other.dispose()  # that replica is gone now: its lease comes back too
            assert await worker.reclaim() == [2]
            assert await worker.drain() == 1
            assert delivered == ["console:a", "console:b"]
    finally:
        await engine.dispose()


async def test_the_heartbeat_keeps_a_slow_delivery_leased(any_url: str) -> None:
    """A delivery that outlasts its lease stays with its worker while the heartbeat renews it;
    once renewals stop (the process died), another worker takes the row after one lease."""
    from liaisonbot.domain.cards import Post
    from liaisonbot.service.outbox import OutboxWorker, RetryPolicy
    from liaisonbot.service.ports import Delivery, ManualClock, Receipt

    await upgrade_async(any_url)
    engine = make_engine(any_url)
    uow = SqlUnitOfWorkFactory(engine)
    clock = ManualClock(MONDAY_10)
    entered, gate = asyncio.Event(), asyncio.Event()
    calls: list[str] = []

    class Slow:
        platform = "console"

        async def deliver(self, delivery: Delivery) -> Receipt:
            calls.append(delivery.delivery_id)
            entered.set()
            await gate.wait()
            return Receipt(delivery.delivery_id)

    async with uow() as tx:
        await tx.outbox.add(platform="console", room="console:a", post=Post(kind="note", text="x"),
                            request_id=None, at=clock.now())
        await tx.commit()
    policy = RetryPolicy(lease_seconds=10)
    first = OutboxWorker(uow=uow, gateways={"console": Slow()}, clock=clock, retry=policy,
                         owner="liaisonbot-first")
    second = OutboxWorker(uow=uow, gateways={"console": Slow()}, clock=clock, retry=policy,
                          owner="liaisonbot-second")
    in_flight = asyncio.create_task(first.run_once())
    await asyncio.wait_for(entered.wait(), 10)
    clock.set(clock.now() + timedelta(seconds=8))
    assert await first.renew_held() == 1  # lease now runs to +18 s
    clock.set(clock.now() + timedelta(seconds=5))  # +13 s: past the first lease
    assert await second.run_once() == 0
    clock.set(clock.now() + timedelta(seconds=6))  # +19 s: no renewal since +8 s
    entered.clear()
    taken_over = asyncio.create_task(second.run_once())
    await asyncio.wait_for(entered.wait(), 10)
    assert calls == ["lb-1", "lb-1"]  # the same delivery id: the gateway dedupes the resend
    assert await first.renew_held() == 0  # the first worker no longer owns it
    gate.set()
    assert await taken_over == 1 and await in_flight == 1
    await engine.dispose()


async def test_the_worker_reclaims_a_dead_owners_lease_when_it_starts(sqlite_url: str) -> None:
    """``run`` (what ``liaisonbot run`` starts) hands a dead process's lease back first: the row
    goes out while the injected clock stands still, long before its lease would end."""
    from liaisonbot.domain.cards import Post
    from liaisonbot.service.outbox import OutboxWorker
    from liaisonbot.service.ports import Delivery, ManualClock, Receipt

    await upgrade_async(sqlite_url)
    engine = make_engine(sqlite_url)
    uow = SqlUnitOfWorkFactory(engine)
    clock = ManualClock(MONDAY_10)
    async with uow() as tx:
        await tx.outbox.add(platform="console", room="console:a", post=Post(kind="note", text="x"),
                            request_id=None, at=clock.now())
        await tx.outbox.claim(clock.now(), 10, 3600, owner="liaisonbot-killed-9")
        await tx.commit()
    delivered = asyncio.Event()

    class Gateway:
        platform = "console"

        async def deliver(self, delivery: Delivery) -> Receipt:
            delivered.set()
            return Receipt(delivery.delivery_id)

    worker = OutboxWorker(uow=uow, gateways={"console": Gateway()}, clock=clock,
                          owner="liaisonbot-restarted")
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        await asyncio.wait_for(delivered.wait(), 10)
    finally:
        stop.set()
        await running
        await engine.dispose()
    assert worker.delivered == 1 and clock.now() == MONDAY_10


async def test_a_read_only_unit_of_work_takes_no_write_lock_on_sqlite(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """BEGIN IMMEDIATE only where a write happens: a reader begins while a writer holds the
    lock (with BEGIN IMMEDIATE it would wait for the writer, here: the busy timeout)."""
    from sqlalchemy import event

    await upgrade_async(sqlite_url)
    engine = make_engine(sqlite_url)
    uow = SqlUnitOfWorkFactory(engine)
    began: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute",
                 lambda _c, _cur, sql, *_: began.append(sql) if sql.startswith("BEGIN") else None)
    try:
        async with uow() as writer:
            await writer.state.put("k", "v", MONDAY_10)
            assert await writer.state.get("k") == "v"  # BEGIN IMMEDIATE, the write: held
            async with uow(read_only=True) as reader:
                assert await asyncio.wait_for(reader.state.get("k"), timeout=5) is None
            await writer.commit()
        async with uow() as writer:
            assert await writer.state.get("k") == "v"
        assert began == ["BEGIN IMMEDIATE", "BEGIN", "BEGIN IMMEDIATE"]
    finally:
        await engine.dispose()


async def test_a_command_costs_few_round_trips(any_url: str) -> None:
    """open/ack/answer/close: the dedupe mark, the request read, its thread rooms, the
    history entry, the request's write-back (carrying its audit chain's end) and the posts
    (one executemany); no savepoint, no shared audit head. (Before issue 5: 10–12.)"""
    from sqlalchemy import event

    from liaisonbot.service.desk import Actor

    bot = await start_bot(make_settings(any_url))
    try:
        statements: list[str] = []
        event.listen(bot.core.engine.sync_engine, "before_cursor_execute",
                     lambda _c, _cur, statement, *_: statements.append(statement))
        shapes = {}
        # The pool's connection is opened (its PRAGMAs) by a first command.
        await bot.core.desk.handle_command(Actor("console:alice", "console:icc"), "help",
                                           event_id="ev-warm")
        statements.clear()
        for verb, line, user, room in (
                ("open", "!liaison open C-1 to:ba-spo X", "alice", "icc"),
                ("ack", "!liaison ack R-1", "bojan", "ba"),
                ("answer", "!liaison answer R-1 done", "bojan", "ba"),
                ("close", "!liaison close R-1", "alice", "icc")):
            await bot.core.desk.handle_command(  # as the console does, minus the delivery
                Actor(f"console:{user}", f"console:{room}"), line.removeprefix("!liaison "),
                event_id=f"ev-{verb}")
            shapes[verb] = [" ".join(s.split()[:3]) for s in statements
                            if not s.startswith(("BEGIN", "PRAGMA"))]
            statements.clear()
        # open: the request's chain end is written at the commit (its id seals the entry)
        assert shapes["open"] == ["INSERT INTO inbound_event", "INSERT INTO request",
                                  "INSERT INTO history", "INSERT INTO outbox",
                                  "UPDATE request SET"]
        for verb in ("ack", "answer", "close"):
            assert shapes[verb] == [
                "INSERT INTO inbound_event", "SELECT request.id, request.case_ref,",
                "INSERT INTO history", "UPDATE request SET",
                "SELECT thread_link.id, thread_link.request_id,", "INSERT INTO outbox"], verb
        assert not any("audit_head" in s or "SAVEPOINT" in s for s in statements)
    finally:
        await bot.core.close()


async def test_a_running_replica_takes_a_dead_replicas_posts_at_once(pg_url: str) -> None:
    """PostgreSQL: a running worker hands back, every ``reclaim_seconds``, the leases of
    processes that died after it started (no connection left), so their posts go out long
    before the lease ends (the injected clock stands still)."""
    from liaisonbot.domain.cards import Post
    from liaisonbot.service.outbox import OutboxWorker
    from liaisonbot.service.ports import Delivery, ManualClock, Receipt
    from liaisonbot.store.db import INSTANCE

    await upgrade_async(pg_url)
    engine = make_engine(pg_url)
    uow = SqlUnitOfWorkFactory(engine)
    clock = ManualClock(MONDAY_10)
    delivered = asyncio.Event()

    class Gateway:
        platform = "console"

        async def deliver(self, delivery: Delivery) -> Receipt:
            assert delivery.in_doubt  # it may have gone out from the dead one: looked for
            delivered.set()
            return Receipt(delivery.delivery_id)

    worker = OutboxWorker(uow=uow, gateways={"console": Gateway()}, clock=clock, owner=INSTANCE)
    worker.reclaim_seconds = 0.05
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop, idle_seconds=0.05))
    try:
        async with uow() as tx:  # a replica that is gone had leased it for an hour
            await tx.outbox.add(platform="console", room="console:a",
                                post=Post(kind="note", text="x"), request_id=None,
                                at=clock.now())
            await tx.outbox.claim(clock.now(), 10, 3600, owner="liaisonbot-gone-7")
            await tx.commit()
        await asyncio.wait_for(delivered.wait(), 10)
    finally:
        stop.set()
        await running
        await engine.dispose()
    assert worker.delivered == 1 and clock.now() == MONDAY_10
