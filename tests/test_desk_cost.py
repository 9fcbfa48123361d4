"""The desk's hot path made cheaper without changing what it does (issue 16): the outbox
JSON of a post, the plain-word tokenizer, the directory's lookups, SQLite's one thread hop per
statement, and on PostgreSQL the mark that reads the request and the entry that goes with the
request's write-back."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text

from conftest import make_settings, start_bot
from liaisonbot.domain import grammar
from liaisonbot.domain.cards import Card, Post
from liaisonbot.service.ports import Replay
from liaisonbot.service.reports import verify_audit
from liaisonbot.store.db import make_engine
from liaisonbot.store.onehop import OneHopConnection


def _card(n: int, **kw: Any) -> Card:
    return Card(request_id=n, case="ICC-01/14", kind="mla", requesting="icc-otp",
                requesting_name="ICC «OTP»", requested="ba-spo", requested_name="Сараєво",
                status="open", due_at="2026-12-30T16:30:00+00:00", **kw)


@pytest.mark.parametrize("post", [
    Post(kind="reply", text="R-1 done"),
    Post(kind="card", text="Opened\nline 2", tz="Europe/Kyiv", as_of="2026-12-02T12:00:00",
         locale="uk", card=_card(1, summary="Bank records ✓", eta=None), request_id=1,
         mentions=("slack:U1", "matrix:@a:b"), extra={"skip": True, "n": [1, {"a": None}]}),
    Post(kind="list", text="Title", cards=(_card(1), _card(2, urgent=True, days_late=3)),
         author="alice · icc-otp", source_ref="slack:C1#1.2", in_thread=True),
])
def test_post_json_is_what_asdict_gave(post: Post) -> None:
    old = json.dumps(asdict(post), ensure_ascii=False, separators=(",", ":"))
    assert post.to_json() == old
    assert Post.from_json(post.to_json()) == post


def _slow_tokens(text: str) -> list[grammar.Token]:
    """The character loop alone (the path a text with quotes takes)."""
    saved = grammar._QUOTES
    grammar._QUOTES = {**saved, "\x00": "\x00"}  # a quote char in every text: no fast path
    try:
        return grammar.tokenize(text + " \x00\x00")[:-1]  # less the empty quoted token
    finally:
        grammar._QUOTES = saved


@given(st.text(alphabet=st.sampled_from("ab:-R1 \t\n\u00a0\u2003\u3000é"), max_size=40))
def test_plain_words_split_as_the_character_loop_does(text: str) -> None:
    fast = grammar.tokenize(text)
    assert fast == [grammar.Token(t.text) for t in _slow_tokens(text)]


def test_the_directory_remembers_rooms_and_still_answers_for_any_room() -> None:
    directory = make_settings("sqlite+aiosqlite:///:memory:").directory
    first = directory.offices[0]
    room = first.rooms[0]
    for n in range(5000):  # past the memo's bound: it is dropped, answers stay right
        assert directory.office_for_room(f"console:nobody-{n}") is None
        assert directory.office_for_room(room) is first
    assert directory.office(first.slug) is first and directory.office("nope") is None


async def test_sqlite_runs_a_statement_in_one_hop(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    hops: list[str] = []
    real = aiosqlite.Connection._execute

    async def counted(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(fn, "__name__", "?"))
        return await real(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'hops.db'}")
    try:
        async with engine.connect() as conn:
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
            await conn.commit()
            hops.clear()
            async with conn.begin():
                inserted = await conn.execute(text("INSERT INTO t (v) VALUES ('a')"))
                assert inserted.rowcount == 1 and inserted.lastrowid == 1
                many = await conn.execute(text("INSERT INTO t (v) VALUES (:v)"),
                                          [{"v": "b"}, {"v": "c"}])
                assert many.rowcount == 2
                rows = (await conn.execute(text("SELECT id, v FROM t ORDER BY id"))).all()
                assert [tuple(r) for r in rows] == [(1, "a"), (2, "b"), (3, "c")]
            # BEGIN IMMEDIATE goes with the first statement; three statements, COMMIT
            assert len(hops) == 4, hops
            hops.clear()
        assert hops == []  # the pool's reset of a committed connection: nothing to roll back
        async with engine.connect() as conn:  # a transaction with no statement: no hop at all
            async with conn.begin():
                pass
            await conn.begin()
            await conn.rollback()
        assert hops == []
        async with engine.connect() as conn:  # the deferred BEGIN IMMEDIATE still locks
            async with conn.begin():
                await conn.execute(text("UPDATE t SET v = v WHERE id = 1"))
                raw = await conn.get_raw_connection()
                assert raw.driver_connection._conn.in_transaction
        async with engine.connect() as conn:  # a rollback that has something to undo
            await conn.execute(text("INSERT INTO t (v) VALUES ('gone')"))
            await conn.rollback()
            assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 3
    finally:
        await engine.dispose()


async def test_the_mark_reads_the_request_and_the_chain_holds(any_url: str) -> None:
    """A change: on PostgreSQL the mark reading the request (one statement), then the
    request's write-back, its entry and the posts (one statement of kept writes); on SQLite the request read, then
    the mark, the entry, the write-back and the posts kept for the COMMIT: two hops in all. A
    replay stores nothing, a refusal and an unknown request keep only their marks; the chain
    verifies."""
    from sqlalchemy import event

    bot = await start_bot(make_settings(any_url))
    try:
        await bot.exec("!liaison open C-1 to:ba-spo X", user="alice", room="icc")
        statements: list[str] = []
        event.listen(bot.core.engine.sync_engine, "before_cursor_execute",
                     lambda _c, _cur, statement, *_: statements.append(statement))
        from liaisonbot.service.desk import Actor
        ack = Actor("console:bojan", "console:ba")
        hops = OneHopConnection.hops
        outcome = await bot.core.desk.handle_command(ack, "ack R-1 eta:5d on it",
                                                     event_id="ev-1")
        assert outcome is not None and outcome.ok
        statements = [s for s in statements if not s.startswith("BEGIN")]
        if any_url.startswith("sqlite"):  # the mark goes with the writes and the COMMIT
            assert statements == []  # the read goes straight through the driver
            assert OneHopConnection.hops - hops == 2  # BEGIN + read; mark, writes, COMMIT
        else:
            assert "inbound_event" in statements[0] and "request.id" in statements[0]
            # the entry, the write-back and the posts: one statement of kept writes
            assert len(statements) == 2 and "WITH mark" in statements[0]
            assert all(f"INTO {table}" in statements[1] for table in ("history", "outbox"))
            assert "UPDATE request" in statements[1]
        assert await bot.core.desk.handle_command(ack, "ack R-1 eta:5d on it",
                                                  event_id="ev-1") is None  # replay
        refused = await bot.core.desk.handle_command(ack, "close R-1", event_id="ev-2")
        assert refused is not None and not refused.ok  # the requesting office closes
        missing = await bot.core.desk.handle_command(ack, "ack R-99", event_id="ev-3")
        assert missing is not None and not missing.ok
        async with bot.core.engine.connect() as conn:
            actions = [r[0] for r in await conn.execute(text(
                "SELECT action FROM history WHERE request_id = 1 ORDER BY id"))]
            marks = (await conn.execute(text("SELECT count(*) FROM inbound_event "
                                             "WHERE event_id LIKE 'ev-%'"))).scalar()
        assert actions == ["opened", "acknowledged"] and marks == 3
        assert await verify_audit(bot.core.uow) is None
    finally:
        await bot.core.close()



async def test_kept_writes_go_with_the_commit_and_a_failed_check_stores_nothing(
        any_url: str) -> None:
    """A unit of work's writes are kept (SQLite: for the commit's hop; PostgreSQL: one
    statement): what they write reads back as SQLAlchemy's own writes do (datetimes, flags);
    a write-back whose version check fails at the commit raises Conflict and stores nothing
    of the transaction, and the connection is clean for the next unit of work (no
    transaction left open, the write lock free)."""
    from datetime import UTC, datetime

    from liaisonbot.domain.cards import Post
    from liaisonbot.service.ports import Conflict, OutboxDraft

    bot = await start_bot(make_settings(any_url))
    sqlite = any_url.startswith("sqlite")
    at = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
    post = Post(kind="reply", text="kept", tz="UTC", as_of=at.isoformat(), locale="en")
    try:
        await bot.exec("!liaison open C-1 to:ba-spo X", user="alice", room="icc")

        async def counts() -> tuple[int, int, int]:
            async with bot.core.engine.connect() as conn:
                found = [(await conn.execute(text(q))).scalar() for q in (
                    "SELECT version FROM request WHERE id = 1",
                    "SELECT count(*) FROM history", "SELECT count(*) FROM outbox")]
                return found[0], found[1], found[2]

        before = await counts()
        with pytest.raises(Conflict):
            async with bot.core.uow() as uow:
                request = await uow.requests.get(1)
                assert request is not None
                # Another writer moved the row on (here: in this same transaction, before).
                await uow.conn.execute(text("UPDATE request SET version = version + 1"))
                await uow.history.append(request_id=1, at=at, actor="console:bojan",
                                         platform="console", action="noted", detail={})
                await uow.requests.update(request)
                await uow.outbox.add_many([OutboxDraft("console", "console:icc", post, 1, at)])
                await uow.commit()  # the kept write-back's check fails here
        assert await counts() == before  # nothing of it, not even the statement run early
        async with bot.core.uow() as uow:  # the next writer is not blocked and sees no rest
            raw = uow.raw
            assert (raw is not None) == sqlite
            await uow.outbox.add_many([OutboxDraft("console", "console:icc", post, 1, at),
                                       OutboxDraft("console", "console:ba", post, 1, at)])
            await uow.commit()
            assert raw is None or not raw._inner._conn.in_transaction
        async with bot.core.engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT created_at, next_attempt_at, in_doubt, status, attempts, post, room "
                "FROM outbox ORDER BY id DESC LIMIT 2"))).all()
            reference = (await conn.execute(text(
                "SELECT created_at FROM outbox ORDER BY id LIMIT 1"))).scalar()
        assert [r.room for r in rows] == ["console:ba", "console:icc"]  # in their order
        row = rows[0]
        if sqlite:
            assert row.created_at == row.next_attempt_at == "2026-03-04 05:06:07.890123"
            assert len(reference) == len(row.created_at)  # the format SQLAlchemy writes
        else:
            assert row.created_at == row.next_attempt_at == at.replace(tzinfo=None)
        assert (int(row.in_doubt), row.status, row.attempts) == (0, "pending", 0)
        assert Post.from_json(row.post) == post
        async with bot.core.uow() as uow:
            items = await uow.outbox.claim(at, 50, 8)
        assert any(i.created_at == at and i.post == post for i in items)
    finally:
        await bot.core.close()


@given(st.datetimes(timezones=st.timezones()))
def test_a_kept_utc_value_is_the_text_sqlalchemy_writes(moment: Any) -> None:
    """The kept writes' one-step conversion of a UTC column gives SQLite exactly the text
    SQLAlchemy's own processors give (so text comparisons order both alike)."""
    from sqlalchemy.dialects import sqlite

    from liaisonbot.store.kept import _sqlite_utc
    from liaisonbot.store.types import UTCDateTime

    dialect = sqlite.dialect()
    theirs = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert theirs is not None
    try:
        expected = theirs(moment)
    except (OverflowError, ValueError):  # beyond datetime's range once in UTC
        with pytest.raises((OverflowError, ValueError)):
            _sqlite_utc(moment)
        return
    assert _sqlite_utc(moment) == expected


