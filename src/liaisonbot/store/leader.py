"""Who runs the singletons (the follow-up tick and the Matrix sync loop) among replicas.

On PostgreSQL a replica leads while it holds a session-level advisory lock on a connection of
its own; when the process dies the connection drops, the lock is freed, and another replica
takes it at its next check (every ``LEADER_POLL_SECONDS``). SQLite is one process: it always
leads.
"""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from liaisonbot.store.db import is_sqlite

log = logging.getLogger(__name__)
LOCK_KEY = 0x4C494149  # "LIAI"
LEADER_POLL_SECONDS = 1.0


class Leadership:
    def __init__(self, engine: AsyncEngine, key: int = LOCK_KEY) -> None:
        self.engine = engine
        self.key = key
        self._conn: AsyncConnection | None = None
        self.single = is_sqlite(str(engine.url))

    @property
    def is_leader(self) -> bool:
        return self.single or self._conn is not None

    async def check(self) -> bool:
        """Take the lead if it is free; confirm it if held. Returns whether we lead now."""
        if self.single:
            return True
        if self._conn is not None:
            try:
                await self._conn.execute(text("SELECT 1"))
                return True
            except Exception:
                log.warning("lost the leader connection")
                await self._drop()
                return False
        conn = await self.engine.connect()
        try:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            got = (await conn.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                      {"key": self.key})).scalar()
        except Exception:
            await conn.close()
            raise
        if got:
            self._conn = conn
            log.info("took the lead")
            return True
        await conn.close()
        return False

    async def release(self) -> None:
        if self._conn is not None:
            try:
                await self._conn.execute(text("SELECT pg_advisory_unlock(:key)"),
                                         {"key": self.key})
            finally:
                await self._drop()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except Exception:
                log.debug("closing a dead leader connection failed", exc_info=True)
