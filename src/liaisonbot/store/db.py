"""Engines: SQLite (embedded default) and PostgreSQL, with the settings each needs."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from liaisonbot.store import onehop

#: This process's instance id: it owns the outbox leases the process takes, and on PostgreSQL
#: it is the ``application_name`` of every connection, so another process can tell whether a
#: lease's owner is still connected (``pg_stat_activity``). At most 63 characters.
INSTANCE = f"liaisonbot-{socket.gethostname()[:24]}-{os.getpid()}-{secrets.token_hex(4)}"


#: Set in a connection's ``info`` by a read-only unit of work: its SQLite transaction begins
#: deferred (no write lock) instead of ``BEGIN IMMEDIATE``.
READ_ONLY = "liaisonbot_read_only"


def write_lock(engine: AsyncEngine) -> asyncio.Lock | None:
    """SQLite: the process's queue for write transactions (one writer at a time anyway). The
    units of work of one process wait their turn here, in order, instead of in SQLite's busy
    handler, which sleeps in growing steps (1, 2, 5, 10 … ms) between retries: with several
    rooms delivering at once that sleeping, not the work, set the pace. None on PostgreSQL."""
    return _WRITE_LOCKS.get(engine.sync_engine)


_WRITE_LOCKS: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()


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
    # No rollback when a connection goes back to the pool: every unit of work ends its
    # transaction itself (commit, or rollback in ``__aexit__``), and on aiosqlite that
    # redundant rollback is one more thread round trip per transaction.
    kwargs.setdefault("pool_reset_on_return", None)
    engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
    _WRITE_LOCKS[engine.sync_engine] = asyncio.Lock()

    @event.listens_for(engine.sync_engine, "do_connect")
    def _one_hop(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        # The adapter's connection over an aiosqlite connection whose cursors run each
        # statement in one hop to its thread (store.onehop), with the URL's own arguments.
        return dialect.loaded_dbapi.connect(*cargs, async_creator_fn=onehop.connect, **cparams)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Writers take the write lock when they begin (they queue instead of failing to
        # upgrade a read lock); a read-only unit of work takes none.
        # The BEGIN is kept for the transaction's first hop (store.onehop), without a
        # statement execution of SQLAlchemy's of its own.
        fairy = connection.connection
        sql = "BEGIN" if fairy.info.pop(READ_ONLY, False) else "BEGIN IMMEDIATE"
        driver = fairy.driver_connection
        if isinstance(driver, onehop.OneHopConnection):
            driver.begin_with(sql)
        else:
            connection.exec_driver_sql(sql)

    return engine
