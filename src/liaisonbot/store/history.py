"""The history: append-only entries, each sealing the one before it on its request's chain
(``domain.audit``); the chain's end is kept in ``request.audit_hash``."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, func, insert, select, text, update

from liaisonbot.domain.audit import GENESIS, Entry, Seal, link_hash, utc_text
from liaisonbot.domain.checkpoint import Leaf
from liaisonbot.domain.model import Request
from liaisonbot.domain.refs import storable_id
from liaisonbot.service.ports import HistoryDraft, HistoryItem
from liaisonbot.store.repo import Repo
from liaisonbot.store.rows import COLUMNS, R, request_from
from liaisonbot.store.tables import AuditHeadRow, HistoryRow

if TYPE_CHECKING:
    from liaisonbot.store.requests import SqlRequests

H: Table = HistoryRow.__table__  # type: ignore[attr-defined]
HEAD: Table = AuditHeadRow.__table__  # type: ignore[attr-defined]


_INSERT = insert(H)


def entry_of(row: Any) -> Entry:
    return Entry(row.id, row.request_id, utc_text(row.at), row.actor, row.platform,
                 row.action, json.loads(row.detail), row.state_hash)


class Tails:
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

    async def flush(self, requests: SqlRequests) -> None:
        """Write the ends no request update carried, each under its old value."""
        for request_id, tail in list(self.dirty.items()):
            await requests.move_tail(request_id, self.read.get(request_id), tail)
            self.read[request_id] = tail
        self.dirty.clear()


class SqlHistory(Repo):
    async def append(self, *, request_id: int | None, at: Any, actor: str, platform: str,
                     action: str, detail: dict[str, Any], state: str | None = None) -> None:
        await self.append_many([HistoryDraft(request_id, at, actor, platform, action, detail,
                                             state)])

    async def append_many(self, drafts: Sequence[HistoryDraft]) -> None:
        """Seal ``drafts`` onto their requests' chains: each links to the request's last
        entry, known from the request row this unit of work read (its ``audit_hash``), so no
        shared row is locked; all go in one statement. The request's new last hash is written
        with the request's own update (or at commit, under its old value). Entries of no
        request chain under the head row."""
        if not drafts:
            return
        tails = self._uow.tails
        rows = []
        for draft in drafts:
            if draft.request_id is None:
                continue
            if not tails.knows(draft.request_id):
                tails.read[draft.request_id] = await self._uow.requests.tail(draft.request_id)
            prev = tails.last(draft.request_id) or GENESIS
            sealed = link_hash(prev, _draft_entry(draft))
            rows.append(_row(draft, prev, sealed))
            tails.moved(draft.request_id, sealed)
        if rows:
            await self.run(_INSERT, rows)
        loose = [d for d in drafts if d.request_id is None]
        if loose:
            await self._append_loose(loose)

    async def _append_loose(self, drafts: Sequence[HistoryDraft]) -> None:
        """Entries of no request (none today): one chain under the locked head row."""
        head = (await self.run(select(HEAD).where(HEAD.c.id == 1).with_for_update())).first()
        last_id, prev = (head.last_id, head.last_hash) if head else (0, GENESIS)
        for draft in drafts:
            sealed = link_hash(prev, _draft_entry(draft))
            last_id = int((await self.run(insert(H).values(**_row(draft, prev, sealed))
                                          .returning(H.c.id))).scalar_one())
            prev = sealed
        if head:
            await self.run(update(HEAD).where(HEAD.c.id == 1)
                           .values(last_id=last_id, last_hash=prev))
        else:
            await self.run(insert(HEAD).values(id=1, last_id=last_id, last_hash=prev,
                                               legacy_upto=0, legacy_hash=GENESIS))

    async def for_request(self, request_id: int) -> list[Entry]:
        if not storable_id(request_id):
            return []
        rows = await self.run(select(H).where(H.c.request_id == request_id).order_by(H.c.id))
        return [entry_of(row) for row in rows]

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
        for row in await self.run(query.order_by(H.c.id)):
            found.setdefault(row.request_id, []).append(entry_of(row))
        return found

    async def chain(self) -> list[HistoryItem]:
        rows = await self.run(select(H).order_by(H.c.id))
        return [HistoryItem(entry_of(row), row.prev_hash, row.hash) for row in rows]

    async def head(self) -> tuple[int, str] | None:
        row = (await self.run(select(HEAD).where(HEAD.c.id == 1))).first()
        return (row.last_id, row.last_hash) if row else None

    async def seal(self) -> Seal:
        """Where the legacy global chain ends (migration 0005); a database without a head
        row has no legacy entries."""
        row = (await self.run(select(HEAD.c.legacy_upto, HEAD.c.legacy_hash)
                              .where(HEAD.c.id == 1))).first()
        return Seal(int(row[0]), str(row[1])) if row else Seal(0, GENESIS)

    async def requests(self) -> list[Request]:
        """Every request as stored (``audit verify`` compares each with its sealed state)."""
        rows = await self.run(select(*COLUMNS).order_by(R.c.id))
        return [request_from(row) for row in rows]

    async def leaves(self, upto: int | None = None) -> tuple[int, list[Leaf]]:
        """The checkpoint leaves over entries with ids up to ``upto`` (None: every entry now;
        on PostgreSQL under ``LOCK TABLE history IN SHARE MODE``, so that no entry with a
        lower id can still commit after it): per request, its number of entries and the
        stored hash of the last. Entries of no request are not covered (none are written)."""
        if upto is None:
            if not self.sqlite:
                await self.run(text("LOCK TABLE history IN SHARE MODE"))
            upto = int((await self.run(select(func.max(H.c.id)))).scalar() or 0)
        last = (select(H.c.request_id.label("rid"), func.count().label("n"),
                       func.max(H.c.id).label("last"))
                .where(H.c.request_id.is_not(None), H.c.id <= upto)
                .group_by(H.c.request_id).subquery())
        rows = await self.run(select(last.c.rid, last.c.n, H.c.hash)
                              .join(H, H.c.id == last.c.last).order_by(last.c.rid))
        return upto, [Leaf(int(rid), int(n), str(end)) for rid, n, end in rows]

    async def tails(self) -> dict[int, str]:
        """Each request's stored last hash (``request.audit_hash``)."""
        rows = await self.run(select(R.c.id, R.c.audit_hash).where(R.c.audit_hash.is_not(None)))
        return {int(rid): str(tail) for rid, tail in rows}


def _draft_entry(draft: HistoryDraft) -> Entry:
    return Entry(0, draft.request_id, utc_text(draft.at), draft.actor, draft.platform,
                 draft.action, draft.detail, draft.state)


def _row(draft: HistoryDraft, prev: str, sealed: str) -> dict[str, Any]:
    return {"request_id": draft.request_id, "at": draft.at, "actor": draft.actor,
            "platform": draft.platform, "action": draft.action, "prev_hash": prev,
            "hash": sealed, "state_hash": draft.state,
            "detail": json.dumps(draft.detail, sort_keys=True, ensure_ascii=False)}
