"""The audit chain per request (migration 0005): no shared row, and ``audit verify`` still
finds a changed, removed or inserted entry anywhere; a database written before it upgrades
and its old entries verify."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, text

from conftest import MONDAY_10, make_settings, start_bot
from liaisonbot.domain.audit import GENESIS, Entry, entry_hash, link_hash, utc_text
from liaisonbot.domain.model import Kind, Request, Status
from liaisonbot.service.ports import Conflict, HistoryDraft
from liaisonbot.service.reports import verify_audit
from liaisonbot.store.db import make_engine
from liaisonbot.store.migrate import upgrade
from liaisonbot.store.tables import HistoryRow
from liaisonbot.store.uow import SqlUnitOfWorkFactory
from support.insider import insider


async def _bot_with_history(url: str) -> Any:
    bot = await start_bot(make_settings(url))
    await bot.exec("!liaison open C-1 to:ba-spo X", user="alice", room="icc")   # entry 1
    await bot.exec("!liaison open C-2 to:ba-spo Y", user="alice", room="icc")   # entry 2
    await bot.exec("!liaison ack R-1", user="bojan", room="ba")                 # entry 3
    await bot.exec("!liaison ack R-2", user="bojan", room="ba")                 # entry 4
    await bot.exec("!liaison answer R-1 done", user="bojan", room="ba")         # entry 5
    assert await verify_audit(bot.core.uow) is None
    return bot


async def _rows(bot: Any) -> dict[int, Any]:
    async with bot.core.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM history ORDER BY id"))).all()
    return {row.id: row for row in rows}


def _entry(row: Any, **change: Any) -> Entry:
    data = {"id": row.id, "request_id": row.request_id, "at": utc_text(MONDAY_10),
            "actor": row.actor, "platform": row.platform, "action": row.action,
            "detail": json.loads(row.detail), **change}
    return Entry(**data)


async def _insert(bot: Any, entry: Entry, prev: str, sealed: str) -> None:
    async with bot.core.engine.begin() as conn:  # through the table: its column types
        await conn.execute(insert(HistoryRow.__table__).values(  # type: ignore[attr-defined]
            request_id=entry.request_id, at=MONDAY_10, actor=entry.actor,
            platform=entry.platform, action=entry.action,
            detail=json.dumps(entry.detail, sort_keys=True), prev_hash=prev, hash=sealed))


async def test_entries_link_per_request_and_rows_keep_the_end(any_url: str) -> None:
    bot = await _bot_with_history(any_url)
    try:
        rows = await _rows(bot)
        assert [rows[n].request_id for n in sorted(rows)] == [1, 2, 1, 2, 1]
        # R-1's chain: 1 → 3 → 5; R-2's: 2 → 4; nothing links across requests.
        assert rows[1].prev_hash == GENESIS and rows[2].prev_hash == GENESIS
        assert rows[3].prev_hash == rows[1].hash and rows[5].prev_hash == rows[3].hash
        assert rows[4].prev_hash == rows[2].hash
        async with bot.core.engine.connect() as conn:
            tails = dict((await conn.execute(text("SELECT id, audit_hash FROM request"))).all())
            head = (await conn.execute(text("SELECT count(*) FROM audit_head"))).scalar()
        assert tails == {1: rows[5].hash, 2: rows[4].hash}
        assert head == 0  # request entries never touch the head row
    finally:
        await bot.core.close()


@pytest.mark.parametrize(("tamper", "entry_id", "reason"), [
    ("UPDATE history SET actor = 'console:eve' WHERE id = 3", 3, "changed"),
    ("DELETE FROM history WHERE id = 3", 5, "follow"),  # removed in the middle
], ids=["changed", "removed-in-the-middle"])
async def test_verify_finds_a_tampered_entry(any_url: str, tamper: str, entry_id: int,
                                             reason: str) -> None:
    bot = await _bot_with_history(any_url)
    try:
        async with insider(bot.core.engine) as conn:
            await conn.execute(text(tamper))
        broken = await verify_audit(bot.core.uow)
        assert broken is not None and broken.entry_id == entry_id and reason in broken.reason
    finally:
        await bot.core.close()


async def test_verify_finds_a_removed_last_entry(any_url: str) -> None:
    bot = await _bot_with_history(any_url)
    try:
        async with insider(bot.core.engine) as conn:
            await conn.execute(text("DELETE FROM history WHERE id = 4"))  # R-2's last
        broken = await verify_audit(bot.core.uow)
        assert broken is not None and broken.entry_id == 2 and "last entry" in broken.reason
        async with insider(bot.core.engine) as conn:  # and a request's whole chain
            await conn.execute(text("DELETE FROM history WHERE request_id = 2"))
        broken = await verify_audit(bot.core.uow)
        assert broken is not None and "request 2" in broken.reason
    finally:
        await bot.core.close()


async def test_verify_finds_an_inserted_entry(any_url: str) -> None:
    """A forged entry, correctly sealed, linked after R-1's first entry (a fork) or after its
    last (the row's recorded end no longer matches); an unsealed one fails its own hash."""
    bot = await _bot_with_history(any_url)
    try:
        rows = await _rows(bot)
        forged = _entry(rows[3], id=0, actor="console:eve")
        await _insert(bot, forged, rows[1].hash, link_hash(rows[1].hash, forged))
        broken = await verify_audit(bot.core.uow)
        assert broken is not None and broken.entry_id == 6 and "follow" in broken.reason
        async with insider(bot.core.engine) as conn:
            await conn.execute(text("DELETE FROM history WHERE id = 6"))
        assert await verify_audit(bot.core.uow) is None
        await _insert(bot, forged, rows[5].hash, link_hash(rows[5].hash, forged))
        broken = await verify_audit(bot.core.uow)
        assert broken is not None and broken.entry_id == 7 and "last entry" in broken.reason
        async with insider(bot.core.engine) as conn:
            await conn.execute(text("DELETE FROM history WHERE id = 7"))
        await _insert(bot, forged, rows[5].hash, "f" * 64)
        broken = await verify_audit(bot.core.uow)
        assert broken is not None and broken.entry_id == 8 and "changed" in broken.reason
    finally:
        await bot.core.close()


async def test_an_old_database_upgrades_and_its_entries_verify(any_url: str) -> None:
    await asyncio.to_thread(upgrade, any_url, "0004")
    naive = MONDAY_10.astimezone(UTC).replace(tzinfo=None)  # as the store keeps it
    engine = make_engine(any_url)
    hashes: list[str] = []
    try:
        prev = GENESIS
        async with engine.begin() as conn:
            for rid in (1, 2):
                await conn.execute(text(
                    "INSERT INTO request (id, case_ref, kind, requesting, requested, summary,"
                    " basis, urgent, confidentiality, status, opened_by, created_at, updated_at,"
                    " due_at, ack_due_at, ack_nudges_sent, answer_nudges_sent, version, person,"
                    " measure, incomplete_nudges_sent, eta_reminded) VALUES (:id, 'C-1', 'mla',"
                    " 'icc-otp', 'ba-spo', 's', '', false, 'restricted', 'open', 'console:alice',"
                    " :at, :at, :due, :due, 0, 0, 1, '', '', 0, false)"),
                    {"id": rid, "at": naive, "due": naive + timedelta(days=3)})
            for number, rid in enumerate((1, 2, 1), start=1):
                entry = Entry(number, rid, utc_text(MONDAY_10), "console:alice", "console",
                              "opened" if number < 3 else "noted", {"n": number})
                sealed = entry_hash(prev, entry)
                await conn.execute(text(
                    "INSERT INTO history (id, request_id, at, actor, platform, action, detail,"
                    " prev_hash, hash) VALUES (:id, :rid, :at, 'console:alice', 'console',"
                    " :action, :detail, :prev, :hash)"),
                    {"id": number, "rid": rid, "at": naive, "action": entry.action,
                     "detail": json.dumps(entry.detail), "prev": prev, "hash": sealed})
                hashes.append(sealed)
                prev = sealed
            await conn.execute(text("INSERT INTO audit_head (id, last_id, last_hash)"
                                    " VALUES (1, 3, :hash)"), {"hash": prev})
    finally:
        await engine.dispose()
    await asyncio.to_thread(upgrade, any_url)
    engine = make_engine(any_url)
    uow = SqlUnitOfWorkFactory(engine)
    try:
        async with engine.connect() as conn:
            tails = dict((await conn.execute(text("SELECT id, audit_hash FROM request"))).all())
            seal = (await conn.execute(text("SELECT legacy_upto, legacy_hash FROM audit_head"))
                    ).one()
        assert tails == {1: hashes[2], 2: hashes[1]} and tuple(seal) == (3, hashes[2])
        assert await verify_audit(uow) is None
        # New entries continue each request's chain from its last legacy entry; the database
        # hands out the next id (the PostgreSQL sequence was moved past the old ids).
        async with uow() as tx:
            request = await tx.requests.get(2)
            assert request is not None
            await tx.history.append_many([HistoryDraft(2, MONDAY_10, "console:bojan",
                                                       "console", "acknowledged", {})])
            await tx.requests.update(request)
            await tx.commit()
        rows = {}
        async with engine.connect() as conn:
            for row in (await conn.execute(text("SELECT * FROM history ORDER BY id"))).all():
                rows[row.id] = row
        assert sorted(rows) == [1, 2, 3, 4] and rows[4].prev_hash == hashes[1]
        assert await verify_audit(uow) is None
        # A changed or removed legacy entry is still found.
        async with insider(engine) as conn:
            await conn.execute(text("UPDATE history SET actor = 'console:eve' WHERE id = 1"))
        broken = await verify_audit(uow)
        assert broken is not None and broken.entry_id == 1
        async with insider(engine) as conn:
            await conn.execute(text("UPDATE history SET actor = 'console:alice' WHERE id = 1"))
            await conn.execute(text("DELETE FROM history WHERE id = 2"))
        broken = await verify_audit(uow)
        assert broken is not None and broken.entry_id == 2 and "missing" in broken.reason
    finally:
        await engine.dispose()


async def test_writers_of_different_requests_do_not_wait_and_a_race_re_runs(
        pg_url: str) -> None:
    """PostgreSQL, two connections: appending to different requests needs no shared lock
    (both hold their transactions open at once); two appends to the same request cannot
    both stand: the later one's commit raises Conflict (the desk re-runs it)."""
    await asyncio.to_thread(upgrade, pg_url)
    engine = make_engine(pg_url)
    uow = SqlUnitOfWorkFactory(engine)
    try:
        for _ in range(2):
            async with uow() as tx:
                await tx.requests.add(Request(
                    id=0, case="C-1", kind=Kind.MLA, requesting="icc-otp", requested="ba-spo",
                    summary="s", status=Status.OPEN, created_at=MONDAY_10,
                    updated_at=MONDAY_10, due_at=MONDAY_10 + timedelta(days=3),
                    ack_due_at=MONDAY_10 + timedelta(days=1), opened_by="console:alice"))
                await tx.commit()

        def draft(rid: int) -> HistoryDraft:
            return HistoryDraft(rid, MONDAY_10, "console:alice", "console", "noted", {})

        async with uow() as a, uow() as b:
            await a.history.append_many([draft(1)])
            # b does not wait for a (no shared row): with a lock it would block here.
            await asyncio.wait_for(b.history.append_many([draft(2)]), timeout=5)
            await asyncio.wait_for(b.commit(), timeout=5)
            await a.commit()
        assert await verify_audit(uow) is None
        async with uow() as a, uow() as b:
            await a.history.append_many([draft(1)])
            await b.history.append_many([draft(1)])
            await a.commit()
            with pytest.raises(Conflict):
                await b.commit()
        assert await verify_audit(uow) is None
    finally:
        await engine.dispose()
