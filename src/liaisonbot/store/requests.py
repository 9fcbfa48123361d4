"""Requests: read and written whole (``store.rows``), under their version."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, or_, select, text, update

from liaisonbot.domain.model import Request
from liaisonbot.domain.refs import storable_id
from liaisonbot.service.ports import Conflict
from liaisonbot.store.repo import Repo
from liaisonbot.store.rows import COLUMNS, R, request_from, request_values
from liaisonbot.store.tables import INCOMPLETE_SQL, PENDING_SQL

#: A request written back under its version (the new values by column name, ``b_id``,
#: ``b_version``): zero rows changed means another writer moved it.
_WRITE_BACK = update(R).where(R.c.id == bindparam("b_id"), R.c.version == bindparam("b_version"))
#: A request with its audit chain's end, by id (built once: hot).
_GET = select(*COLUMNS, R.c.audit_hash).where(R.c.id == bindparam("id"))
#: The nudge state of claimed (locked) requests, one ``executemany``.
_NUDGES = update(R).where(R.c.id == bindparam("b_id")).values(version=R.c.version + 1)


def _party(office: str) -> Any:
    return or_(R.c.requesting == office, R.c.requested == office)


class SqlRequests(Repo):
    async def add(self, request: Request) -> int:
        result = await self.run(R.insert().returning(R.c.id),
                                {**request_values(request), "version": request.version})
        request.id = int(result.scalar_one())
        self._uow.tails.read[request.id] = None
        return request.id

    async def get(self, request_id: int) -> Request | None:
        if not storable_id(request_id):
            return None  # beyond the column's range (PostgreSQL would raise): no such request
        row = (await self.run(_GET, {"id": request_id})).first()
        if row is None:
            return None
        self._uow.tails.read.setdefault(row.id, row.audit_hash)
        return request_from(row)

    async def update(self, request: Request) -> None:
        """Write ``request`` back under its version, with its audit chain's new end when this
        unit of work appended to it; ``Conflict`` when the version moved meanwhile."""
        values: dict[str, Any] = {**request_values(request), "version": request.version + 1,
                                  "b_id": request.id, "b_version": request.version}
        tail = self._uow.tails.take(request.id)
        if tail is not None:
            values["audit_hash"] = tail
        result = await self.run(_WRITE_BACK, values)
        if result.rowcount != 1:
            raise Conflict(request.ref)
        request.version += 1

    async def _many(self, query: Any) -> list[Request]:
        return [request_from(row) for row in (await self.run(query)).all()]

    def _select(self) -> Any:
        return select(*COLUMNS)

    async def for_case(self, case: str, office: str) -> list[Request]:
        return await self._many(self._select().where(R.c.case_ref == case, _party(office)))

    async def parallels(self, request: Request) -> list[Request]:
        """The requests opened together with ``request`` (``open … to:A,B``), itself among
        them, in id order; just itself when it was opened alone."""
        first = request.parallel_of or request.id
        return await self._many(self._select().where(
            or_(R.c.id == first, R.c.parallel_of == first)).order_by(R.c.id))

    async def postponements_due(self, now: datetime, limit: int) -> list[Request]:
        """Postponed requests whose date has come (their ``next_nudge_at`` is that date)."""
        return await self._claim(now, limit, R.c.status == "postponed", R.c.hold_until <= now)

    async def all_for_case(self, case: str) -> list[Request]:
        return await self._many(self._select().where(R.c.case_ref == case).order_by(R.c.id))

    def _per_side(self, office: str, *where: Any) -> Any:
        """``office``'s requests matching ``where``: two index range scans (one per side),
        not an OR over the whole table."""
        return self._select().where(R.c.requested == office, *where).union_all(
            self._select().where(R.c.requesting == office, *where))

    async def overdue(self, office: str, now: datetime) -> list[Request]:
        # The partial indexes' own condition, so SQLite uses them.
        return await self._many(self._per_side(office, text(PENDING_SQL), R.c.due_at <= now))

    async def party_to(self, office: str) -> list[Request]:
        """Every request ``office`` is party to (the weekly report; not a hot path)."""
        return await self._many(self._per_side(office))

    async def overdue_counts(self, now: datetime) -> dict[str, int]:
        rows = await self.run(
            select(R.c.requested, func.count()).where(text(PENDING_SQL), R.c.due_at <= now)
            .group_by(R.c.requested))
        return {office: int(count) for office, count in rows}

    async def pending_for(self, office: str) -> list[Request]:
        return await self._many(self._per_side(office, text(PENDING_SQL)))

    async def incomplete_for(self, office: str) -> list[Request]:
        """Requests ``office`` is party to that wait for completion (clocks stopped)."""
        return await self._many(self._per_side(office, text(INCOMPLETE_SQL)))

    async def held_for(self, office: str) -> list[Request]:
        """Requests ``office`` is party to that are postponed or consulting (not chased)."""
        return await self._many(self._per_side(office, R.c.status.in_(
            ("postponed", "consulting"))))

    async def update_nudges(self, requests: Sequence[Request]) -> None:
        """Nudge counters and ``next_nudge_at`` of claimed requests, in one executemany. The
        rows are locked by the claim (or the SQLite write lock), so no version check is
        needed; the version still moves, so a desk command holding an older copy re-reads.
        Their audit chains' ends move with them."""
        if not requests:
            return
        tails = self._uow.tails
        await self.run(_NUDGES, [
            {"b_id": r.id, "ack_nudges_sent": r.ack_nudges_sent,
             "answer_nudges_sent": r.answer_nudges_sent, "next_nudge_at": r.next_nudge_at,
             "incomplete_nudges_sent": r.incomplete_nudges_sent, "eta_reminded": r.eta_reminded,
             "audit_hash": tails.take(r.id) or tails.read.get(r.id)} for r in requests])
        for request in requests:
            request.version += 1

    async def next_nudge_after(self, moment: datetime) -> datetime | None:
        return (await self.run(select(func.min(R.c.next_nudge_at))
                               .where(R.c.next_nudge_at > moment))).scalar()

    async def claim_nudges(self, now: datetime, limit: int) -> list[Request]:
        return await self._claim(now, limit)

    async def _claim(self, now: datetime, limit: int, *where: Any) -> list[Request]:
        """Requests whose ``next_nudge_at`` has come (and ``where``), earliest first, locked
        for this transaction (``SKIP LOCKED`` on PostgreSQL), their chain ends noted."""
        query = (select(*COLUMNS, R.c.audit_hash)
                 .where(R.c.next_nudge_at.is_not(None), R.c.next_nudge_at <= now, *where)
                 .order_by(R.c.next_nudge_at).limit(limit))
        if not self.sqlite:
            query = query.with_for_update(skip_locked=True)
        rows = (await self.run(query)).all()
        for row in rows:
            self._uow.tails.read.setdefault(row.id, row.audit_hash)
        return [request_from(row) for row in rows]

    async def move_tail(self, request_id: int, old: str | None, new: str) -> None:
        """Move a request's audit chain end from ``old`` to ``new`` (and its version on, so a
        writer holding an older copy re-runs); ``Conflict`` when another writer moved it."""
        result = await self.run(update(R).where(
            R.c.id == request_id, R.c.audit_hash.is_not_distinct_from(old),
        ).values(audit_hash=new, version=R.c.version + 1))
        if result.rowcount != 1:
            raise Conflict(f"R-{request_id}")

    async def tail(self, request_id: int) -> str | None:
        """The stored end of a request's audit chain."""
        return (await self.run(select(R.c.audit_hash)  # type: ignore[no-any-return]
                               .where(R.c.id == request_id))).scalar()
