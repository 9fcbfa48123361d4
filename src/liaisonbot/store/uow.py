"""The unit of work and repositories over SQLAlchemy: one transaction per ``async with``."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    Boolean,
    Table,
    and_,
    bindparam,
    case,
    column,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy import case as sql_case
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from liaisonbot.domain.audit import GENESIS, Entry, Seal, link_hash, utc_text
from liaisonbot.domain.cards import Post
from liaisonbot.domain.model import PENDING, Confidentiality, Kind, Request, Status
from liaisonbot.domain.refs import storable_id
from liaisonbot.service.ports import (
    Conflict,
    HistoryDraft,
    HistoryItem,
    OutboxDraft,
    OutboxItem,
    Replay,
    ThreadLink,
)
from liaisonbot.store.db import READ_ONLY, is_sqlite, write_lock
from liaisonbot.store.kept import Kept, KeptWrite, send_together
from liaisonbot.store.onehop import OneHopConnection
from liaisonbot.store.tables import (
    INCOMPLETE_SQL,
    PENDING_SQL,
    AuditHeadRow,
    DigestRow,
    HistoryRow,
    InboundRow,
    OutboxRow,
    RequestRow,
    StateRow,
    ThreadRow,
)
from liaisonbot.store.types import UTCDateTime

R: Table = RequestRow.__table__  # type: ignore[attr-defined]
H: Table = HistoryRow.__table__  # type: ignore[attr-defined]
HEAD: Table = AuditHeadRow.__table__  # type: ignore[attr-defined]
O: Table = OutboxRow.__table__  # type: ignore[attr-defined]
T: Table = ThreadRow.__table__  # type: ignore[attr-defined]
I: Table = InboundRow.__table__  # type: ignore[attr-defined]
S: Table = StateRow.__table__  # type: ignore[attr-defined]
D: Table = DigestRow.__table__  # type: ignore[attr-defined]
_PENDING = [s.value for s in PENDING]
_REQUEST_FIELDS = ("kind", "requesting", "requested", "summary", "basis", "urgent", "status",
                   "opened_by", "assignee", "answer", "created_at", "updated_at", "due_at",
                   "ack_due_at", "eta", "snoozed_until", "ack_nudges_sent", "answer_nudges_sent",
                   "next_nudge_at", "instrument", "person", "measure", "paused_at", "missing",
                   "incomplete_nudges_sent", "eta_reminded")


def _to_row(request: Request) -> dict[str, Any]:
    row = {name: getattr(request, name) for name in _REQUEST_FIELDS}
    row.update(case_ref=request.case, kind=request.kind.value, status=request.status.value,
               confidentiality=request.confidentiality.value,
               paused_from=request.paused_from.value if request.paused_from else None)
    return row


def _update_request(with_tail: bool) -> Any:
    """The request's write-back, built once (its cache key is computed once, not per call):
    every field, the version check, and with ``with_tail`` the audit chain's new end."""
    names = (*_REQUEST_FIELDS, "case_ref", "confidentiality", "paused_from")
    values: dict[str, Any] = {name: bindparam(f"v_{name}") for name in names}
    values["version"] = bindparam("v_version_new")
    if with_tail:
        values["audit_hash"] = bindparam("v_audit_hash")
    return update(R).where(R.c.id == bindparam("v_id"),
                           R.c.version == bindparam("v_version")).values(values)


_UPDATE = {flag: Kept(_update_request(flag)) for flag in (False, True)}
_INSERT_REQUEST = insert(R).values(
    {name: bindparam(f"v_{name}") for name in (*_REQUEST_FIELDS, "case_ref", "confidentiality",
                                               "paused_from", "version")}).returning(R.c.id)
_FIRST_TIME = {dialect: make(I).values(platform=bindparam("p"), event_id=bindparam("e"),
                                       at=bindparam("a")).on_conflict_do_nothing()
               for dialect, make in (("sqlite", sqlite_insert), ("postgresql", pg_insert))}


#: A request's thread links (in id order) as a JSON array of ``[room, message_ref,
#: thread_root]``, a scalar subquery beside the request's columns: SQLite, PostgreSQL.
_PG_LINKS = ("(SELECT json_agg(json_build_array(room, message_ref, thread_root) ORDER BY id)"
             "::text FROM thread_link WHERE thread_link.request_id = request.id)")
_LINKS: dict[bool, Any] = {
    True: literal_column(
        "(SELECT json_group_array(json_array(room, message_ref, thread_root)) FROM "
        "(SELECT room, message_ref, thread_root FROM thread_link "
        "WHERE thread_link.request_id = request.id ORDER BY thread_link.id))").label("links"),
    False: literal_column(_PG_LINKS).label("links"),
}


#: One request with its thread links, by id (built once per dialect).
_GET_REQUEST = {sqlite: select(R, _LINKS[sqlite]).where(R.c.id == bindparam("id"))
                for sqlite in (True, False)}
_HISTORY_COLUMNS = ("request_id", "at", "actor", "platform", "action", "prev_hash", "hash",
                    "detail")
#: A history entry (kept for the commit); its values named ``h_<column>``.
_ENTRY_KEPT = Kept(insert(H).values({name: bindparam(f"h_{name}", type_=H.c[name].type)
                                     for name in _HISTORY_COLUMNS}))
#: An outbox row (kept for the commit): pending, due at once (``o_at``).
_OUTBOX_KEPT = Kept(insert(O).values(
    platform=bindparam("o_platform", type_=O.c.platform.type),
    room=bindparam("o_room", type_=O.c.room.type), post=bindparam("o_post", type_=O.c.post.type),
    request_id=bindparam("o_request_id", type_=O.c.request_id.type), status="pending",
    attempts=0, in_doubt=False, created_at=bindparam("o_at", type_=O.c.created_at.type),
    next_attempt_at=bindparam("o_at", type_=O.c.next_attempt_at.type)))
#: PostgreSQL: the dedupe mark and the request the command names in one statement (a
#: data-modifying CTE); ``marked`` is 1 the first time, 0 for a replay; the request's columns
#: are NULL when there is no such request.
_MARK_AND_GET = text(
    "WITH mark AS (INSERT INTO inbound_event (platform, event_id, at) VALUES (:p, :e, :a) "
    "ON CONFLICT DO NOTHING RETURNING 1) "
    "SELECT (SELECT count(*) FROM mark) AS marked, "
    + ", ".join(f"request.{c.name}" for c in R.c) + f", {_PG_LINKS} AS links "
    "FROM (SELECT 1) AS one LEFT JOIN request ON request.id = :id"
).bindparams(bindparam("a", type_=I.c.at.type)).columns(
    column("marked"), *R.c, column("links"))