async def test_sqlite_reads_a_request_through_the_driver_as_sqlalchemy_does(
        sqlite_url: str) -> None:
    """The request a command names is read on SQLite straight through the driver: the same
    Request (every field, UTC datetimes, flags, None where none) and thread rooms as the
    statement run through SQLAlchemy gives, for requests in several states."""
    from liaisonbot.service.ports import ThreadLink
    from liaisonbot.store.uow import _GET_REQUEST, _to_request

    bot = await start_bot(make_settings(sqlite_url))
    try:
        await bot.exec("!liaison open C-1 to:ba-spo urgent conf:confidential X", user="alice",
                       room="icc")
        await bot.exec("!liaison open C-1 to:ba-spo Y", user="alice", room="icc")
        await bot.exec("!liaison ack R-2 eta:5d on it", user="bojan", room="ba")
        await bot.exec("!liaison snooze R-2 3d waiting for the court", user="alice",
                       room="icc")
        for request_id in (1, 2, 3):
            async with bot.core.uow() as uow:
                raw = uow.raw
                assert raw is not None
                hops = OneHopConnection.hops
                mine = await uow.requests.get(request_id)
                assert OneHopConnection.hops - hops == 1
                links = uow.links.get(request_id)
                row = (await uow.conn.execute(_GET_REQUEST[True], {"id": request_id})).first()
            if request_id == 3:  # no such request
                assert mine is None and row is None
                continue
            assert row is not None and mine is not None
            assert mine == _to_request(row)
            if request_id == 1:
                assert mine.urgent is True and mine.eta is None
            else:  # acknowledged with an eta, snoozed
                assert mine.eta is not None and mine.eta.tzinfo is not None
                assert mine.snoozed_until is not None and mine.urgent is False
            assert links == [ThreadLink(request_id, *link) for link in json.loads(row.links)]
            assert {link.room for link in links} == {"console:icc", "console:ba"}  # both cards
    finally:
        await bot.core.close()


