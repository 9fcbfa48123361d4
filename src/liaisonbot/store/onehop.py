"""SQLite through aiosqlite with one thread hop per statement.

aiosqlite runs each sqlite3 call in its connection's thread: SQLAlchemy's adapter makes a
cursor (a hop), executes (a hop), fetches (a hop) and closes it (a hop) for every statement,
and each hop is a wake-up of that thread and then of the event loop. Here the connection
SQLAlchemy gets (``async_creator``) hands out cursors that do all of it in the thread in one
call: execute, fetch every row, keep the description, row count and last row id, close. The
rows are fetched at once as the adapter did anyway (no server-side cursors here).

A transaction's ``BEGIN`` costs no hop of its own either: it is kept and sent with the
transaction's first statement (``BEGIN IMMEDIATE`` still takes the write lock before that
statement runs), and a transaction that ends before any statement (a commit or rollback with
the ``BEGIN`` still kept) costs nothing at all. On a busy machine every hop is a wait for the OS
to run the other thread, which is what a command's latency is made of.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiosqlite


class OneHopCursor:
    """The async cursor SQLAlchemy's aiosqlite adapter drives, one hop per execute."""

    arraysize = 1

    def __init__(self, connection: aiosqlite.Connection,
                 owner: OneHopConnection | None = None) -> None:
        self._connection = connection
        self._owner = owner
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: list[Any] = []

    async def __aenter__(self) -> OneHopCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def _run(self, sql: str, parameters: Any, many: bool,
             begin: str | None = None) -> tuple[Any, int, Any, list[Any]]:
        cursor = self._connection._conn.cursor()  # in the connection's thread
        try:
            if begin is not None:
                cursor.execute(begin)
            if many:
                cursor.executemany(sql, parameters)
            elif parameters is None:
                cursor.execute(sql)
            else:
                cursor.execute(sql, parameters)
            rows = cursor.fetchall() if cursor.description else []
            return cursor.description, cursor.rowcount, cursor.lastrowid, rows
        finally:
            cursor.close()

    async def execute(self, sql: str, parameters: Any = None) -> OneHopCursor:
        if self._owner is not None and not parameters and _is_begin(sql):
            self._owner.__dict__["_begin"] = sql  # sent with the first statement
            self.description, self.rowcount, self.lastrowid, self._rows = None, -1, None, []
            return self
        (self.description, self.rowcount, self.lastrowid,
         self._rows) = await self._connection._execute(self._run, sql, parameters, False,
                                                       self._take_begin())
        return self

    async def executemany(self, sql: str, parameters: Sequence[Any]) -> OneHopCursor:
        (self.description, self.rowcount, self.lastrowid,
         self._rows) = await self._connection._execute(self._run, sql, parameters, True,
                                                       self._take_begin())
        return self

    def _take_begin(self) -> str | None:
        if self._owner is None:
            return None
        return self._owner.__dict__.pop("_begin", None)

    async def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        return rows

    async def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        size = size or self.arraysize
        rows, self._rows = self._rows[:size], self._rows[size:]
        return rows

    async def nextset(self) -> None:
        return None

    async def setinputsizes(self, *sizes: Any) -> None:
        return None

    async def close(self) -> None:
        self._rows = []


class OneHopConnection:
    """An aiosqlite connection whose cursors are :class:`OneHopCursor`; everything else is
    the aiosqlite connection's own."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self.__dict__["_inner"] = connection

    def cursor(self) -> OneHopCursor:
        return OneHopCursor(self._inner, self)

    async def commit(self) -> None:
        """Commit; a transaction whose ``BEGIN`` was never sent has nothing to commit."""
        if self.__dict__.pop("_begin", None) is None:
            await self._inner.commit()

    async def rollback(self) -> None:
        """Roll back; no hop when no transaction is open (the pool's reset of a connection
        whose unit of work committed, or a ``BEGIN`` never sent). The flag is read between
        statements, while the connection's thread has nothing of this connection's in hand."""
        if self.__dict__.pop("_begin", None) is None and self._inner._conn.in_transaction:
            await self._inner.rollback()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._inner, name, value)


def _is_begin(sql: str) -> bool:
    return sql.strip().upper() in ("BEGIN", "BEGIN IMMEDIATE", "BEGIN DEFERRED",
                                   "BEGIN EXCLUSIVE")


async def connect(database: str, **kwargs: Any) -> OneHopConnection:
    """An aiosqlite connection (its thread a daemon, as SQLAlchemy makes it) wrapped in
    :class:`OneHopConnection`; SQLAlchemy's adapter calls it with the URL's arguments."""
    pending = aiosqlite.connect(database, **kwargs)
    pending._thread.daemon = True
    return OneHopConnection(await pending)


__all__ = ["OneHopConnection", "OneHopCursor", "connect"]