#: The mark kept for the commit (``first_time(at_commit=True)``).
_MARK_KEPT = {dialect: Kept(statement) for dialect, statement in _FIRST_TIME.items()}


def _to_request(row: Any) -> Request:
    return _request_from(row._mapping)


def _request_from(m: Mapping[str, Any]) -> Request:
    data = {name: m[name] for name in _REQUEST_FIELDS}
    data.update(kind=Kind(m["kind"]), status=Status(m["status"]),
                confidentiality=Confidentiality(m["confidentiality"]),
                paused_from=Status(m["paused_from"]) if m["paused_from"] else None)
    return Request(id=m["id"], case=m["case_ref"], version=m["version"], **data)


def _utc_from_text(value: str | None) -> datetime | None:
    """A UTC column's text as SQLite holds it, as ``UTCDateTime`` reads it back."""
    return datetime.fromisoformat(value).replace(tzinfo=UTC) if value is not None else None


class _SqliteGet:
    """SQLite: a request by id (with its thread links) read straight through the driver, in
    the hop the statement needs anyway but with none of SQLAlchemy's statement execution
    around it (a command's one read): the SQL SQLAlchemy compiles for ``_GET_REQUEST``, each
    column converted as its type reads it back (UTC datetimes, flags)."""

    def __init__(self) -> None:
        self._form: tuple[str, tuple[str, ...]] | None = None
        self._convert: dict[str, Any] = {}
        for col in R.c:
            if isinstance(col.type, UTCDateTime):
                self._convert[col.name] = _utc_from_text
            elif isinstance(col.type, Boolean):
                self._convert[col.name] = _flag

    def form(self, dialect: Any) -> tuple[str, tuple[str, ...]]:
        if self._form is None:
            compiled = _GET_REQUEST[True].compile(dialect=dialect)
            assert compiled.positiontup == ["id"], compiled.positiontup
            self._form = (compiled.string, (*[col.name for col in R.c], "links"))
        return self._form

    def row(self, names: tuple[str, ...], values: Sequence[Any]) -> dict[str, Any]:
        convert = self._convert
        return {name: convert[name](value) if name in convert else value
                for name, value in zip(names, values, strict=True)}


def _flag(value: Any) -> bool | None:
    return bool(value) if value is not None else None


_SQLITE_GET = _SqliteGet()


def _party(office: str) -> Any:
    return or_(R.c.requesting == office, R.c.requested == office)


class _Repo:
    def __init__(self, uow: SqlUnitOfWork) -> None:
        self._uow = uow

    @property
    def conn(self) -> AsyncConnection:
        assert self._uow.conn is not None, "use the unit of work inside 'async with'"
        return self._uow.conn

    @property
    def sqlite(self) -> bool:
        return self.conn.dialect.name == "sqlite"

    async def _run(self, statement: Any, parameters: Any = None) -> Any:
        """Execute ``statement`` after the writes kept so far (PostgreSQL; on SQLite they go
        with the statement's own hop)."""
        if self._uow.kept:
            await self._uow.send_kept()
        return await self.conn.execute(statement, parameters)

    async def _insert_new(self, statement: Any) -> bool:
        """Insert in a savepoint; False (and nothing else undone) when the key exists. The
        writes kept so far go first, outside the savepoint its rollback would undo."""
        if self._uow.kept:
            await self._uow.send_kept()
        try:
            async with self.conn.begin_nested():
                await self.conn.execute(statement)
        except IntegrityError:
            return False
        return True


class SqlRequests(_Repo):
    async def add(self, request: Request) -> int:
        params = {f"v_{k}": v for k, v in _to_row(request).items()}
        # A new row: it reads nothing the writes kept so far (the mark) would change, so
        # they may wait for the commit on PostgreSQL too.
        result = await self.conn.execute(_INSERT_REQUEST, {**params, "v_version": 1})
        request.id = int(result.scalar_one())
        self._uow.tails.read[request.id] = None
        return request.id

    async def get(self, request_id: int) -> Request | None:
        if not storable_id(request_id):
            return None  # beyond the column's range (PostgreSQL would raise): no such request
        raw = self._uow.raw
        m: Mapping[str, Any] | None
        if request_id in self._uow.prefetched:  # read with the dedupe mark
            m = self._uow.prefetched.pop(request_id)._mapping
        elif raw is not None:  # SQLite: straight through the driver (_SqliteGet)
            sql, names = _SQLITE_GET.form(self.conn.dialect)
            rows = await raw.fetch(sql, (request_id,))
            m = _SQLITE_GET.row(names, rows[0]) if rows else None
        else:
            row = (await self._run(_GET_REQUEST[self.sqlite], {"id": request_id})).first()
            m = row._mapping if row is not None else None
        if m is None or m["id"] is None:
            return None
        self._uow.tails.read.setdefault(m["id"], m["audit_hash"])
        # Its thread links come in the same statement (the desk's fan-out, the delivery of
        # the posts leased in the command's transaction).
        self._uow.links[m["id"]] = [ThreadLink(m["id"], *link)
                                    for link in json.loads(m["links"] or "[]")]
        return _request_from(m)

    async def update(self, request: Request) -> None:
        """Write ``request`` back under its version; the audit chain's new last hash of the
        request (appended in this unit of work) goes in the same statement."""
        params = {f"v_{k}": v for k, v in _to_row(request).items()}
        params.update(v_id=request.id, v_version=request.version,
                      v_version_new=request.version + 1)
        tail = self._uow.tails.take(request.id)
        if tail is not None:
            params["v_audit_hash"] = tail
        await self._uow.write(_UPDATE[tail is not None], params, expect=1,
                              error=Conflict(request.ref))
        request.version += 1  # kept: checked at commit (Conflict then, nothing stored)

    async def _many(self, query: Any) -> list[Request]:
        return [_to_request(row) for row in (await self._run(query)).all()]

    async def for_case(self, case: str, office: str) -> list[Request]:
        return await self._many(select(R).where(R.c.case_ref == case, _party(office)))

    async def all_for_case(self, case: str) -> list[Request]:
        return await self._many(select(R).where(R.c.case_ref == case).order_by(R.c.id))

    async def overdue(self, office: str, now: datetime) -> list[Request]:
        pending = text(PENDING_SQL)  # the partial indexes' own condition, so SQLite uses them
        # Two index range scans (one per side), not an OR over the whole table.
        by_requested = select(R).where(R.c.requested == office, pending, R.c.due_at <= now)
        by_requesting = select(R).where(R.c.requesting == office, pending, R.c.due_at <= now)
        return await self._many(by_requested.union_all(by_requesting))

    async def party_to(self, office: str) -> list[Request]:
        """Every request ``office`` is party to (the weekly report; not a hot path)."""
        return await self._many(select(R).where(R.c.requested == office).union_all(
            select(R).where(R.c.requesting == office)))

    async def overdue_counts(self, now: datetime) -> dict[str, int]:
        rows = await self._run(
            select(R.c.requested, func.count()).where(text(PENDING_SQL), R.c.due_at <= now)
            .group_by(R.c.requested))
        return {office: int(count) for office, count in rows}

    async def pending_for(self, office: str) -> list[Request]:
        pending = text(PENDING_SQL)
        return await self._many(select(R).where(R.c.requested == office, pending).union_all(
            select(R).where(R.c.requesting == office, pending)))

    async def incomplete_for(self, office: str) -> list[Request]:
        """Requests ``office`` is party to that wait for completion (clocks stopped)."""
        waiting = text(INCOMPLETE_SQL)  # the partial indexes' own condition
        return await self._many(select(R).where(R.c.requested == office, waiting).union_all(
            select(R).where(R.c.requesting == office, waiting)))

    async def update_nudges(self, requests: Sequence[Request]) -> None:
        """Nudge counters and ``next_nudge_at`` of claimed requests, in one executemany. The
        rows are locked by the claim (or the SQLite write lock), so no version check is
        needed; the version still moves, so a desk command holding an older copy re-reads."""
        if not requests:
            return
        tails = self._uow.tails
        rows = [{"b_id": r.id, "b_ack": r.ack_nudges_sent, "b_answer": r.answer_nudges_sent,
                 "b_next": r.next_nudge_at, "b_incomplete": r.incomplete_nudges_sent,
                 "b_eta": r.eta_reminded, "b_hash": tails.take(r.id) or tails.read.get(r.id)}
                for r in requests]
        await self._uow.write(_NUDGES_KEPT, rows, many=True)
        for request in requests:
            request.version += 1

    async def next_nudge_after(self, moment: datetime) -> datetime | None:
        return (await self._run(select(func.min(R.c.next_nudge_at))
                                        .where(R.c.next_nudge_at > moment))).scalar()

    async def claim_nudges(self, now: datetime, limit: int) -> list[Request]:
        query = (select(R).where(R.c.next_nudge_at.is_not(None), R.c.next_nudge_at <= now)
                 .order_by(R.c.next_nudge_at).limit(limit))
        if not self.sqlite:
            query = query.with_for_update(skip_locked=True)
        rows = (await self._run(query)).all()
        for row in rows:
            self._uow.tails.read.setdefault(row.id, row.audit_hash)
        return [_to_request(row) for row in rows]