async def test_postgres_sends_kept_writes_in_order_and_splits_what_one_statement_cannot_bind(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL: kept writes go as one statement of CTEs (a mark and posts: the posts one
    multi-row VALUES, in their order) before the next statement or the commit; rows beyond
    what one statement may bind go on their own (an executemany), still in order."""
    from datetime import UTC, datetime

    from sqlalchemy import event

    from liaisonbot.service.ports import OutboxDraft
    from liaisonbot.store import kept

    bot = await start_bot(make_settings(pg_url))
    at = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    statements: list[str] = []
    event.listen(bot.core.engine.sync_engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_: statements.append(statement))

    def drafts(prefix: str, n: int) -> list[OutboxDraft]:
        return [OutboxDraft("console", f"console:{prefix}", Post(kind="reply",
                                                                 text=f"{prefix}{i}"), None, at)
                for i in range(n)]

    try:
        async with bot.core.uow() as uow:
            assert await uow.inbound.first_time("console", "e-1", at, at_commit=True)
            await uow.outbox.add_many(drafts("p", 5))
            assert await uow.state.get("k") is None  # a statement: the kept writes go first
            await uow.commit()
        together = [s for s in statements if s.startswith("WITH")]
        # the mark's three values and five rows of eight: one statement
        assert len(together) == 1 and "$43::" in together[0] and "$44" not in together[0]
        assert statements.index(together[0]) < min(
            i for i, s in enumerate(statements) if "kv_state" in s)
        monkeypatch.setattr(kept, "MAX_VALUES", 10)  # now two rows are too many to bind
        statements.clear()
        async with bot.core.uow() as uow:
            assert await uow.inbound.first_time("console", "e-2", at, at_commit=True)
            await uow.outbox.add_many(drafts("s", 3))
            await uow.commit()
        assert [s for s in statements if s.startswith("INSERT INTO outbox")]  # on its own
        async with bot.core.engine.connect() as conn:
            texts = [Post.from_json(r[0]).text for r in await conn.execute(text(
                "SELECT post FROM outbox ORDER BY id"))]
        assert texts == [f"p{i}" for i in range(5)] + ["s0", "s1", "s2"]
        async with bot.core.uow() as uow:  # a replay found in the statement: nothing stored
            assert await uow.inbound.first_time("console", "e-1", at, at_commit=True)
            await uow.outbox.add_many(drafts("x", 2))
            with pytest.raises(Replay):
                await uow.commit()
        async with bot.core.engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM outbox"))).scalar() == 8
    finally:
        await bot.core.close()


async def test_a_relayed_message_costs_three_hops_and_a_replay_stores_nothing(
        sqlite_url: str) -> None:
    """SQLite: a message in a request's thread is the thread's lookup, the request's read,
    then its mark, history, copies and source record (an upsert) with the COMMIT: three hops.
    The same event again is relayed no more (found at the commit)."""
    from liaisonbot.service.desk import Actor

    bot = await start_bot(make_settings(sqlite_url))
    try:
        await bot.exec("!liaison open C-1 to:ba-spo Records", user="alice", room="icc")
        await bot.console.settle()
        async with bot.core.uow() as uow:
            links = await uow.threads.for_request(1)
        root = next(link.thread_root for link in links if link.room == "console:ba")
        actor = Actor("console:bojan", "console:ba", thread_root=root)
        for n in range(2):  # a second message, a second source key
            hops = OneHopConnection.hops
            assert await bot.core.desk.relay(actor, "the address is 12 Elm St",
                                             event_id=f"ev-{n}", source_ref=f"console:ba#m{n}")
            assert OneHopConnection.hops - hops == 3
        assert not await bot.core.desk.relay(actor, "the address is 12 Elm St",
                                             event_id="ev-0", source_ref="console:ba#m0")
        async with bot.core.engine.connect() as conn:
            relays = (await conn.execute(text(
                "SELECT count(*) FROM history WHERE action = 'relayed'"))).scalar()
            sources = (await conn.execute(text(
                "SELECT count(*) FROM kv_state WHERE key LIKE 'relay:%'"))).scalar()
        assert (relays, sources) == (2, 2)
    finally:
        await bot.core.close()
