"""Issue 16 (memory): the running bot checks the schema without Alembic and migrates, when it
must, in a child process (``store.schema``)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from conftest import make_settings
from liaisonbot.bootstrap import build_core
from liaisonbot.store import schema
from liaisonbot.store.db import make_engine
from liaisonbot.store.migrate import alembic_config, upgrade_async

ROOT = Path(__file__).resolve().parent.parent


def test_the_recorded_head_is_alembics_head() -> None:
    """A new migration must move ``schema.HEAD`` (else ``run`` would think a current database
    behind, or an old one current)."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert script.get_heads() == [schema.HEAD]


async def _version(url: str) -> set[str]:
    engine = make_engine(url)
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
    await engine.dispose()
    return {r[0] for r in rows}


async def test_revisions_are_read_without_alembic(any_url: str) -> None:
    assert await schema.current_revisions(any_url) == set()
    assert not await schema.at_head(any_url)
    await upgrade_async(any_url)
    assert await schema.current_revisions(any_url) == await _version(any_url) == {schema.HEAD}
    assert await schema.at_head(any_url)


async def test_ensure_schema_in_a_child_migrates_an_old_database(any_url: str) -> None:
    await upgrade_async(any_url)  # to head, then back to an older schema
    await asyncio.to_thread(_downgrade, any_url, "0003")
    assert await _version(any_url) == {"0003"}
    assert await schema.ensure_schema(any_url, child=True) is True
    assert await _version(any_url) == {schema.HEAD}
    assert await schema.ensure_schema(any_url, child=True) is False  # nothing to do now


def _downgrade(url: str, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(url), revision)


async def test_a_failed_child_migration_stops_the_start(
        sqlite_url: str, capfd: pytest.CaptureFixture[str]) -> None:
    """A database from a newer release (a revision this code does not know): the child fails,
    ``run`` does not start on it."""
    await upgrade_async(sqlite_url)
    engine = make_engine(sqlite_url)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    await engine.dispose()
    with pytest.raises(schema.MigrationFailed, match="migration failed"):
        await schema.ensure_schema(sqlite_url, child=True)
    assert "9999" in capfd.readouterr().err  # the child said why
    assert await _version(sqlite_url) == {"9999"}


async def test_build_core_at_head_leaves_the_database_alone(sqlite_url: str) -> None:
    await upgrade_async(sqlite_url)
    core = await build_core(make_settings(sqlite_url), migrate_in_child=True)
    await core.close()
    assert await _version(sqlite_url) == {schema.HEAD}


# ``liaisonbot run`` in a process of its own (the CLI's imports, then the runner's whole start
# and shutdown: ``stop`` is set from the outset), reporting which big packages it then holds.
_PROBE = """
import asyncio, json, sys
import liaisonbot.cli  # noqa: F401  (the CLI and everything it imports)
from liaisonbot.config import load
from liaisonbot.runner import run

async def main():
    stop = asyncio.Event()
    stop.set()
    await run(load(sys.argv[1]), stop)

asyncio.run(main())
print(json.dumps(sorted(m for m in ("alembic", "mako", "pygments", "nio", "slack_bolt",
                                     "slack_sdk", "liaisonbot.chat.matrix",
                                     "liaisonbot.chat.slack") if m in sys.modules)))
"""


def _probe(config: Path) -> list[str]:
    result = subprocess.run([sys.executable, "-c", _PROBE, str(config)], capture_output=True,
                            text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    loaded: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


async def test_the_running_bot_never_imports_alembic(tmp_path: Path) -> None:
    """On a new database (migrated by the child) and on a current one: no Alembic, and no
    platform library when no platform is configured."""
    db = tmp_path / "bot.db"
    config = tmp_path / "liaisonbot.toml"
    config.write_text((ROOT / "config" / "liaisonbot.toml").read_text().replace(
        "sqlite+aiosqlite:///var/liaisonbot.db", f"sqlite+aiosqlite:///{db}").replace(
        'listen = "127.0.0.1:3000"', 'listen = "127.0.0.1:0"'))
    url = f"sqlite+aiosqlite:///{db}"
    assert _probe(config) == []  # a new database: migrated, by the child
    assert await _version(url) == {schema.HEAD}
    assert _probe(config) == []  # already at head