_NUDGES_KEPT = Kept(update(R).where(R.c.id == bindparam("b_id")).values(
    ack_nudges_sent=bindparam("b_ack", type_=R.c.ack_nudges_sent.type),
    answer_nudges_sent=bindparam("b_answer", type_=R.c.answer_nudges_sent.type),
    next_nudge_at=bindparam("b_next", type_=R.c.next_nudge_at.type), version=R.c.version + 1,
    incomplete_nudges_sent=bindparam("b_incomplete", type_=R.c.incomplete_nudges_sent.type),
    eta_reminded=bindparam("b_eta", type_=R.c.eta_reminded.type),
    audit_hash=bindparam("b_hash", type_=R.c.audit_hash.type)))


class SqlHistory(_Repo):
    async def append(self, *, request_id: int | None, at: datetime, actor: str, platform: str,
                     action: str, detail: dict[str, Any]) -> None:
        await self.append_many([HistoryDraft(request_id, at, actor, platform, action, detail)])

    async def append_many(self, drafts: Sequence[HistoryDraft]) -> None:
        """Seal ``drafts`` onto their requests' chains (``domain.audit``): each links to the
        request's last entry, known from the request row this unit of work read (its
        ``audit_hash``), so no shared row is locked; all go in one statement. The request's
        new last hash is written with the request's own update (or at commit, under its
        version). Entries of no request chain under the head row, as before."""
        if not drafts:
            return
        tails = self._uow.tails
        rows = []
        loose = [d for d in drafts if d.request_id is None]
        for draft in drafts:
            if draft.request_id is None:
                continue
            prev = tails.last(draft.request_id) if tails.knows(draft.request_id) \
                else await self._tail_of(draft.request_id)
            sealed = link_hash(prev or GENESIS, self._draft_entry(draft))
            rows.append(self._row(draft, prev or GENESIS, sealed))
            tails.moved(draft.request_id, sealed)
        if rows:
            kept = [{f"h_{name}": row[name] for name in _HISTORY_COLUMNS} for row in rows]
            await self._uow.write(_ENTRY_KEPT, kept[0] if len(kept) == 1 else kept,
                                  many=len(kept) > 1)
        if loose:
            await self._append_loose(loose)

    async def _tail_of(self, request_id: int) -> str | None:
        """The stored last hash of a request this unit of work did not read."""
        tail = (await self._run(select(R.c.audit_hash).where(R.c.id == request_id))).scalar()
        self._uow.tails.read[request_id] = tail
        return tail  # type: ignore[no-any-return]

    @staticmethod
    def _draft_entry(draft: HistoryDraft) -> Entry:
        return Entry(0, draft.request_id, utc_text(draft.at), draft.actor, draft.platform,
                     draft.action, draft.detail)

    @staticmethod
    def _row(draft: HistoryDraft, prev: str, sealed: str) -> dict[str, Any]:
        return {"request_id": draft.request_id, "at": draft.at, "actor": draft.actor,
                "platform": draft.platform, "action": draft.action, "prev_hash": prev,
                "hash": sealed,
                "detail": json.dumps(draft.detail, sort_keys=True, ensure_ascii=False)}

    async def _append_loose(self, drafts: Sequence[HistoryDraft]) -> None:
        """Entries of no request (none today): one chain under the locked head row."""
        head = (await self._run(select(HEAD).where(HEAD.c.id == 1).with_for_update())
                ).first()
        last_id, prev = (head.last_id, head.last_hash) if head else (0, GENESIS)
        for draft in drafts:
            sealed = link_hash(prev, self._draft_entry(draft))
            last_id = int((await self._run(
                insert(H).values(**self._row(draft, prev, sealed)).returning(H.c.id))
            ).scalar_one())
            prev = sealed
        if head:
            await self._run(update(HEAD).where(HEAD.c.id == 1)
                                    .values(last_id=last_id, last_hash=prev))
        else:
            await self._run(insert(HEAD).values(id=1, last_id=last_id, last_hash=prev,
                                                        legacy_upto=0, legacy_hash=GENESIS))

    @staticmethod
    def _entry(row: Any) -> Entry:
        return Entry(row.id, row.request_id, utc_text(row.at), row.actor, row.platform,
                     row.action, json.loads(row.detail))

    async def for_request(self, request_id: int) -> list[Entry]:
        if not storable_id(request_id):
            return []
        rows = await self._run(select(H).where(H.c.request_id == request_id)
                                       .order_by(H.c.id))
        return [self._entry(row) for row in rows]

    async def for_requests(self, request_ids: Sequence[int],
                           actions: Collection[str] | None = None) -> dict[int, list[Entry]]:
        """The entries of many requests in one query (optionally only ``actions``)."""
        ids = [n for n in request_ids if storable_id(n)]
        if not ids:
            return {}
        return await self._grouped(H.c.request_id.in_(ids), actions)

    async def for_office(self, office: str,
                         actions: Collection[str] | None = None) -> dict[int, list[Entry]]:
        """The entries of every request ``office`` is party to, in one query: the requests
        are a subquery (the two per-side indexes), not a list of ids sent over."""
        party = select(R.c.id).where(R.c.requested == office).union_all(
            select(R.c.id).where(R.c.requesting == office))
        return await self._grouped(H.c.request_id.in_(party), actions)

    async def _grouped(self, where: Any, actions: Collection[str] | None
                       ) -> dict[int, list[Entry]]:
        query = select(H).where(where)
        if actions is not None:
            query = query.where(H.c.action.in_(sorted(actions)))
        found: dict[int, list[Entry]] = {}
        for row in await self._run(query.order_by(H.c.id)):
            found.setdefault(row.request_id, []).append(self._entry(row))
        return found

    async def chain(self) -> list[HistoryItem]:
        rows = await self._run(select(H).order_by(H.c.id))
        return [HistoryItem(self._entry(row), row.prev_hash, row.hash) for row in rows]

    async def head(self) -> tuple[int, str] | None:
        row = (await self._run(select(HEAD).where(HEAD.c.id == 1))).first()
        return (row.last_id, row.last_hash) if row else None

    async def seal(self) -> Seal:
        """Where the legacy global chain ends (migration 0005); ``ALL_LEGACY`` is never
        returned: a database without a head row has no legacy entries."""
        row = (await self._run(select(HEAD.c.legacy_upto, HEAD.c.legacy_hash)
                                       .where(HEAD.c.id == 1))).first()
        return Seal(int(row[0]), str(row[1])) if row else Seal(0, GENESIS)

    async def tails(self) -> dict[int, str]:
        """Each request's stored last hash (``request.audit_hash``)."""
        rows = await self._run(select(R.c.id, R.c.audit_hash)
                                       .where(R.c.audit_hash.is_not(None)))
        return {int(rid): str(tail) for rid, tail in rows}


