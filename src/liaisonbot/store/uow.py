"""The unit of work over SQLAlchemy Core: one transaction per ``async with``.

Why Core and not the ORM's ``AsyncSession``: the desk's writes are few and explicit (a request
written back under its version, history entries sealed onto a hash chain, outbox rows), its
reads are set queries for lists and reports, and every domain object leaves the transaction
before it is used (cards, posts). An identity map and a flush would add a layer between each
command and its statements without saving one. So each repository method is one or two
statements executed when it is called, through ``AsyncConnection.execute``; the column types
(``store.types``) convert values, ``store.rows`` maps a request's row to its dataclass by
name. A failed check raises where it happens: ``requests.update`` raises ``Conflict`` when
its version moved; ``inbound.first_time`` answers False for an event recorded before.

A unit of work ends its transaction itself (commit, else rollback in ``__aexit__``), and a
cancellation at any await leaves no transaction open: SQLAlchemy invalidates a connection
whose statement was interrupted (its DBAPI connection is closed, which ends the transaction),
``__aexit__`` rolls back otherwise, and the pool resets a connection returned in a transaction.

SQLite is one writer at a time: the process's units of work that write queue on an
queue (``store.db.write_lock``) and begin with ``BEGIN IMMEDIATE``; a read-only unit
of work takes neither.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from liaisonbot.crashpoint import crash_point
from liaisonbot.store.db import READ_ONLY, WriteQueue, is_sqlite, write_lock
from liaisonbot.store.former import SqlFormerParties
from liaisonbot.store.history import SqlHistory, Tails
from liaisonbot.store.inbox import SqlInbox
from liaisonbot.store.outbox import SqlOutbox
from liaisonbot.store.requests import SqlRequests
from liaisonbot.store.state import SqlInbound, SqlState
from liaisonbot.store.threads import SqlThreads


class SqlUnitOfWork:
    """One database transaction: commit explicitly, anything else rolls back."""

    def __init__(self, engine: AsyncEngine, *, read_only: bool = False) -> None:
        self.engine = engine
        self.read_only = read_only
        self._sqlite = is_sqlite(str(engine.url))
        self._lock: WriteQueue | None = None
        self.conn: AsyncConnection | None = None
        #: Each request's audit chain end as this unit of work knows it (``store.history``).
        self.tails = Tails()
        self.requests = SqlRequests(self)
        self.history = SqlHistory(self)
        self.outbox = SqlOutbox(self)
        self.threads = SqlThreads(self)
        self.inbound = SqlInbound(self)
        self.inbox = SqlInbox(self)
        self.state = SqlState(self)
        self.former = SqlFormerParties(self)
        #: This transaction marks an inbox row done (the crash tests' ``committed`` stage).
        self.settles_inbox = False

    async def __aenter__(self) -> SqlUnitOfWork:
        lock = None if self.read_only else write_lock(self.engine)
        if lock is not None:
            # As long as SQLite's own busy timeout: a writer nested in another writer of the
            # same task fails as it would with BEGIN IMMEDIATE alone, never hangs.
            async with asyncio.timeout(30):
                await lock.acquire()
            self._lock = lock
        try:
            self.conn = await self.engine.connect()
            if self.read_only and self._sqlite:  # a plain BEGIN: no write lock (store.db)
                (await self.conn.get_raw_connection()).info[READ_ONLY] = True
            await self.conn.begin()
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._close()

    async def _close(self) -> None:
        """Roll back what was not committed, give the connection back, leave the queue. Each
        step runs even when the one before it fails or is cancelled."""
        conn, self.conn = self.conn, None
        try:
            if conn is not None:
                try:
                    if conn.in_transaction():
                        await conn.rollback()
                finally:
                    await conn.close()
        finally:
            self.tails.clear()
            self.settles_inbox = False
            self._unlock()

    def _unlock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def connection(self) -> AsyncConnection:
        assert self.conn is not None, "use the unit of work inside 'async with'"
        return self.conn

    async def commit(self) -> None:
        """Commit (the audit chain ends no request update carried are written first, under
        their old value: ``Conflict`` if another writer moved one). On SQLite the write queue
        moves on at once."""
        conn = self.connection()
        await self.tails.flush(self.requests)
        await conn.commit()
        self._unlock()
        if self.settles_inbox:
            crash_point("committed")

    async def rollback(self) -> None:
        """Undo everything so far and go on in a fresh transaction."""
        conn = self.connection()
        await conn.rollback()
        self.tails.clear()
        self.settles_inbox = False
        await conn.begin()


class SqlUnitOfWorkFactory:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def __call__(self, *, read_only: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, read_only=read_only)


__all__ = ["SqlUnitOfWork", "SqlUnitOfWorkFactory"]
