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

Writes whose result nobody reads before the commit (a history entry, a request's version-checked
write-back, the outbox rows of a command) need no hop of their own either: ``later`` keeps
them, and they run, in order, in the thread at the start of the connection's next hop — the
next statement's, or the commit's, which then carries ``BEGIN``, the writes and ``COMMIT`` in
one. A kept write may say how many rows it must change and what to raise when it did not (a
version check): the transaction is then rolled back in that same hop and the error raised, so
nothing of it is stored. ``hops`` counts every hop made, for the benchmarks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiosqlite

#: A write kept for the next hop: SQL, its parameters (a sequence of them when ``many``), the
#: row count it must have (None: any) and what to raise when it has not.
Later = tuple[str, Any, bool, "int | None", "BaseException | None"]


def _run_later(cursor: Any, later: list[Later]) -> None:
    """Run kept writes in order (in the connection's thread), checking their row counts."""
    for sql, parameters, many, expect, error in later:
        if many:
            cursor.executemany(sql, parameters)
        else:
            cursor.execute(sql, parameters)
        if expect is not None and cursor.rowcount != expect:
            raise error or RuntimeError(f"{sql.split(None, 1)[0]} changed {cursor.rowcount} "
                                        f"rows, not {expect}")


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

    def _run(self, sql: str, parameters: Any, many: bool, begin: str | None = None,
             later: list[Later] | None = None) -> tuple[Any, int, Any, list[Any]]:
        cursor = self._connection._conn.cursor()  # in the connection's thread
        try:
            if begin is not None:
                cursor.execute(begin)
            if later:
                _run_later(cursor, later)
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
        return await self._execute(sql, parameters, False)

    async def executemany(self, sql: str, parameters: Sequence[Any]) -> OneHopCursor:
        return await self._execute(sql, parameters, True)

    async def _execute(self, sql: str, parameters: Any, many: bool) -> OneHopCursor:
        begin = later = None
        if self._owner is not None:
            begin = self._owner.__dict__.pop("_begin", None)
            later = self._owner.__dict__.pop("_later", None)
        OneHopConnection.hops += 1
        (self.description, self.rowcount, self.lastrowid,
         self._rows) = await self._connection._execute(self._run, sql, parameters, many,
                                                       begin, later)
        return self

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

    #: Hops to the connections' threads made so far (all connections of the process).
    hops = 0

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self.__dict__["_inner"] = connection

    def cursor(self) -> OneHopCursor:
        return OneHopCursor(self._inner, self)

    def begin_with(self, sql: str) -> None:
        """Keep ``BEGIN …`` for the transaction's first hop (SQLAlchemy's ``begin`` event)."""
        self.__dict__["_begin"] = sql

    def later(self, sql: str, parameters: Any, *, many: bool = False,
              expect: int | None = None, error: BaseException | None = None) -> None:
        """Keep a write for the next hop (see the module's text); ``parameters`` are the
        driver's own (positional, already converted)."""
        self.__dict__.setdefault("_later", []).append((sql, parameters, many, expect, error))

    async def fetch(self, sql: str, parameters: Any) -> list[Any]:
        """Every row of a read run straight through the driver (with the ``BEGIN`` and the
        writes kept so far, in one hop), for a hot read that needs nothing of SQLAlchemy's."""
        cursor = await self.cursor()._execute(sql, parameters, False)
        return await cursor.fetchall()

    async def commit(self) -> None:
        """Commit with the kept writes in one hop; a transaction whose ``BEGIN`` was never
        sent and that kept nothing has nothing to commit."""
        begin = self.__dict__.pop("_begin", None)
        later = self.__dict__.pop("_later", None)
        if later:
            OneHopConnection.hops += 1
            await self._inner._execute(self._commit_with, begin, later)
        elif begin is None:
            OneHopConnection.hops += 1
            await self._inner.commit()

    def _commit_with(self, begin: str | None, later: list[Later]) -> None:
        conn = self._inner._conn  # in the connection's thread
        cursor = conn.cursor()
        try:
            if begin is not None:
                cursor.execute(begin)
            _run_later(cursor, later)
        except BaseException:
            if conn.in_transaction:  # nothing of this transaction is kept
                conn.rollback()
            raise
        finally:
            cursor.close()
        conn.commit()

    async def rollback(self) -> None:
        """Roll back, dropping the kept writes; no hop when no transaction is open (the pool's
        reset of a connection whose unit of work committed, or a ``BEGIN`` never sent). The
        flag is read between statements, while the connection's thread has nothing of this
        connection's in hand."""
        self.__dict__.pop("_later", None)
        if self.__dict__.pop("_begin", None) is None and self._inner._conn.in_transaction:
            OneHopConnection.hops += 1
            await self._inner.rollback()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._inner, name, value)


async def connect(database: str, **kwargs: Any) -> OneHopConnection:
    """An aiosqlite connection (its thread a daemon, as SQLAlchemy makes it) wrapped in
    :class:`OneHopConnection`; SQLAlchemy's adapter calls it with the URL's arguments."""
    pending = aiosqlite.connect(database, **kwargs)
    pending._thread.daemon = True
    return OneHopConnection(await pending)


__all__ = ["OneHopConnection", "OneHopCursor", "connect"]
