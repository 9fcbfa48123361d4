"""An insider with the database's superuser rights: the history's append-only triggers
(migration 0008) are switched off for one transaction, as such a person could."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

#: As migration 0008 makes them.
SQLITE_TRIGGERS = (
    "CREATE TRIGGER history_no_update BEFORE UPDATE ON history "
    "BEGIN SELECT RAISE(ABORT, 'history is append-only: UPDATE refused'); END",
    "CREATE TRIGGER history_no_delete BEFORE DELETE ON history "
    "BEGIN SELECT RAISE(ABORT, 'history is append-only: DELETE refused'); END",
)


@contextlib.asynccontextmanager
async def insider(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction in which ``history`` may be updated and deleted (committed at the end;
    on SQLite the triggers are dropped and made again, on PostgreSQL they are skipped with
    ``session_replication_role = replica``, which needs a superuser)."""
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            yield conn
            return
        await conn.execute(text("DROP TRIGGER IF EXISTS history_no_update"))
        await conn.execute(text("DROP TRIGGER IF EXISTS history_no_delete"))
        yield conn
        for statement in SQLITE_TRIGGERS:
            await conn.execute(text(statement))
