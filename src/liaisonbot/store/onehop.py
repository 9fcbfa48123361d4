"""SQLite statements in one thread round trip each (instead of four).

aiosqlite runs a connection in a thread of its own; every call from the event loop is a round
trip to that thread and back. SQLAlchemy's aiosqlite adapter spends four per statement: make a
cursor, execute, fetch the rows, close the cursor. On a busy machine each hand-over waits for
the OS to schedule the other thread, so a command's seven statements (with BEGIN and COMMIT)
cost milliseconds of waiting, not of SQL. This cursor runs the whole sequence in the
connection's thread at once (``aiosqlite.Connection._execute``) and keeps the rows, the
description, the row count and the last row id it brought back.

It replaces the adapter's cursor class for this process's aiosqlite connections
(``install()``, called by ``store.db.make_engine``). Server-side cursors are not used here. It
leans on two internals — SQLAlchemy's ``AsyncAdapt_aiosqlite_connection._cursor_cls`` and
aiosqlite's ``Connection._execute``/``_conn`` — so ``install()`` checks that both exist and
otherwise leaves the adapter as it is (slower, still correct); ``tests/test_store.py`` counts
the round trips, so an upgrade that changes them is noticed.
"""

from __future__ import annotations

import collections
import logging
import sqlite3
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)

try:  # SQLAlchemy's adapter (2.0.44+/2.1)
    from sqlalchemy.dialects.sqlite.aiosqlite import (
        AsyncAdapt_aiosqlite_connection,
        AsyncAdapt_aiosqlite_cursor,
    )
    from sqlalchemy.util import EMPTY_DICT
    from sqlalchemy.util.concurrency import await_
except ImportError:  # pragma: no cover - an adapter we do not know: leave it alone
    AsyncAdapt_aiosqlite_connection = AsyncAdapt_aiosqlite_cursor = None  # type: ignore[misc,assignment]


def _run(conn: sqlite3.Connection, operation: str, parameters: Any,
         many: bool) -> tuple[Any, int, int | None, list[Any] | None]:
    """In the connection's thread: the whole statement, its rows and what the cursor says."""
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        rows = cursor.fetchall() if cursor.description else None
        return cursor.description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


if AsyncAdapt_aiosqlite_cursor is not None:
    class OneHopCursor(AsyncAdapt_aiosqlite_cursor):  # type: ignore[misc,valid-type]
        """A DBAPI cursor over aiosqlite whose statements cost one thread round trip."""

        __slots__ = ("_description", "_lastrowid", "_rowcount")

        def __init__(self, adapt_connection: Any) -> None:
            self._adapt_connection = adapt_connection
            self._connection = adapt_connection._connection
            self._cursor = None  # type: ignore[assignment]  # no aiosqlite cursor at all
            self._soft_closed_memoized = EMPTY_DICT
            self._rows: collections.deque[Any] = collections.deque()
            self._description: Any = None
            self._rowcount = -1
            self._lastrowid: int | None = None

        @property
        def description(self) -> Any:
            return self._description

        @property
        def rowcount(self) -> int:
            return self._rowcount

        @property
        def lastrowid(self) -> Any:
            return self._lastrowid

        @property
        def arraysize(self) -> int:
            return 1

        @arraysize.setter
        def arraysize(self, value: int) -> None:
            pass

        async def _statement(self, operation: str, parameters: Any, many: bool) -> None:
            async with self._adapt_connection._execute_mutex:
                aio = self._connection
                description, rowcount, lastrowid, rows = await aio._execute(
                    _run, aio._conn, operation, parameters, many)
            self._description, self._rowcount, self._lastrowid = description, rowcount, lastrowid
            self._rows = collections.deque(rows or ())

        def execute(self, operation: Any, parameters: Any = None) -> Any:
            try:
                await_(self._statement(operation, parameters, False))
            except Exception as error:
                self._adapt_connection._handle_exception(error)

        def executemany(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
            try:
                await_(self._statement(operation, seq_of_parameters, True))
            except Exception as error:
                self._adapt_connection._handle_exception(error)

        async def _async_soft_close(self) -> None:
            return None  # the rows are here already; there is no cursor to close

        def close(self) -> None:
            self._rows.clear()
else:  # pragma: no cover
    OneHopCursor = None  # type: ignore[assignment,misc]


def install() -> bool:
    """Make the aiosqlite adapter use ``OneHopCursor``; False when the internals it needs are
    not there (then nothing changes)."""
    if OneHopCursor is None or AsyncAdapt_aiosqlite_connection is None:
        return False
    try:
        from aiosqlite.core import Connection
    except ImportError:  # pragma: no cover
        return False
    if not (hasattr(Connection, "_execute") and hasattr(Connection, "_conn")
            and getattr(AsyncAdapt_aiosqlite_connection, "_cursor_cls", None) is not None):
        log.warning("aiosqlite adapter not as expected: SQLite statements take the slow path")
        return False
    AsyncAdapt_aiosqlite_connection._cursor_cls = OneHopCursor
    return True
