"""Former parties: offices a request was forwarded away from, and what they may still read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Table, insert, select

from liaisonbot.domain.forwarding import Former, from_snapshot, snapshot
from liaisonbot.domain.model import Request
from liaisonbot.domain.refs import storable_id
from liaisonbot.store.repo import Repo
from liaisonbot.store.tables import FormerPartyRow

F: Table = FormerPartyRow.__table__  # type: ignore[attr-defined]


def _former(row: Any) -> Former:
    return Former(request_id=row.request_id, office=row.office, at=row.at, to=row.to_office,
                  upto=row.upto, request=from_snapshot(row.snapshot))


class SqlFormerParties(Repo):
    async def add(self, request: Request, *, office: str, to: str, upto: int,
                  at: datetime) -> None:
        """``office`` forwarded ``request`` (as it stands, before the move) to ``to``; it
        may read the first ``upto`` history entries."""
        await self.run(insert(F).values(
            request_id=request.id, office=office, case_ref=request.case, to_office=to,
            at=at, upto=upto, snapshot=snapshot(request)))

    async def get(self, request_id: int, office: str) -> Former | None:
        """What ``office`` may still read of a request it forwarded (its latest forwarding)."""
        if not storable_id(request_id):
            return None
        row = (await self.run(select(F).where(F.c.request_id == request_id, F.c.office == office)
                              .order_by(F.c.id.desc()).limit(1))).first()
        return _former(row) if row is not None else None

    async def for_case(self, case: str, office: str) -> list[Former]:
        """The requests of ``case`` that ``office`` forwarded away (latest per request)."""
        rows = await self.run(select(F).where(F.c.case_ref == case, F.c.office == office)
                              .order_by(F.c.id))
        found = {row.request_id: _former(row) for row in rows}
        return list(found.values())

    async def for_office(self, office: str) -> list[Former]:
        """Every request ``office`` forwarded away (latest per request)."""
        rows = await self.run(select(F).where(F.c.office == office).order_by(F.c.id))
        return list({row.request_id: _former(row) for row in rows}.values())
