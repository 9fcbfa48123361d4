"""The history chain under any clock offset: one canonical UTC form for everything sealed
(issue 11, item 4), on SQLite and PostgreSQL, with DST and with chains sealed the old way."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from conftest import make_settings, start_bot
from liaisonbot.domain.audit import GENESIS, Entry, entry_hash, link_hash, utc_text, verify
from liaisonbot.service.reports import verify_audit
from support.insider import insider
from test_cli import cli

CLOCKS = {
    "cet": datetime.fromisoformat("2026-12-01T10:00:00+01:00"),
    # 29 March 2026, Europe/Amsterdam springs forward at 02:00 → 03:00.
    "dst-amsterdam": datetime(2026, 3, 29, 1, 30, tzinfo=ZoneInfo("Europe/Amsterdam")),
    "new-york": datetime(2026, 11, 1, 1, 30, tzinfo=ZoneInfo("America/New_York")),  # fall back
    "tokyo": datetime(2026, 12, 1, 18, 0, tzinfo=ZoneInfo("Asia/Tokyo")),
    "half-hour": datetime.fromisoformat("2026-12-01T15:30:00+05:30"),
}


def test_utc_text_is_one_form_for_one_moment() -> None:
    moments = [CLOCKS["cet"], CLOCKS["cet"].astimezone(ZoneInfo("Asia/Tokyo")),
               CLOCKS["cet"].astimezone(timezone(timedelta(hours=-5)))]
    assert {utc_text(m) for m in moments} == {"2026-12-01T09:00:00+00:00"}
    with pytest.raises(ValueError):
        utc_text(datetime(2026, 12, 1, 9, 0))


@pytest.mark.parametrize("clock", list(CLOCKS))
async def test_chain_verifies_whatever_the_clock_offset(any_url: str, clock: str) -> None:
    bot = await start_bot(make_settings(any_url), now=CLOCKS[clock])
    try:
        out = await bot.exec("!liaison open C-1 to:ba-spo due:30d Bank records", user="alice",
                             room="icc")
        assert "R-1 opened" in out
        await bot.exec("!liaison ack R-1 eta:10d on it", user="bojan", room="ba")
        await bot.exec("!liaison extend R-1 40d more time", user="alice", room="icc")
        # Across the DST change and a whole day of follow-ups, back to an offset clock.
        await bot.exec(":advance 1d")
        bot.clock.set(bot.clock.now().astimezone(CLOCKS[clock].tzinfo))
        await bot.exec("!liaison answer R-1 here it is", user="bojan", room="ba")
        async with bot.core.uow() as tx:
            entries = await tx.history.for_request(1)
        assert [e.action for e in entries] == ["opened", "acknowledged", "extended", "answered"]
        assert all(e.at.endswith("+00:00") for e in entries)
        assert entries[0].detail["due"].endswith("+00:00")  # detail moments too
        assert await verify_audit(bot.core.uow) is None
        async with bot.core.uow() as tx:
            chain = await tx.history.chain()
        # Sealed in the canonical form itself, not merely accepted as a legacy entry.
        assert chain and all(link_hash(item.prev_hash, item.entry) == item.hash
                             for item in chain)
        # And the check still catches a change.
        async with insider(bot.core.engine) as conn:
            await conn.execute(text("UPDATE history SET at = at + interval '1 second' WHERE id = 2")
                               if "postgresql" in any_url else
                               text("UPDATE history SET actor = 'console:eve' WHERE id = 2"))
        broken = await verify_audit(bot.core.uow)
        assert broken is not None and broken.entry_id == 2
    finally:
        await bot.core.close()


async def test_legacy_entries_sealed_with_the_clock_offset_still_verify(any_url: str) -> None:
    """A database written before the canonical form: entries sealed over the clock's own
    offset (which the store did not keep) verify; a changed legacy entry still breaks."""
    bot = await start_bot(make_settings(any_url))
    try:
        rows: list[dict[str, Any]] = []
        prev = GENESIS
        moments = [CLOCKS["cet"], CLOCKS["tokyo"], CLOCKS["half-hour"],
                   datetime.fromisoformat("2026-12-01T09:00:00.250000+00:00")]
        for number, moment in enumerate(moments, start=1):
            legacy = Entry(number, None, moment.isoformat(), "console:alice", "console",
                           "opened", {"case": "C-1"})
            sealed = entry_hash(prev, legacy)
            rows.append({"id": number, "at": moment, "hash": sealed, "prev": prev})
            prev = sealed
        async with bot.core.engine.begin() as conn:
            for row in rows:
                await conn.execute(text(
                    "INSERT INTO history (id, request_id, at, actor, platform, action, detail,"
                    " prev_hash, hash) VALUES (:id, NULL, :at, 'console:alice', 'console',"
                    " 'opened', :detail, :prev, :hash)"),
                    {**row, "at": row["at"].astimezone(UTC).replace(tzinfo=None),
                     "detail": json.dumps({"case": "C-1"})})
            # As migration 0005 leaves a database written before it: the legacy chain's end.
            await conn.execute(text("INSERT INTO audit_head (id, last_id, last_hash, legacy_upto,"
                                    " legacy_hash) VALUES (1, :id, :hash, :id, :hash)"),
                               {"id": len(rows), "hash": prev})
        assert await verify_audit(bot.core.uow) is None
        # New entries follow the legacy ones in the canonical form.
        await bot.exec("!liaison open C-1 to:ba-spo Records", user="alice", room="icc")
        assert await verify_audit(bot.core.uow) is None
        async with insider(bot.core.engine) as conn:
            await conn.execute(text("UPDATE history SET actor = 'console:eve' WHERE id = 3"))
        broken = await verify_audit(bot.core.uow)
        assert broken is not None and broken.entry_id == 3
    finally:
        await bot.core.close()


def test_verify_rejects_a_moment_moved_even_by_a_legacy_offset() -> None:
    at = CLOCKS["cet"]
    entry = Entry(1, None, utc_text(at), "console:a", "console", "opened", {})
    sealed = entry_hash(GENESIS, entry)
    assert verify([(entry, GENESIS, sealed)], (1, sealed)) is None
    moved = Entry(1, None, utc_text(at + timedelta(minutes=1)), "console:a", "console",
                  "opened", {})
    assert verify([(moved, GENESIS, sealed)], (1, sealed)) is not None


@pytest.mark.parametrize("now", ["2026-12-01T10:00:00+01:00", "2026-03-29T03:30:00+02:00",
                                 "2026-11-01T01:30:00-05:00", "2026-12-01T18:00:00+09:00"])
def test_console_then_audit_verify(tmp_path: Path, now: str) -> None:
    """The issue's reproduction through the real command line (SQLite)."""
    config_text = (Path(__file__).resolve().parent.parent / "config" / "liaisonbot.toml").read_text()
    config = tmp_path / "liaisonbot.toml"
    config.write_text(config_text.replace("sqlite+aiosqlite:///var/liaisonbot.db",
                                          f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"))
    run = cli("console", "--config", str(config), "--now", now,
              stdin="!liaison open ICC-01/14 to:ba-spo Bank records\n")
    assert run.returncode == 0 and "R-1 opened" in run.stdout, run.stderr
    checked = cli("audit", "verify", "--config", str(config))
    assert checked.returncode == 0, checked.stdout
    assert "intact" in checked.stdout
