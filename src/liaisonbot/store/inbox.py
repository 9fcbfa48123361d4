"""The inbox: inbound things written before they are acknowledged, then worked from here.

The door (:class:`SqlInboxDoor`) writes what a platform adapter verified before it tells the
platform "received" (Slack's HTTP 200, a Socket Mode ack): one ``INSERT … ON CONFLICT DO
NOTHING`` on a connection the door keeps for it, committed before the acknowledgement goes out.
Acknowledgements arriving together share one transaction (the ones that arrive while a write is
in flight go in the next), so a burst costs a few commits, not one each. A thing seen before (a
Slack retry of an event) is the same row: it is acknowledged and nothing more is done.

A row is leased from the start to the process that wrote it (``lease_owner``, the process
instance; ``lease_until``, renewed by a heartbeat while it waits or works), like the outbox
(``store.outbox``). The work's unit of work marks it done (:meth:`SqlInbox.done`, guarded on
``status = 'pending'``) in the same transaction as the work's changes and posts, so it is done
exactly once: a second process that worked it too (a lease that ran out) finds it done and
keeps nothing. A process that dies leaves its rows pending: the next start hands them back at
once (``release_dead``), a replica takes them when their lease has run out or, on PostgreSQL,
as soon as their owner has no connection left.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Table,
    and_,
    bindparam,
    case,
    column,
    delete,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from liaisonbot.crashpoint import crash_point
from liaisonbot.service.ports import AlreadySettled, InboxEntry, InboxItem
from liaisonbot.store.db import make_sqlite_writer, write_lock
from liaisonbot.store.repo import Repo
from liaisonbot.store.tables import InboxRow

log = logging.getLogger(__name__)

B: Table = InboxRow.__table__  # type: ignore[attr-defined]

#: The partial index's own predicate (SQLite uses ``ix_inbox_pending`` only for it, literally).
_PENDING = text("status = 'pending'")


def _item(row: Any) -> InboxItem:
    return InboxItem(row.id, row.platform, row.event_key, row.kind, row.room,
                     row.payload or "{}", row.attempts, row.received_at)


@functools.cache
def _admit_statement(dialect: str) -> Any:
    """The door's insert, per dialect: a repeat of a key inserts nothing and returns nothing."""
    make = sqlite_insert if dialect == "sqlite" else pg_insert
    return make(B).on_conflict_do_nothing(
        index_elements=[B.c.platform, B.c.event_key]).returning(B.c.id, B.c.event_key)


def _alive() -> Any:
    """PostgreSQL: the instances with a connection open (``application_name``)."""
    return (select(column("application_name")).select_from(text("pg_stat_activity"))
            .where(text("application_name IS NOT NULL")))


def _unheld(sqlite: bool) -> Any:
    """Pending rows of some platforms that nobody holds: no lease, one run out, or (on
    PostgreSQL) an owner with no connection left. Parameters: now, platforms."""
    now = bindparam("now", type_=B.c.lease_until.type)
    free = or_(B.c.lease_until.is_(None), B.c.lease_until <= now)
    if not sqlite:  # an owner with no connection left is gone: its rows are free now
        free = or_(free, B.c.lease_owner.not_in(_alive()))
    return and_(_PENDING, B.c.platform.in_(bindparam("platforms", expanding=True)), free)


@functools.cache
def _probe_query(sqlite: bool) -> Any:
    return select(B.c.id).where(_unheld(sqlite)).limit(1)


@functools.cache
def _claim_query(sqlite: bool) -> Any:
    """Unheld rows (``_unheld``), oldest first: on SQLite leased in one ``UPDATE …
    RETURNING``; on PostgreSQL a locking read (skipping rows another replica is leasing)
    whose rows the caller leases. Parameters: now, owner, until, limit, platforms."""
    due = select(B.c.id).where(_unheld(sqlite)).order_by(B.c.id).limit(bindparam("limit"))
    if sqlite:
        return _lease(B.c.id.in_(due)).returning(*B.c)
    return due.with_for_update(skip_locked=True)


def _lease(which: Any) -> Any:
    return update(B).where(which).values(
        lease_owner=bindparam("owner"),
        lease_until=bindparam("until", type_=B.c.lease_until.type),
        attempts=B.c.attempts + 1)


_LEASE = _lease(B.c.id.in_(bindparam("ids", expanding=True))).returning(*B.c)


