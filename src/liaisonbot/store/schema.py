"""Is the database at the schema this code needs? Asked without importing Alembic.

Alembic (with Mako and Pygments behind it) costs a running bot ~11 MB of resident memory that
it would keep for its whole life, for a step that has nothing to do once the database is
current, which it is after the first start of a release (or the unit's ``liaisonbot db
upgrade``). So ``liaisonbot run`` reads ``alembic_version`` itself and compares it with
:data:`HEAD`; only when they differ does it migrate, and then in a child process
(``python -m liaisonbot.store.migrate``) so that Alembic never enters the server
(:func:`ensure_schema`). The console, ``export`` and the tests migrate in their own process
(they are short-lived, and a child costs a second).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from liaisonbot.store.db import READ_ONLY, is_sqlite, make_engine

#: The newest migration's revision id (``store/migrations/versions``). A new migration must
#: move it; ``tests/test_schema.py`` checks it against Alembic's own head.
HEAD = "0011"


#: The directory holding the ``liaisonbot`` package: the child imports this same code.
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


class MigrationFailed(RuntimeError):
    """The child that ran the migrations exited with an error (its output went to stderr)."""


async def current_revisions(url: str) -> set[str]:
    """The revisions recorded in ``alembic_version`` (empty for a database never migrated)."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            if is_sqlite(url):  # a plain BEGIN: reading takes no write lock (store.db)
                (await conn.get_raw_connection()).info[READ_ONLY] = True
            if not await conn.run_sync(lambda sync: inspect(sync).has_table("alembic_version")):
                return set()
            rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
            return {str(row[0]) for row in rows}
    finally:
        await engine.dispose()


async def at_head(url: str) -> bool:
    return await current_revisions(url) == {HEAD}


def _in_memory(url: str) -> bool:
    return is_sqlite(url) and make_url(url).database in (None, "", ":memory:")


async def ensure_schema(url: str, *, child: bool = False) -> bool:
    """Migrate the database at ``url`` to :data:`HEAD` unless it is there already; True when
    it ran the migrations. ``child``: run them in a child process (``liaisonbot run``), so
    Alembic's modules never stay in this one; an in-memory SQLite database (which a child
    cannot see) is migrated here."""
    if await at_head(url):
        return False
    if child and not _in_memory(url):
        await upgrade_in_child(url)
    else:
        from liaisonbot.store.migrate import upgrade_async

        await upgrade_async(url)
    return True


async def upgrade_in_child(url: str) -> None:
    """``python -m liaisonbot.store.migrate`` with the URL on its stdin (not in its argv,
    where ``ps`` would show a password); its stderr is this process's."""
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": _PACKAGE_ROOT + (os.pathsep + path if path else "")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "liaisonbot.store.migrate", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL, env=env)
    await proc.communicate(url.encode())
    if proc.returncode != 0:
        raise MigrationFailed(f"the database migration failed (exit {proc.returncode}; "
                              "its error is above)")