class _Tails:
    """Each request's last audit hash as this unit of work knows it: ``read`` from its row,
    ``dirty`` once entries were appended (to be written with the row, under its version)."""

    def __init__(self) -> None:
        self.read: dict[int, str | None] = {}
        self.dirty: dict[int, str] = {}

    def clear(self) -> None:
        self.read.clear()
        self.dirty.clear()

    def knows(self, request_id: int) -> bool:
        return request_id in self.dirty or request_id in self.read

    def last(self, request_id: int) -> str | None:
        """The request's last hash as this unit of work knows it (None: no entry yet)."""
        if request_id in self.dirty:
            return self.dirty[request_id]
        return self.read.get(request_id)

    def moved(self, request_id: int, tail: str) -> None:
        self.dirty[request_id] = tail

    def take(self, request_id: int | None) -> str | None:
        """The new last hash to write with the request's row (then no longer pending)."""
        if request_id is None or request_id not in self.dirty:
            return None
        tail = self.dirty.pop(request_id)
        self.read[request_id] = tail
        return tail

    async def flush(self, uow: SqlUnitOfWork) -> None:
        """Write the tails no request update carried: under the request's old last hash,
        moving its version on (so a writer holding an older copy re-runs), or Conflict if
        another writer moved the chain meanwhile. Kept for the commit."""
        for request_id, tail in list(self.dirty.items()):
            params = {"t_id": request_id, "t_old": self.read.get(request_id), "t_tail": tail}
            await uow.write(_MOVE_TAIL, params, expect=1, error=Conflict(f"R-{request_id}"))
            self.read[request_id] = tail
        self.dirty.clear()


#: A request's chain end moved under its old value.
_MOVE_TAIL = Kept(update(R).where(
    R.c.id == bindparam("t_id"),
    R.c.audit_hash.is_not_distinct_from(bindparam("t_old", type_=R.c.audit_hash.type)),
).values(audit_hash=bindparam("t_tail", type_=R.c.audit_hash.type), version=R.c.version + 1))


@functools.cache
def _claim_query(by_room: bool, skipping: bool, sqlite: bool) -> Any:
    """``SqlOutbox.claim``'s ranked read, built once per shape (a command's own rooms or all;
    platforms skipped or not; PostgreSQL locks the rows, skipping those another replica
    holds). Parameters: now, per_room, limit, and rooms / skip as lists."""
    now = bindparam("now", type_=O.c.next_attempt_at.type)
    pending = O.c.status == "pending"
    if by_room:
        pending = and_(pending, O.c.room.in_(bindparam("rooms", expanding=True)))
    if skipping:
        pending = and_(pending, O.c.platform.not_in(bindparam("skip", expanding=True)))
    ready = and_(O.c.next_attempt_at <= now, or_(O.c.lease_until.is_(None), O.c.lease_until <= now))
    ranked = select(
        O.c.id, func.row_number().over(partition_by=O.c.room, order_by=O.c.id).label("rn"),
        func.sum(sql_case((ready, 0), else_=1)).over(partition_by=O.c.room,
                                                      order_by=O.c.id).label("blocked"),
    ).where(pending).subquery()
    if sqlite:  # one writer at a time: lease what the ranked read finds in one statement
        due = (select(ranked.c.id)
               .where(ranked.c.blocked == 0, ranked.c.rn <= bindparam("per_room"))
               .order_by(ranked.c.id).limit(bindparam("limit")))
        return _lease(O.c.id.in_(due)).returning(*O.c)
    query = (select(O, ranked.c.rn).join(ranked, O.c.id == ranked.c.id)
             .where(ranked.c.blocked == 0, ranked.c.rn <= bindparam("per_room"))
             .order_by(O.c.id).limit(bindparam("limit")))
    return query.with_for_update(of=O, skip_locked=True)