class SqlInbox(Repo):
    """The inbox rows, in a unit of work's transaction."""

    async def claim(self, now: datetime, *, owner: str, limit: int, lease_seconds: float,
                    platforms: Collection[str]) -> list[InboxItem]:
        if not platforms or limit <= 0:
            return []
        until = now + timedelta(seconds=lease_seconds)
        params = {"now": now, "owner": owner, "until": until, "limit": limit,
                  "platforms": sorted(platforms)}
        if self.sqlite:
            rows = (await self.run(_claim_query(True), params)).all()
        else:
            ids = [row.id for row in await self.run(_claim_query(False), params)]
            rows = (await self.run(_LEASE, {"ids": ids, "owner": owner, "until": until})
                    ).all() if ids else []
        return [_item(row) for row in sorted(rows, key=lambda r: r.id)]

    async def claimable(self, now: datetime, platforms: Collection[str]) -> bool:
        """Whether ``claim`` would find a row (a read: no write lock on SQLite)."""
        if not platforms:
            return False
        found = await self.run(_probe_query(self.sqlite),
                               {"now": now, "platforms": sorted(platforms)})
        return found.first() is not None

    async def renew(self, item_ids: Sequence[int], owner: str, until: datetime) -> int:
        if not item_ids:
            return 0
        result = await self.run(update(B).where(
            B.c.id.in_(list(item_ids)), B.c.lease_owner == owner, _PENDING,
        ).values(lease_until=until))
        return int(result.rowcount or 0)

    async def release(self, item_ids: Sequence[int]) -> None:
        if item_ids:
            await self.run(update(B).where(B.c.id.in_(list(item_ids)), _PENDING).values(
                lease_until=None, lease_owner=None,
                attempts=case((B.c.attempts > 0, B.c.attempts - 1), else_=0)))

    async def release_dead(self, owner: str, now: datetime) -> list[int]:
        """SQLite is one process: every lease not ``owner``'s was left by a dead one. On
        PostgreSQL a lease whose owner has no connection left (``pg_stat_activity``)."""
        held = and_(_PENDING, B.c.lease_owner.is_not(None), B.c.lease_owner != owner)
        dead = held if self.sqlite else and_(held, B.c.lease_owner.not_in(_alive()))
        result = await self.run(update(B).where(dead).values(
            lease_until=None, lease_owner=None).returning(B.c.id))
        return sorted(int(row[0]) for row in result)

    async def done(self, item_id: int, at: datetime) -> None:
        """Done, in the caller's transaction; its payload (user text, a response URL) is not
        kept. ``AlreadySettled`` when another process did it first."""
        result = await self.run(update(B).where(B.c.id == item_id, _PENDING).values(
            status="done", done_at=at, payload=None, lease_until=None, lease_owner=None,
            last_error=None))
        if not result.rowcount:
            raise AlreadySettled(f"inbox row {item_id} is not pending any more")
        self._uow.settles_inbox = True
        crash_point("work")

    async def retry(self, item_id: int, error: str, at: datetime, *, give_up: bool) -> None:
        values: dict[str, Any] = {"lease_owner": None, "last_error": error[:500]}
        if give_up:
            values.update(status="failed", lease_until=None, payload=None, done_at=at)
        else:
            values["lease_until"] = at
        await self.run(update(B).where(B.c.id == item_id, _PENDING).values(values))

    async def pending(self) -> int:
        return int((await self.run(
            select(func.count()).select_from(B).where(_PENDING))).scalar_one())

    async def forget_before(self, moment: datetime) -> int:
        result = await self.run(delete(B).where(B.c.status != literal("pending"),
                                                B.c.received_at < moment))
        return int(result.rowcount or 0)


