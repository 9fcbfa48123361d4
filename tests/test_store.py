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
from sqlalchemy import text
from sqlmodel import SQLModel

from conftest import MONDAY_10, make_settings, start_bot
from liaisonbot.domain.model import Kind, Request, Status
from liaisonbot.service.ports import Conflict
from liaisonbot.service.reports import verify_audit
from liaisonbot.store import tables  # noqa: F401
from liaisonbot.store.db import make_engine
from liaisonbot.store.migrate import upgrade_async
from liaisonbot.store.uow import SqlUnitOfWorkFactory


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
        with pytest.raises(Conflict):
            await tx.requests.update(mine)
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
        async with bot.core.engine.begin() as conn:
            await conn.execute(text("UPDATE history SET actor = 'console:eve' WHERE id = 2"))
        broken = await verify_audit(bot.core.uow)
        assert broken is not None and broken.entry_id == 2
        async with bot.core.engine.begin() as conn:
            await conn.execute(text("DELETE FROM history WHERE id = 3"))
            await conn.execute(text("UPDATE history SET actor = 'console:bojan' WHERE id = 2"))
        broken = await verify_audit(bot.core.uow)
        assert broken is not None and broken.entry_id == 3
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

    class Flaky:
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

    class Gateway:
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
    from alembic.script import ScriptDirectory

    from liaisonbot.store.migrate import alembic_config

    assert version == ScriptDirectory.from_config(alembic_config(pg_url)).get_current_head()


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

    class Busy:
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
