"""Thread links: where a request's card sits in each room (its message, the thread root)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, insert, select

from liaisonbot.domain.refs import storable_id
from liaisonbot.service.ports import ThreadLink
from liaisonbot.store.repo import Repo
from liaisonbot.store.tables import ThreadRow

T: Table = ThreadRow.__table__  # type: ignore[attr-defined]


#: One request's links, in order (built once: every change reads them).
_OF_REQUEST = select(T).where(T.c.request_id == bindparam("rid")).order_by(T.c.id)


def _link(row: Any) -> ThreadLink:
    return ThreadLink(row.request_id, row.room, row.message_ref, row.thread_root)


class SqlThreads(Repo):
    async def add(self, link: ThreadLink, at: datetime) -> None:
        await self.run(insert(T).values(
            request_id=link.request_id, room=link.room, message_ref=link.message_ref,
            thread_root=link.thread_root, created_at=at))

    async def for_request(self, request_id: int) -> list[ThreadLink]:
        if not storable_id(request_id):
            return []
        return [_link(row) for row in await self.run(_OF_REQUEST, {"rid": request_id})]

    async def rooms_of(self, request_id: int) -> list[str]:
        return [link.room for link in await self.for_request(request_id)]

    async def for_requests(self, request_ids: Sequence[int]) -> dict[int, list[ThreadLink]]:
        """The links of each request (none: no entry), in id order."""
        found: dict[int, list[ThreadLink]] = {}
        request_ids = [n for n in request_ids if storable_id(n)]
        if request_ids:
            rows = await self.run(select(T).where(T.c.request_id.in_(request_ids))
                                  .order_by(T.c.id))
            for row in rows:
                found.setdefault(row.request_id, []).append(_link(row))
        return found

    async def find(self, room: str, thread_root: str) -> ThreadLink | None:
        row = (await self.run(select(T).where(T.c.room == room,
                                              T.c.thread_root == thread_root))).first()
        return _link(row) if row else None
