"""Engines: SQLite (embedded default) and PostgreSQL, with the settings each needs."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import weakref
from collections import deque
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

log = logging.getLogger(__name__)

#: This process's instance id: it owns the outbox leases the process takes, and on PostgreSQL
#: it is the ``application_name`` of every connection, so another process can tell whether a
#: lease's owner is still connected (``pg_stat_activity``). At most 63 characters.
INSTANCE = f"liaisonbot-{socket.gethostname()[:24]}-{os.getpid()}-{secrets.token_hex(4)}"


#: Set in a connection's ``info`` by a read-only unit of work: its SQLite transaction begins
#: deferred (no write lock) instead of ``BEGIN IMMEDIATE``.
READ_ONLY = "liaisonbot_read_only"


class WriteQueue:
    """One writer at a time, in arrival order, except that an *urgent* writer (the inbox
    door: requests wait for their acknowledgement behind it) goes before every writer still
    waiting (never before the one writing). The lock passes straight to the next waiter on
    release, so nobody barges in between. ``acquire``/``release`` as ``asyncio.Lock``."""

    def __init__(self) -> None:
        self._held = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._waiting: deque[asyncio.Future[None]] = deque()

    def locked(self) -> bool:
        return self._held

    async def acquire(self, *, urgent: bool = False) -> bool:
        if not self._held and not self._urgent and not self._waiting:
            self._held = True
            return True
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._urgent if urgent else self._waiting
        queue.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release()  # given the lock as it was cancelled: pass it on
            else:
                queue.remove(turn)
            raise
        return True

    def release(self) -> None:
        for queue in (self._urgent, self._waiting):
            while queue:
                turn = queue.popleft()
                if not turn.done():
                    turn.set_result(None)  # held on: it is that writer's now
                    return
        self._held = False


def write_lock(engine: AsyncEngine) -> WriteQueue | None:
    """SQLite: the process's queue for write transactions (one writer at a time anyway). The
    units of work of one process wait their turn here, in order, instead of in SQLite's busy
    handler, which sleeps in growing steps (1, 2, 5, 10 … ms) between retries: with several
    rooms delivering at once that sleeping, not the work, set the pace. None on PostgreSQL."""
    return _WRITE_LOCKS.get(engine.sync_engine)


_WRITE_LOCKS: weakref.WeakKeyDictionary[Any, WriteQueue] = weakref.WeakKeyDictionary()


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine. SQLite gets WAL, a busy timeout and ``BEGIN IMMEDIATE`` transactions
    (writers queue instead of failing), and its directory is created. Statement parameters
    (summaries, answers) never appear in an exception's text (``hide_parameters``), so a
    logged database error carries the SQL but not the data."""
    kwargs.setdefault("hide_parameters", True)
    if not is_sqlite(url):
        connect_args = kwargs.pop("connect_args", {})
        settings = {"application_name": INSTANCE, **connect_args.get("server_settings", {})}
        return create_async_engine(url, pool_pre_ping=True,
                                   connect_args={**connect_args, "server_settings": settings},
                                   **kwargs)
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    # SQLAlchemy's "custom reset on return" (``pool_reset_on_return=None`` and the ``reset``
    # event below): a connection that comes back to the pool inside a transaction is rolled
    # back; one whose unit of work committed or rolled back (every one that ended normally)
    # costs no rollback, which on aiosqlite is one more trip to the connection's thread.
    kwargs.setdefault("pool_reset_on_return", None)
    engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
    _WRITE_LOCKS[engine.sync_engine] = WriteQueue()

    @event.listens_for(engine.sync_engine, "reset")
    def _on_reset(dbapi_connection: Any, record: Any, reset_state: Any) -> None:
        if reset_state.asyncio_safe and record.driver_connection.in_transaction:
            dbapi_connection.rollback()

    # SQLAlchemy's recipe for SQLite transactions ("Serializable isolation / Savepoints /
    # Transactional DDL"): the driver's own BEGIN handling is off, and the BEGIN is emitted
    # by the ``begin`` event, here ``BEGIN IMMEDIATE`` so that writers take the write lock when
    # they begin (they queue instead of failing to upgrade a read lock). A read-only unit of
    # work (``READ_ONLY`` in the connection's info) begins deferred and takes none.
    event.listen(engine.sync_engine, "connect", _sqlite_connected)

    @event.listens_for(engine.sync_engine.pool, "invalidate")
    def _on_invalidate(dbapi_connection: Any, _record: Any, _exception: Any) -> None:
        # SQLAlchemy invalidates a connection whose statement was interrupted (a task
        # cancelled at its await) and closes it. SQLite defers that close while a statement of
        # the connection is still unfinished (a SELECT whose rows were never fetched, held by
        # the exception's traceback): the connection would live on inside its transaction,
        # holding the write lock. Rolling back first ends the transaction either way.
        try:
            dbapi_connection.rollback()
        except Exception:
            log.debug("rollback of an invalidated SQLite connection failed", exc_info=True)

    event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connected(dbapi_connection: Any, _record: Any) -> None:
    """A new SQLite connection: the driver's own transaction handling off, WAL, a busy
    timeout, and commits that do not wait for the disk (WAL keeps them atomic)."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    read_only = connection.connection.info.pop(READ_ONLY, False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def make_sqlite_writer(url: str) -> Engine | None:
    """A synchronous engine on the SQLite file of ``url`` (driver ``pysqlite``), set up as
    :func:`make_engine`'s (WAL, ``BEGIN IMMEDIATE``, hidden parameters), for a writer that
    runs a whole transaction in one call on a thread of its own (the inbox door: one trip to
    that thread instead of one per statement). None for an in-memory database (another
    connection would see another database) and for anything but SQLite."""
    if not is_sqlite(url):
        return None
    parsed = make_url(url)
    if parsed.database in (None, "", ":memory:"):
        return None
    engine = create_engine(parsed.set(drivername="sqlite+pysqlite"), hide_parameters=True,
                           connect_args={"timeout": 30})
    event.listen(engine, "connect", _sqlite_connected)
    event.listen(engine, "begin", _sqlite_begin)
    return engine
