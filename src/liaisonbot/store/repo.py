"""What every repository shares: the unit of work's connection."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncConnection

if TYPE_CHECKING:
    from liaisonbot.store.uow import SqlUnitOfWork


class Repo:
    def __init__(self, uow: SqlUnitOfWork) -> None:
        self._uow = uow

    @property
    def conn(self) -> AsyncConnection:
        return self._uow.connection()

    @property
    def sqlite(self) -> bool:
        return self.conn.dialect.name == "sqlite"

    async def run(self, statement: Any, parameters: Any = None) -> Any:
        """Execute one statement in the unit of work's transaction (a list of parameter
        sets: one ``executemany``)."""
        return await self.conn.execute(statement, parameters)
