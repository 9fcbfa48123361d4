"""Signed checkpoints (issue 22, item 4): the insider attacks of the security findings
("History"), done by plain SQL as a superuser, are each named; an untouched database verifies
against an older checkpoint; a tampered checkpoint is refused; the daily checkpoint is posted
into every office's rooms."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select, text

from conftest import MONDAY_10, make_settings, start_bot
from liaisonbot.domain.audit import GENESIS, Entry, link_hash, state_hash, utc_text
from liaisonbot.domain.checkpoint import SIZE, CheckpointError, read, seed_text
from liaisonbot.service.reports import check_checkpoint, take_checkpoint, verify_audit
from liaisonbot.store.history import H
from support.insider import insider

KEY = Ed25519PrivateKey.generate()


async def _desk(url: str) -> Any:
    bot = await start_bot(make_settings(url))
    for n in range(1, 6):
        extra = " conf:confidential" if n == 2 else ""
        await bot.exec(f"!liaison open C-{n} to:ba-spo{extra} Records {n}", user="alice",
                       room="icc")
        await bot.exec(f"!liaison ack R-{n}", user="bojan", room="ba")
    await bot.exec("!liaison answer R-1 the account exists", user="bojan", room="ba")
    assert await verify_audit(bot.core.uow) is None
    return bot


async def _rewrite_r1(bot: Any) -> None:
    """Rewrite R-1's answer and its ack's actor, re-chain, store the new end and state."""
    async with bot.core.uow(read_only=True) as tx:
        request = await tx.requests.get(1)
    async with bot.core.engine.connect() as conn:
        rows = (await conn.execute(select(H).where(H.c.request_id == 1)
                                   .order_by(H.c.id))).all()
    request.answer = "no such account"
    prev = GENESIS
    async with insider(bot.core.engine) as conn:
        for row in rows:
            detail = json.loads(row.detail)
            actor = row.actor
            if row.action == "acknowledged":
                actor = "console:mallory"
            if "answer" in detail:
                detail["answer"] = "no such account"
            state = state_hash(request) if row.id == rows[-1].id else row.state_hash
            entry = Entry(0, 1, utc_text(row.at), actor, row.platform, row.action, detail,
                          state)
            sealed = link_hash(prev, entry)
            await conn.execute(text(
                "UPDATE history SET actor = :a, detail = :d, prev_hash = :p, hash = :h, "
                "state_hash = :s WHERE id = :id"), {"a": actor, "s": state,
                                                     "d": json.dumps(detail, sort_keys=True),
                                     "p": prev, "h": sealed, "id": row.id})
            prev = sealed
        await conn.execute(text("UPDATE request SET answer = :a, audit_hash = :h WHERE id = 1"),
                           {"a": request.answer, "h": prev})


ATTACKS = {
    "rewrite-and-rechain": None,
    "row-without-entry": ["UPDATE request SET confidentiality = 'restricted' WHERE id = 2"],
    "delete-request": ["DELETE FROM history WHERE request_id = 3",
                       "DELETE FROM request WHERE id = 3"],
    "delete-history": ["DELETE FROM history WHERE request_id = 4",
                       "UPDATE request SET audit_hash = NULL, summary = 'x' WHERE id = 4"],
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
async def test_each_insider_attack_is_named(any_url: str, attack: str) -> None:
    bot = await _desk(any_url)
    try:
        word = await take_checkpoint(bot.core.uow, KEY, MONDAY_10)
        statement = read(word, KEY.public_key())
        assert statement.requests == 5 and statement.entries == 11
        statements = ATTACKS[attack]
        if statements is None:
            await _rewrite_r1(bot)
        else:
            async with insider(bot.core.engine) as conn:
                for sql in statements:
                    await conn.execute(text(sql))
        broken = await verify_audit(bot.core.uow)
        check = await check_checkpoint(bot.core.uow, statement)
        said = " ".join(check.problems)
        if attack == "rewrite-and-rechain":
            assert broken is None  # consistent on its own: only the checkpoint sees it
            assert "R-1's history up to the checkpoint was rewritten" in said
        elif attack == "row-without-entry":
            assert broken is not None and "R-2 was changed in the database without a " \
                "history entry" in broken.reason
            assert not check.problems  # the history itself is untouched
        elif attack == "delete-request":
            assert broken is None
            assert "R-3 was deleted" in said
        else:
            assert broken is not None and "R-4 has no history entry" in broken.reason
            assert "R-4's history was removed" in said
    finally:
        await bot.core.close()


async def test_an_untouched_database_verifies_against_an_older_checkpoint(any_url: str) -> None:
    bot = await _desk(any_url)
    try:
        old = read(await take_checkpoint(bot.core.uow, KEY, MONDAY_10), KEY.public_key())
        await bot.exec("!liaison answer R-2 done", user="bojan", room="ba")
        await bot.exec("!liaison open C-9 to:ba-spo More", user="alice", room="icc")
        await bot.exec(":advance 3w")
        assert await verify_audit(bot.core.uow) is None
        assert (await check_checkpoint(bot.core.uow, old)).problems == []
        newer = read(await take_checkpoint(bot.core.uow, KEY, MONDAY_10), KEY.public_key())
        assert newer.entries > old.entries and newer.requests == 6
        assert (await check_checkpoint(bot.core.uow, newer)).problems == []
    finally:
        await bot.core.close()


def test_a_tampered_or_foreign_checkpoint_is_refused() -> None:
    from liaisonbot.domain.checkpoint import Statement

    word = __import__("liaisonbot.domain.checkpoint", fromlist=["sign"]).sign(
        Statement.over([], 0, MONDAY_10), KEY)
    assert len(word) == len("lbcp1:") + (SIZE * 4 + 2) // 3 == 280
    assert read(word, KEY.public_key()).requests == 0
    body = word[6:]
    flipped = "lbcp1:" + body[:20] + ("A" if body[20] != "A" else "B") + body[21:]
    with pytest.raises(CheckpointError, match="signature that does not hold"):
        read(flipped, KEY.public_key())
    with pytest.raises(CheckpointError, match="not signed by this deployment"):
        read(word, Ed25519PrivateKey.generate().public_key())
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        read(word[:-10], KEY.public_key())


async def test_the_daily_checkpoint_reaches_every_office(sqlite_url: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIAISONBOT_AUDIT_SIGNING_KEY", seed_text(KEY))
    bot = await start_bot(make_settings(sqlite_url))
    try:
        await bot.exec("!liaison open C-1 to:ba-spo Records", user="alice", room="icc")
        out = await bot.exec(":advance 1d")
        for room in ("console:icc", "console:ba", "console:ua"):
            lines = [line for line in out.splitlines()
                     if line.startswith(f"[{room}] ") and "lbcp1:" in line]
            assert len(lines) == 1, out
        word = "lbcp1:" + out.split("lbcp1:")[1].split()[0]
        statement = read(word, KEY.public_key())
        assert statement.requests == 1
        assert "Audit checkpoint" in out
        again = await bot.exec(":advance 6h")  # once a day
        assert "lbcp1:" not in again
        assert bot.clock.now() - MONDAY_10 >= timedelta(days=1, hours=6)
        assert statement.at <= bot.clock.now().astimezone(UTC)
        assert replace(statement) == statement
    finally:
        await bot.core.close()