def _lease(which: Any) -> Any:
    """Lease ``which`` entries (until, owner). An entry whose earlier lease was never settled
    (its process died, or its lease ran out) becomes ``in_doubt``: settling clears the lease."""
    return update(O).where(which).values(
        lease_until=bindparam("until", type_=O.c.lease_until.type),
        lease_owner=bindparam("owner"), attempts=O.c.attempts + 1,
        in_doubt=sql_case((O.c.lease_until.is_not(None), True), else_=O.c.in_doubt))


#: PostgreSQL's lease of the rows its ranked read locked (ids, owner, until).
_LEASE = _lease(O.c.id.in_(bindparam("ids", expanding=True)))


#: A delivered entry recorded (its id, when, the platform's message ref).
_DONE = Kept(update(O).where(O.c.id == bindparam("d_id")).values(
    status="done", delivered_at=bindparam("d_at", type_=O.c.delivered_at.type),
    message_ref=bindparam("d_ref", type_=O.c.message_ref.type), lease_until=None,
    lease_owner=None, last_error=None))


def _retry(counted: bool) -> Kept:
    """An entry backing off until ``r_at`` (``counted``: the attempt stays counted)."""
    values: dict[str, Any] = {
        "next_attempt_at": bindparam("r_at", type_=O.c.next_attempt_at.type),
        "lease_until": None, "lease_owner": None,
        "last_error": bindparam("r_error", type_=O.c.last_error.type),
        "in_doubt": bindparam("r_doubt", type_=O.c.in_doubt.type)}
    if not counted:
        values["attempts"] = case((O.c.attempts > 0, O.c.attempts - 1), else_=0)
    return Kept(update(O).where(O.c.id == bindparam("r_id")).values(values))


_RETRY = {counted: _retry(counted) for counted in (True, False)}


class SqlOutbox(_Repo):
    async def add(self, *, platform: str, room: str, post: Post, request_id: int | None,
                  at: datetime) -> int:
        result = await self._run(insert(O).values(
            platform=platform, room=room, post=post.to_json(), request_id=request_id,
            status="pending", attempts=0, created_at=at, next_attempt_at=at).returning(O.c.id))
        return int(result.scalar_one())

    async def add_many(self, drafts: Sequence[OutboxDraft]) -> None:
        """Queue posts, pending and due at once; kept for the commit (``store.kept``)."""
        if not drafts:
            return
        rows = [{"o_platform": d.platform, "o_room": d.room, "o_post": d.post.to_json(),
                 "o_request_id": d.request_id, "o_at": d.at} for d in drafts]
        await self._uow.write(_OUTBOX_KEPT, rows, many=True)

    async def claim(self, now: datetime, limit: int, lease_seconds: float,
                    skip_platforms: Collection[str] = (), *,
                    owner: str | None = None, per_room: int = 1,
                    rooms: Collection[str] | None = None) -> list[OutboxItem]:
        """Lease up to ``per_room`` of the oldest pending entries of each room whose turn has
        come, in id order (per-room order: a room's entries from the first one leased or
        backing off on wait, and the caller delivers a room's entries one after the other).
        Rooms of ``skip_platforms`` are left to another process (one that can post there
        now). The lease names ``owner`` (a process instance). A ranked read over the pending
        rows (``ix_outbox_room_pending``: room, id) and the lease: on SQLite one
        ``UPDATE … RETURNING`` statement, on PostgreSQL a locking read and an update.

        An entry comes back ``in_doubt`` when an earlier attempt may have been posted: one that
        failed with an unknown outcome (``retry`` keeps it so), or one whose lease was never
        settled (a crash: ``release_dead`` marks it, or a lease that ran out: the lease marks
        it), so no gateway commits a marker of its own before sending. Only a room's first
        pending entry can really be in doubt: a room's entries go out one after the other and
        an entry handed back unattempted is cleared, so a later entry still marked was leased
        by a crashed round before its turn came, and is delivered without a search."""
        query = _claim_query(rooms is not None, bool(skip_platforms), self.sqlite)
        params: dict[str, Any] = {"now": now, "per_room": per_room, "limit": limit}
        if rooms is not None:
            params["rooms"] = sorted(set(rooms))
        if skip_platforms:
            params["skip"] = sorted(skip_platforms)
        until = now + timedelta(seconds=lease_seconds)
        # Posts are immutable: identical ones (an office's digest to each of its rooms) are
        # parsed once and shared, so a round of digests holds one copy of their cards.
        posts: dict[str, Post] = {}

        def item(r: Any, attempts: int, doubt: bool, first: bool) -> OutboxItem:
            post = posts.get(r.post) or posts.setdefault(r.post, Post.from_json(r.post))
            # Only a room's first pending entry can really be in doubt (see above).
            return OutboxItem(r.id, r.platform, r.room, r.request_id, post, attempts,
                              r.created_at, in_doubt=doubt and first)

        if self.sqlite:  # leased and read back in one statement (new values: doubt included)
            rows = sorted((await self._run(
                query, {**params, "until": until, "owner": owner})).all(), key=lambda r: r.id)
            started: set[str] = set()  # a room's lowest id here is its first pending entry
            out = []
            for r in rows:
                out.append(item(r, r.attempts, bool(r.in_doubt), r.room not in started))
                started.add(r.room)
            return out
        leased: list[Any] = []
        seen: dict[str, int] = {}
        for row in (await self._run(query, params)).all():
            # Another replica may hold a room's first rows (skipped locked): then none of
            # that room's later rows may go out here, only an unbroken run from its first.
            if row.rn == seen.get(row.room, 0) + 1:
                seen[row.room] = row.rn
                leased.append(row)
        if leased:
            await self._run(_LEASE, {"ids": [r.id for r in leased], "owner": owner,
                                             "until": until})
        return [item(r, r.attempts + 1, bool(r.in_doubt) or r.lease_until is not None,
                     r.rn == 1) for r in leased]

    async def release(self, item_ids: Sequence[int], at: datetime) -> None:
        """Hand back leased entries not attempted (a room's later entries after an earlier
        one failed): due again at ``at``, their counted attempt given back, not in doubt.
        One statement."""
        if item_ids:
            await self._run(update(O).where(O.c.id.in_(list(item_ids))).values(
                next_attempt_at=at, lease_until=None, lease_owner=None, in_doubt=False,
                attempts=case((O.c.attempts > 0, O.c.attempts - 1), else_=0)))

    async def renew(self, item_ids: Sequence[int], owner: str, until: datetime) -> int:
        """Extend ``owner``'s leases on ``item_ids`` (a heartbeat while they are in flight);
        a lease another process took over meanwhile is left alone. Returns how many."""
        if not item_ids:
            return 0
        result = await self._run(update(O).where(
            O.c.id.in_(list(item_ids)), O.c.lease_owner == owner, O.c.status == "pending",
        ).values(lease_until=until))
        return int(result.rowcount or 0)

    async def release_dead(self, owner: str, now: datetime) -> list[int]:
        """Hand back at once the leases held by processes that are gone. SQLite is one process:
        every lease not ``owner``'s was left by a dead one. On PostgreSQL each process names
        its connections after its instance (``application_name``): a lease whose owner has no
        connection left belongs to a dead process; others run out on their own (short,
        renewed leases)."""
        held = and_(O.c.status == "pending", O.c.lease_until.is_not(None),
                    O.c.lease_until > now)
        if is_sqlite(str(self.conn.engine.url)):
            dead = or_(O.c.lease_owner.is_(None), O.c.lease_owner != owner)
        else:
            alive: Any = (select(column("application_name")).select_from(text("pg_stat_activity"))
                     .where(text("application_name IS NOT NULL")))
            dead = and_(O.c.lease_owner.is_not(None), O.c.lease_owner != owner,
                        O.c.lease_owner.not_in(alive))
        result = await self._run(update(O).where(held, dead).values(
            lease_until=None, lease_owner=None, in_doubt=True).returning(O.c.id))
        return sorted(int(row[0]) for row in result)

    async def done(self, item_id: int, message_ref: str, at: datetime) -> None:
        await self._uow.write(_DONE, {"d_id": item_id, "d_at": at, "d_ref": message_ref})

    async def retry(self, item_id: int, error: str, at: datetime, *,
                    counted: bool = True, not_sent: bool = False) -> None:
        """Back off until ``at``. ``counted=False`` hands back the attempt ``claim`` counted
        (a rate limit or a shutdown is not a failure of the post); ``not_sent`` clears the
        doubt (the platform's answer proved nothing was posted)."""
        await self._uow.write(_RETRY[counted], {"r_id": item_id, "r_at": at,
                                                "r_error": error[:500], "r_doubt": not not_sent})

    async def fail(self, item_id: int, error: str) -> None:
        await self._run(update(O).where(O.c.id == item_id).values(
            status="failed", lease_until=None, lease_owner=None, last_error=error[:500]))

    async def backlog(self) -> int:
        return int((await self._run(
            select(func.count()).select_from(O).where(O.c.status == "pending"))).scalar_one())

    async def next_attempt_after(self, moment: datetime) -> datetime | None:
        return (await self._run(select(func.min(O.c.next_attempt_at)).where(
            O.c.status == "pending", O.c.next_attempt_at > moment))).scalar()

    async def relay_copy(self, request_id: int, room: str, source_ref: str) -> str | None:
        """The message ref of the delivered ``relay`` post of ``source_ref`` in ``room`` (the
        request's outbox rows are few; ``request_id`` is indexed, the JSON is read here)."""
        needle = json.dumps(source_ref, ensure_ascii=False)
        rows = await self._run(select(O.c.post, O.c.message_ref).where(
            O.c.request_id == request_id, O.c.room == room, O.c.status == "done",
            O.c.post.contains(needle, autoescape=True)).order_by(O.c.id))
        for row in rows:
            post = Post.from_json(row.post)
            if post.kind == "relay" and post.source_ref == source_ref and row.message_ref:
                return str(row.message_ref)
        return None


