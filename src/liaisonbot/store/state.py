"""Small state: inbound events already handled, named values (sync tokens, relay origins),
the offices' digest days."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Table, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from liaisonbot.store.repo import Repo
from liaisonbot.store.tables import DigestRow, InboundRow, StateRow

I: Table = InboundRow.__table__  # type: ignore[attr-defined]  # noqa: E741
S: Table = StateRow.__table__  # type: ignore[attr-defined]
D: Table = DigestRow.__table__  # type: ignore[attr-defined]


class _Upserts(Repo):
    def insert(self, table: Table) -> Any:
        """``INSERT`` with ``ON CONFLICT`` clauses, in this connection's dialect."""
        return (sqlite_insert if self.sqlite else pg_insert)(table)


#: An event's mark, per dialect (built once: every inbound thing records one).
_MARK = {name: make(I).on_conflict_do_nothing()
         for name, make in (("sqlite", sqlite_insert), ("postgresql", pg_insert))}


class SqlInbound(_Upserts):
    async def first_time(self, platform: str, event_id: str, at: datetime) -> bool:
        """Record the event; False when it was recorded before. One statement (``INSERT … ON
        CONFLICT DO NOTHING``): the transaction stays usable either way. On SQLite the
        transaction holds the write lock from its start; on PostgreSQL a concurrent mark of
        the same event waits on the key and then finds it."""
        result = await self.run(_MARK[self.conn.dialect.name],
                                {"platform": platform, "event_id": event_id, "at": at})
        return bool(result.rowcount)

    async def forget_before(self, moment: datetime) -> int:
        result = await self.run(delete(I).where(I.c.at < moment))
        return int(result.rowcount or 0)


class SqlState(_Upserts):
    async def get(self, key: str) -> str | None:
        return (await self.run(select(S.c.value).where(S.c.key == key))).scalar()

    async def put(self, key: str, value: str, at: datetime) -> None:
        """Set ``key`` whether or not it exists (one upsert)."""
        statement = self.insert(S).values(key=key, value=value, updated_at=at)
        await self.run(statement.on_conflict_do_update(
            index_elements=[S.c.key],
            set_={"value": statement.excluded.value,
                  "updated_at": statement.excluded.updated_at}))

    async def with_prefix(self, prefix: str) -> dict[str, str]:
        """Every key starting with ``prefix``, with its value."""
        rows = await self.run(select(S.c.key, S.c.value).where(
            S.c.key.startswith(prefix, autoescape=True)))
        return {str(key): str(value) for key, value in rows}

    async def forget(self, prefix: str, before: datetime) -> int:
        """Delete keys starting with ``prefix`` last written before ``before``."""
        result = await self.run(delete(S).where(S.c.key.startswith(prefix, autoescape=True),
                                                S.c.updated_at < before))
        return int(result.rowcount or 0)

    async def claim_day(self, office: str, day: date) -> bool:
        """Mark ``day`` as the office's last digest day; False if it already was."""
        changed = await self.run(update(D).where(D.c.office == office, D.c.last_on < day)
                                 .values(last_on=day))
        if changed.rowcount:
            return True
        inserted = await self.run(self.insert(D).values(office=office, last_on=day)
                                  .on_conflict_do_nothing())
        return bool(inserted.rowcount)