class SqlInboxDoor:
    """Writes inbound things before they are acknowledged, on a connection of its own.

    One write at a time, and the first caller to find none running writes at once, in its
    own task. The entries that arrive while a write is in flight wait for it and go together
    in the next (one transaction, one ``INSERT`` of all their rows), written by a task of its
    own so that no caller waits for others' writes after its own. On SQLite the write takes
    the process's write queue ahead of every writer waiting there (``store.db.WriteQueue``:
    urgent), behind only the one writing, and runs as one call on a thread of the door's own
    with a synchronous engine on the same file (``store.db.make_sqlite_writer``): ``BEGIN
    IMMEDIATE``, the ``INSERT`` and the ``COMMIT`` cost one trip to that thread, where the
    async driver takes one per statement and one more to fetch the rows. On PostgreSQL
    (network round trips, no thread) the async connection is used, and the batch is taken
    once its transaction has begun, so it holds everything that arrived meanwhile.
    """

    def __init__(self, engine: AsyncEngine, *, owner: str) -> None:
        self.engine = engine
        self.owner = owner
        self._conn: AsyncConnection | None = None
        self._waiting: list[tuple[dict[str, Any], asyncio.Future[InboxItem | None]]] = []
        self._writing = False
        self._writer: asyncio.Task[None] | None = None
        self._sync = make_sqlite_writer(str(engine.url))
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inbox-door") \
            if self._sync is not None else None
        #: Transactions committed (each holds every entry that was waiting).
        self.writes = 0

    async def admit(self, entry: InboxEntry, *, now: datetime,
                    until: datetime) -> InboxItem | None:
        row = {"platform": entry.platform, "event_key": entry.key, "kind": entry.kind,
               "room": entry.room, "payload": entry.payload, "status": "pending",
               "attempts": 1, "received_at": now, "lease_until": until,
               "lease_owner": self.owner}
        future: asyncio.Future[InboxItem | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((row, future))
        if not self._writing:
            self._writing = True
            try:
                await self._write_waiting()
            finally:
                self._writing = False
                self._hand_on()
        return await future  # a caller that goes away cancels only its own wait

    def _hand_on(self) -> None:
        """What arrived during a write goes in the next one, written by a task of its own."""
        if self._waiting and not self._writing:
            self._writing = True
            self._writer = asyncio.ensure_future(self._write_rest())

    async def _write_rest(self) -> None:
        try:
            while self._waiting:
                try:
                    await self._write_waiting()
                except Exception:  # each entry of that write carries the error to its caller
                    log.debug("an inbox write failed", exc_info=True)
        finally:
            self._writing = False
            self._hand_on()

    async def _write_waiting(self) -> None:
        """One transaction: every entry waiting when it has begun. Each entry's future gets
        its row (None for a key seen before) or the error that stopped the write. A kept
        connection that turns out dead (the database restarted) is replaced once."""
        batch: list[tuple[dict[str, Any], asyncio.Future[InboxItem | None]]] = []
        lock, locked = write_lock(self.engine), False
        try:
            if lock is not None:  # ahead of the work waiting to write: acks wait on this
                async with asyncio.timeout(30):
                    locked = await lock.acquire(urgent=True)
            try:
                inserted = await self._insert(batch)
            except DBAPIError as error:
                if not error.connection_invalidated:
                    raise
                log.info("the inbox door's connection was lost; writing on a new one")
                inserted = await self._insert(batch)
        except BaseException as error:
            if not batch:
                batch.extend(self._waiting)
                self._waiting = []
            failure = error if isinstance(error, Exception) else \
                RuntimeError("the inbox write was cancelled")
            for _, future in batch:
                if not future.done():
                    future.set_exception(failure)
            raise
        finally:
            if lock is not None and locked:
                lock.release()
        ids = {row.event_key: row.id for row in inserted}
        for row, future in batch:
            if not future.done():
                # Two entries of one key in a batch: the first gets the row.
                row_id = ids.pop(row["event_key"], None)
                future.set_result(None if row_id is None else InboxItem(
                    row_id, row["platform"], row["event_key"], row["kind"], row["room"],
                    row["payload"], row["attempts"], row["received_at"]))

    async def _insert(self, batch: list[tuple[dict[str, Any], asyncio.Future[InboxItem | None]]]
                      ) -> list[Any]:
        """Begin, take what is waiting into ``batch`` (unless it holds a batch already),
        insert, commit; the rows inserted. On failure the connection is closed (rolled back),
        not kept."""
        if self._sync is not None:
            if not batch:
                batch.extend(self._waiting)
                self._waiting = []
            rows = [row for row, _ in batch]
            inserted = await asyncio.get_running_loop().run_in_executor(
                self._thread, self._insert_now, rows)
            self.writes += 1
            return inserted
        conn = self._conn
        try:
            if conn is None or conn.closed or conn.invalidated:
                conn = self._conn = await self.engine.connect()
            await conn.begin()
            if not batch:
                batch.extend(self._waiting)
                self._waiting = []
            written = (await conn.execute(_admit_statement(conn.dialect.name),
                                          [row for row, _ in batch])).all()
            crash_point("inbox-insert")
            await conn.commit()
            self.writes += 1
        except BaseException:
            self._conn = None
            if conn is not None:
                try:
                    await conn.close()
                except Exception:
                    log.debug("closing the inbox door's connection failed", exc_info=True)
            raise
        return list(written)

    def _insert_now(self, rows: list[dict[str, Any]]) -> list[Any]:
        """SQLite, on the door's thread: the whole transaction in one call."""
        assert self._sync is not None
        with self._sync.connect() as conn, conn.begin():
            inserted = conn.execute(_admit_statement("sqlite"), rows).all()
            crash_point("inbox-insert")
        return list(inserted)

    async def close(self) -> None:
        if self._writer is not None and not self._writer.done():
            await asyncio.wait({self._writer}, timeout=5)
        self._writer = None
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()
        if self._sync is not None and self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._sync.dispose)
