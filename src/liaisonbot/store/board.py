"""The case board's reads: read-only queries, each scoped to an office the caller names, in a
few indexed statements per page (no N+1), on the open unit of work's connection."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import and_, case, func, or_, select

from liaisonbot.domain.model import PENDING, Request, Status
from liaisonbot.service.ports import HistoryItem
from liaisonbot.store.history import HEAD, H, entry_of
from liaisonbot.store.rows import R, partial_request_from
from liaisonbot.store.uow import SqlUnitOfWork

_PENDING = sorted(s.value for s in PENDING)


def _party(office: str) -> Any:
    return or_(R.c.requesting == office, R.c.requested == office)


class PartyTimes(NamedTuple):
    id: int
    partner: str
    status: Status
    created_at: datetime
    due_at: datetime


_LIST_COLUMNS = ("id", "case_ref", "kind", "requesting", "requested", "summary", "status",
                 "created_at", "due_at", "ack_due_at", "opened_by", "urgent", "confidentiality",
                 "version", "parallel_of")


def _pending_flag() -> Any:
    return case((R.c.status.in_(_PENDING), 1), else_=0)


class BoardReads:
    """What the case board reads, in a few indexed statements per page (no N+1)."""

    def __init__(self, uow: SqlUnitOfWork) -> None:
        self.conn = uow.connection()

    async def cases(self, office: str, now: datetime) -> list[tuple[str, int, int, int]]:
        """``(case, requests, open, overdue)`` for each case ``office`` is party to."""
        overdue = case((and_(R.c.status.in_(_PENDING), R.c.due_at <= now), 1), else_=0)
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
        band = case((R.c.status.in_(_PENDING), 0), (R.c.status == "answered", 1), else_=2)
        query = self._case_filter(select(*[R.c[name] for name in _LIST_COLUMNS]), case_ref,
                                  office, status, partner, instrument)
        query = query.order_by(band, R.c.urgent.desc(), R.c.due_at, R.c.id).limit(limit) \
            .offset(offset)
        return [partial_request_from(r) for r in (await self.conn.execute(query)).all()]

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
        return [(HistoryItem(entry_of(row), row.prev_hash, row.hash),
                 before.get(row.id - 1), after.get(row.id + 1)) for row in rows]

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
        return [PartyTimes(int(r[0]), str(r[1]), r[2], r[3], r[4]) for r in rows]

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
