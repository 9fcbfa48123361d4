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
from liaisonbot.service.reports import verify_audit
from liaisonbot.store.db import make_engine


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
    """A change: the mark reading the request (one statement), then on PostgreSQL the
    request's write-back with its entry and the posts (three in all), on SQLite the entry,
    the write-back and the posts (four); a replay stores nothing, a refusal and an unknown
    request keep only their marks; the chain verifies."""
    from sqlalchemy import event

    bot = await start_bot(make_settings(any_url))
    try:
        await bot.exec("!liaison open C-1 to:ba-spo X", user="alice", room="icc")
        statements: list[str] = []
        event.listen(bot.core.engine.sync_engine, "before_cursor_execute",
                     lambda _c, _cur, statement, *_: statements.append(statement))
        from liaisonbot.service.desk import Actor
        ack = Actor("console:bojan", "console:ba")
        outcome = await bot.core.desk.handle_command(ack, "ack R-1 eta:5d on it",
                                                     event_id="ev-1")
        assert outcome is not None and outcome.ok
        statements = [s for s in statements if not s.startswith("BEGIN")]
        assert "inbound_event" in statements[0] and "request.id" in statements[0]
        if any_url.startswith("sqlite"):
            assert len(statements) == 4 and "RETURNING" in statements[0]
        else:
            assert len(statements) == 3 and "WITH mark" in statements[0]
            assert "new_entry" in statements[1] and "UPDATE request" in statements[1]
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
