"""Whether a delivery may already have reached its platform: one committed state row each.

A gateway whose platform cannot (or can only for a while) dedupe a repeated post asks
:meth:`Attempts.begin` right before sending. The first time, it commits
``<platform>:try:<delivery_id> = 1`` and answers False: nothing can have gone out yet, post
without further ado. When the same delivery comes back with the row still at ``1``, an earlier
attempt may have been posted (a dropped connection, a 5xx, a crash of this process after the
send): ``begin`` answers True and the gateway looks in the room's recent history for its
delivery marker before posting again. An answer that proves nothing was posted (a 4xx, a rate
limit) goes through :meth:`Attempts.not_sent`, which sets the row to ``0`` so the next try skips
the search. The row lives in SQL, so this holds across restarts; the cost is one small
transaction per post, and a history call only on the doubtful retries.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from liaisonbot.service.ports import UnitOfWorkFactory


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Attempts:
    """The ``<platform>:try:<delivery_id>`` markers of one gateway."""

    def __init__(self, uow: UnitOfWorkFactory, platform: str,
                 now: Callable[[], datetime] = _utcnow) -> None:
        self.uow = uow
        self.platform = platform
        self.now = now

    def key(self, delivery_id: str) -> str:
        return f"{self.platform}:try:{delivery_id}"

    async def begin(self, delivery_id: str) -> bool:
        """True when an earlier attempt may have posted ``delivery_id``; otherwise record
        (committed) that one is about to, and return False."""
        key = self.key(delivery_id)
        async with self.uow() as uow:
            if await uow.state.get(key) == "1":
                return True
            await uow.state.put(key, "1", self.now())
            await uow.commit()
        return False

    async def not_sent(self, delivery_id: str) -> None:
        """The platform clearly refused the post: the next attempt need not search."""
        async with self.uow() as uow:
            await uow.state.put(self.key(delivery_id), "0", self.now())
            await uow.commit()