class SqlThreads(_Repo):
    async def add(self, link: ThreadLink, at: datetime) -> None:
        self._uow.links.pop(link.request_id, None)  # what was read with it is out of date
        await self._run(insert(T).values(
            request_id=link.request_id, room=link.room, message_ref=link.message_ref,
            thread_root=link.thread_root, created_at=at))

    @staticmethod
    def _link(row: Any) -> ThreadLink:
        return ThreadLink(row.request_id, row.room, row.message_ref, row.thread_root)

    async def for_request(self, request_id: int) -> list[ThreadLink]:
        if not storable_id(request_id):
            return []
        rows = await self._run(select(T).where(T.c.request_id == request_id)
                                       .order_by(T.c.id))
        return [self._link(row) for row in rows]

    async def rooms_of(self, request_id: int) -> list[str]:
        known = self._uow.links.get(request_id)
        if known is None:
            known = await self.for_request(request_id)
        return [link.room for link in known]

    async def for_requests(self, request_ids: Sequence[int]) -> dict[int, list[ThreadLink]]:
        """The links of each request (none: no entry), in id order; those this unit of work
        read with their requests are not read again."""
        known = self._uow.links
        if all(n in known for n in request_ids):
            return {n: list(known[n]) for n in request_ids if known[n]}
        found: dict[int, list[ThreadLink]] = {}
        request_ids = [n for n in request_ids if storable_id(n)]
        if request_ids:
            rows = await self._run(select(T).where(T.c.request_id.in_(request_ids))
                                           .order_by(T.c.id))
            for row in rows:
                found.setdefault(row.request_id, []).append(self._link(row))
        return found

    async def find(self, room: str, thread_root: str) -> ThreadLink | None:
        row = (await self._run(select(T).where(T.c.room == room,
                                                       T.c.thread_root == thread_root))).first()
        return self._link(row) if row else None


class SqlInbound(_Repo):
    async def first_time(self, platform: str, event_id: str, at: datetime, *,
                         request_id: int | None = None, at_commit: bool = False) -> bool:
        """Record the event; False when it was recorded before. One statement (``INSERT … ON
        CONFLICT DO NOTHING``): no savepoint round trips, and the transaction stays usable.

        ``at_commit`` (and no request named on PostgreSQL): the mark is kept for the commit
        (``store.kept``), which raises ``Replay`` (and stores nothing) when the event was
        recorded before; on SQLite the transaction holds the write lock from its start, on
        PostgreSQL a concurrent mark waits on the key and then finds it. A replay is rare (a
        platform's retry): running its command once more for nothing costs less than a round
        trip for every command.

        PostgreSQL, with ``request_id`` (the request the command names): that request is read
        by the same statement (a data-modifying CTE), for the next ``requests.get``."""
        dialect = "sqlite" if self.sqlite else "postgresql"
        named = request_id if request_id is not None and storable_id(request_id) \
            and not self.sqlite else None
        if at_commit and named is None and self._uow.keep(
                _MARK_KEPT[dialect], {"p": platform, "e": event_id, "a": at}, expect=1,
                error=Replay(event_id)):
            return True
        if named is not None:
            # The request the command names is read in the same statement.
            params = {"p": platform, "e": event_id, "a": at, "id": request_id}
            row = (await self._run(_MARK_AND_GET, params)).one()
            if not row.marked:
                return False
            self._uow.prefetched[named] = row
            return True
        result = await self._run(_FIRST_TIME[dialect], {"p": platform, "e": event_id, "a": at})
        return bool(result.rowcount)

    async def forget_before(self, moment: datetime) -> int:
        result = await self._run(delete(I).where(I.c.at < moment))
        return int(result.rowcount or 0)


def _put_state(make: Any) -> Kept:
    statement = make(S).values(key=bindparam("s_key", type_=S.c.key.type),
                               value=bindparam("s_value", type_=S.c.value.type),
                               updated_at=bindparam("s_at", type_=S.c.updated_at.type))
    return Kept(statement.on_conflict_do_update(
        index_elements=[S.c.key],
        set_={"value": statement.excluded.value, "updated_at": statement.excluded.updated_at}))


#: A state key set whether or not it exists (one statement).
_PUT_STATE = {"sqlite": _put_state(sqlite_insert), "postgresql": _put_state(pg_insert)}


class SqlState(_Repo):
    async def get(self, key: str) -> str | None:
        return (await self._run(select(S.c.value).where(S.c.key == key))).scalar()

    async def put(self, key: str, value: str, at: datetime) -> None:
        """Set ``key`` (an upsert, kept for the commit)."""
        await self._uow.write(_PUT_STATE["sqlite" if self.sqlite else "postgresql"],
                              {"s_key": key, "s_value": value, "s_at": at})

    async def forget(self, prefix: str, before: datetime) -> int:
        """Delete keys starting with ``prefix`` last written before ``before``."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        result = await self._run(delete(S).where(
            S.c.key.like(escaped + "%", escape="\\"), S.c.updated_at < before))
        return int(result.rowcount or 0)

    async def claim_day(self, office: str, day: date) -> bool:
        changed = await self._run(update(D).where(D.c.office == office, D.c.last_on < day)
                                          .values(last_on=day))
        if changed.rowcount:
            return True
        return await self._insert_new(insert(D).values(office=office, last_on=day))


class SqlUnitOfWork:
    """One database transaction: commit explicitly, anything else rolls back."""

    def __init__(self, engine: AsyncEngine, *, read_only: bool = False) -> None:
        self.engine = engine
        self.read_only = read_only
        self._lock: asyncio.Lock | None = None
        self.conn: AsyncConnection | None = None
        self.requests = SqlRequests(self)
        self.history = SqlHistory(self)
        self.outbox = SqlOutbox(self)
        self.threads = SqlThreads(self)
        self.inbound = SqlInbound(self)
        self.state = SqlState(self)
        self.tails = _Tails()
        #: The thread links of each request got in this unit of work (read with it).
        self.links: dict[int, list[ThreadLink]] = {}
        #: Request rows read with the dedupe mark (PostgreSQL), for the next ``get``.
        self.prefetched: dict[int, Any] = {}
        #: SQLite, writing: the driver connection that keeps writes for the commit's hop.
        self.raw: OneHopConnection | None = None
        #: PostgreSQL: the writes kept so far, sent as one statement before the next one
        #: (``send_kept``) or the commit.
        self.kept: list[KeptWrite] = []
        self._postgres = engine.dialect.name == "postgresql"

    def keep(self, statement: Kept, values: Any, *, many: bool = False,
             expect: int | None = None, error: BaseException | None = None) -> bool:
        """Keep a write for later (``store.kept``): on SQLite for the transaction's next hop,
        usually the commit's; on PostgreSQL for one statement with the other writes kept,
        sent before the next statement or the commit. False when neither can be done (the
        caller executes it). ``expect``: the row count it must have, else ``error`` is raised
        (at the latest at the commit) and nothing of the transaction is stored."""
        assert self.conn is not None
        if self.raw is not None:
            if many:
                sql, rows = statement.many(self.conn.dialect, values)
                self.raw.later(sql, rows, many=True)
            else:
                sql, row = statement.parameters(self.conn.dialect, values)
                self.raw.later(sql, row, expect=expect, error=error)
            return True
        if self._postgres:
            self.kept.append(KeptWrite(statement, values, many, expect, error))
            return True
        return False

    async def write(self, statement: Kept, values: Any, *, many: bool = False,
                    expect: int | None = None, error: BaseException | None = None) -> None:
        """Write with ``statement``: kept for later (``keep``) where this connection can,
        else at once, under the same check."""
        if self.keep(statement, values, many=many, expect=expect, error=error):
            return
        assert self.conn is not None
        result = await self.conn.execute(statement.statement, list(values) if many else values)
        if expect is not None and result.rowcount != expect:
            raise error or RuntimeError(f"a write to {statement.table} changed "
                                        f"{result.rowcount} rows, not {expect}")

    async def send_kept(self) -> None:
        """PostgreSQL: send the kept writes, in as few statements as their order allows."""
        kept, self.kept = self.kept, []
        assert self.conn is not None
        await send_together(self.conn, kept)

    async def __aenter__(self) -> SqlUnitOfWork:
        lock = None if self.read_only else write_lock(self.engine)
        if lock is not None:
            # As long as SQLite's own busy timeout: a writer nested in another writer of the
            # same task fails as it did with BEGIN IMMEDIATE alone, never hangs. A free queue
            # is taken at once (``wait_for`` would cost a task and a loop step).
            if lock.locked():
                await asyncio.wait_for(lock.acquire(), 30)
            else:
                await lock.acquire()
            self._lock = lock
        try:
            await self._begin()
        except BaseException:
            self._unlock()
            raise
        return self

    def _unlock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    async def _begin(self) -> None:
        self.conn = await self.engine.connect()
        if self.read_only and is_sqlite(str(self.engine.url)):  # a plain BEGIN (store.db)
            (await self.conn.get_raw_connection()).info[READ_ONLY] = True
        await self.conn.begin()
        sync = self.conn.sync_connection
        if not self.read_only and sync is not None:
            driver = sync.connection.driver_connection
            self.raw = driver if isinstance(driver, OneHopConnection) else None

    async def __aexit__(self, *exc: object) -> None:
        assert self.conn is not None
        try:
            if self.conn.in_transaction():
                await self.conn.rollback()
        finally:
            try:
                await self.conn.close()
            finally:
                self.conn = None
                self.raw = None
                self.kept.clear()
                self._unlock()

    async def commit(self) -> None:
        """Commit; on SQLite the process's write queue moves on at once (the connection's
        return to the pool is not the next writer's business)."""
        assert self.conn is not None
        await self.tails.flush(self)
        if self.kept:
            await self.send_kept()
        await self.conn.commit()
        self._unlock()

    async def rollback(self) -> None:
        assert self.conn is not None
        await self.conn.rollback()
        self.kept.clear()
        self.tails.clear()
        self.links.clear()
        self.prefetched.clear()
        await self.conn.begin()


class SqlUnitOfWorkFactory:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def __call__(self, *, read_only: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, read_only=read_only)


# ------------------------------------------------------------------ the case board's reads
# Read-only queries for ``liaisonbot.board``; every one is scoped to an office the caller
# names, and takes the open unit of work's connection.

class PartyTimes(NamedTuple):
    id: int
    partner: str
    status: Status
    created_at: datetime
    due_at: datetime


_LIST_COLUMNS = ("id", "case_ref", "kind", "requesting", "requested", "summary", "status",
                 "created_at", "due_at", "ack_due_at", "opened_by", "urgent", "confidentiality",
                 "version")


def _pending_flag() -> Any:
    return sql_case((R.c.status.in_(_PENDING), 1), else_=0)


class BoardReads:
    """What the case board reads, in a few indexed statements per page (no N+1)."""

    def __init__(self, uow: SqlUnitOfWork) -> None:
        assert uow.conn is not None, "use BoardReads inside 'async with uow'"
        self.conn = uow.conn

    async def cases(self, office: str, now: datetime) -> list[tuple[str, int, int, int]]:
        """``(case, requests, open, overdue)`` for each case ``office`` is party to."""
        overdue = sql_case((and_(R.c.status.in_(_PENDING), R.c.due_at <= now), 1), else_=0)
        totals: dict[str, list[int]] = {}
        for side in (R.c.requesting, R.c.requested):
            rows = await self.conn.execute(
                select(R.c.case_ref, func.count(), func.sum(_pending_flag()), func.sum(overdue))
                .where(side == office).group_by(R.c.case_ref))
            for case_ref, count, pending, late in rows:
                got = totals.setdefault(case_ref, [0, 0, 0])
                got[0] += int(count)
                got[1] += int(pending or 0)
                got[2] += int(late or 0)
        return sorted(((c, *v) for c, v in totals.items()),  # type: ignore[misc]
                      key=lambda row: (-row[3], -row[2], row[0]))

    @staticmethod
    def _case_filter(query: Any, case_ref: str, office: str, status: str | None,
                     partner: str | None, instrument: str | None = None) -> Any:
        query = query.where(R.c.case_ref == case_ref, _party(office))
        if instrument:
            query = query.where(R.c.instrument == instrument)
        if status:
            query = query.where(R.c.status == status)
        if partner:
            query = query.where(or_(and_(R.c.requesting == office, R.c.requested == partner),
                                    and_(R.c.requested == office, R.c.requesting == partner)))
        return query

    async def case_count(self, case_ref: str, office: str, *, status: str | None = None,
                         partner: str | None = None, instrument: str | None = None) -> int:
        query = self._case_filter(select(func.count()).select_from(R), case_ref, office,
                                  status, partner, instrument)
        return int((await self.conn.execute(query)).scalar_one())

    async def case_requests(self, case_ref: str, office: str, *, status: str | None = None,
                            partner: str | None = None, instrument: str | None = None,
                            limit: int = 250, offset: int = 0) -> list[Request]:
        """The case's requests ``office`` is party to, most urgent first (pending, then
        answered, then ended; urgent first; earliest due first). Only the columns a case page
        shows are read: answer, basis, assignee, eta and the nudge state stay unset."""
        band = sql_case((R.c.status.in_(_PENDING), 0), (R.c.status == "answered", 1), else_=2)
        query = self._case_filter(select(*[R.c[name] for name in _LIST_COLUMNS]), case_ref,
                                  office, status, partner, instrument)
        query = query.order_by(band, R.c.urgent.desc(), R.c.due_at, R.c.id).limit(limit) \
            .offset(offset)
        return [Request(id=r.id, case=r.case_ref, kind=Kind(r.kind), requesting=r.requesting,
                        requested=r.requested, summary=r.summary, status=Status(r.status),
                        created_at=r.created_at, due_at=r.due_at, ack_due_at=r.ack_due_at,
                        opened_by=r.opened_by, urgent=r.urgent,
                        confidentiality=Confidentiality(r.confidentiality), version=r.version)
                for r in (await self.conn.execute(query)).all()]

    async def sealed_entries(self, request_id: int) -> list[tuple[HistoryItem, str | None,
                                                                  str | None]]:
        """The request's history with what the chain around each entry says: the hash of the
        entry before it and the ``prev_hash`` of the entry after it (None at the ends)."""
        rows = (await self.conn.execute(select(H).where(H.c.request_id == request_id)
                                        .order_by(H.c.id))).all()
        if not rows:
            return []
        ids = [row.id for row in rows]
        before = dict((await self.conn.execute(
            select(H.c.id, H.c.hash).where(H.c.id.in_([i - 1 for i in ids])))).all())
        after = dict((await self.conn.execute(
            select(H.c.id, H.c.prev_hash).where(H.c.id.in_([i + 1 for i in ids])))).all())
        return [(HistoryItem(SqlHistory._entry(row), row.prev_hash, row.hash),
                 before.get(row.id - 1), after.get(row.id + 1)) for row in rows]

    async def tail(self, request_id: int) -> str | None:
        """The request's stored last audit hash (its chain's end)."""
        return (await self.conn.execute(select(R.c.audit_hash)
                                        .where(R.c.id == request_id))).scalar()

    async def head(self) -> tuple[int, str] | None:
        row = (await self.conn.execute(select(HEAD.c.last_id, HEAD.c.last_hash))).first()
        return (int(row[0]), str(row[1])) if row else None

    async def party_times(self, office: str) -> list[PartyTimes]:
        """For each request ``office`` is party to: the partner, status, opening and due
        times (only the columns the partner figures need)."""
        rows = await self.conn.execute(
            select(R.c.id, R.c.requesting.label("partner"), R.c.status, R.c.created_at,
                   R.c.due_at).where(R.c.requested == office).union_all(
                select(R.c.id, R.c.requested.label("partner"), R.c.status, R.c.created_at,
                       R.c.due_at).where(R.c.requesting == office)))
        return [PartyTimes(int(r[0]), str(r[1]), Status(r[2]), r[3], r[4]) for r in rows]

    async def first_moments(self, office: str,
                            actions: Sequence[str]) -> dict[tuple[int, str], datetime]:
        """The first time each of ``actions`` happened to each request ``office`` is party to."""
        ids = select(R.c.id).where(R.c.requested == office).union_all(
            select(R.c.id).where(R.c.requesting == office))
        rows = await self.conn.execute(
            select(H.c.request_id, H.c.action, func.min(H.c.at))
            .where(H.c.action.in_(list(actions)), H.c.request_id.in_(ids))
            .group_by(H.c.request_id, H.c.action))
        return {(int(rid), str(action)): at for rid, action, at in rows}
