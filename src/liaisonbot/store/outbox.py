"""The outbox: posts queued in the transaction that decided them, leased and delivered by
``service.outbox``; each room's entries in order, each delivered once."""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Table,
    and_,
    bindparam,
    case,
    column,
    func,
    insert,
    or_,
    select,
    text,
    update,
)

from liaisonbot.domain.cards import Post
from liaisonbot.service.ports import OutboxDraft, OutboxItem
from liaisonbot.store.repo import Repo
from liaisonbot.store.tables import OutboxRow

O: Table = OutboxRow.__table__  # type: ignore[attr-defined]  # noqa: E741


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
        func.sum(case((ready, 0), else_=1)).over(partition_by=O.c.room,
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
        in_doubt=case((O.c.lease_until.is_not(None), True), else_=O.c.in_doubt))


#: PostgreSQL's lease of the rows its ranked read locked (ids, owner, until).
_LEASE = _lease(O.c.id.in_(bindparam("ids", expanding=True)))


#: An attempt handed back uncounted.
_UNCOUNT = case((O.c.attempts > 0, O.c.attempts - 1), else_=0)


_INSERT = insert(O)


def _pending(platform: str, room: str, post: Post, request_id: int | None,
             at: datetime) -> dict[str, Any]:
    """A new entry's row: pending, due at ``at``."""
    return {"platform": platform, "room": room, "post": post.to_json(),
            "request_id": request_id, "status": "pending", "attempts": 0, "in_doubt": False,
            "created_at": at, "next_attempt_at": at}


class SqlOutbox(Repo):
    async def add(self, *, platform: str, room: str, post: Post, request_id: int | None,
                  at: datetime) -> int:
        result = await self.run(insert(O).returning(O.c.id),
                                _pending(platform, room, post, request_id, at))
        return int(result.scalar_one())

    async def add_many(self, drafts: Sequence[OutboxDraft]) -> None:
        """Queue posts, pending and due at once: one ``executemany``."""
        if drafts:
            await self.run(_INSERT, [_pending(d.platform, d.room, d.post, d.request_id, d.at)
                                     for d in drafts])

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
            rows = sorted((await self.run(
                query, {**params, "until": until, "owner": owner})).all(), key=lambda r: r.id)
            started: set[str] = set()  # a room's lowest id here is its first pending entry
            out = []
            for r in rows:
                out.append(item(r, r.attempts, bool(r.in_doubt), r.room not in started))
                started.add(r.room)
            return out
        leased: list[Any] = []
        seen: dict[str, int] = {}
        for row in (await self.run(query, params)).all():
            # Another replica may hold a room's first rows (skipped locked): then none of
            # that room's later rows may go out here, only an unbroken run from its first.
            if row.rn == seen.get(row.room, 0) + 1:
                seen[row.room] = row.rn
                leased.append(row)
        if leased:
            await self.run(_LEASE, {"ids": [r.id for r in leased], "owner": owner,
                                             "until": until})
        return [item(r, r.attempts + 1, bool(r.in_doubt) or r.lease_until is not None,
                     r.rn == 1) for r in leased]

    async def release(self, item_ids: Sequence[int], at: datetime) -> None:
        """Hand back leased entries not attempted (a room's later entries after an earlier
        one failed): due again at ``at``, their counted attempt given back, not in doubt.
        One statement."""
        if item_ids:
            await self.run(update(O).where(O.c.id.in_(list(item_ids))).values(
                next_attempt_at=at, lease_until=None, lease_owner=None, in_doubt=False,
                attempts=_UNCOUNT))

    async def renew(self, item_ids: Sequence[int], owner: str, until: datetime) -> int:
        """Extend ``owner``'s leases on ``item_ids`` (a heartbeat while they are in flight);
        a lease another process took over meanwhile is left alone. Returns how many."""
        if not item_ids:
            return 0
        result = await self.run(update(O).where(
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
        if self.sqlite:
            dead = or_(O.c.lease_owner.is_(None), O.c.lease_owner != owner)
        else:
            alive: Any = (select(column("application_name")).select_from(text("pg_stat_activity"))
                     .where(text("application_name IS NOT NULL")))
            dead = and_(O.c.lease_owner.is_not(None), O.c.lease_owner != owner,
                        O.c.lease_owner.not_in(alive))
        result = await self.run(update(O).where(held, dead).values(
            lease_until=None, lease_owner=None, in_doubt=True).returning(O.c.id))
        return sorted(int(row[0]) for row in result)

    async def done(self, item_id: int, message_ref: str, at: datetime) -> None:
        await self.run(update(O).where(O.c.id == item_id).values(
            status="done", delivered_at=at, message_ref=message_ref, lease_until=None,
            lease_owner=None, last_error=None))

    async def retry(self, item_id: int, error: str, at: datetime, *,
                    counted: bool = True, not_sent: bool = False) -> None:
        """Back off until ``at``. ``counted=False`` hands back the attempt ``claim`` counted
        (a rate limit or a shutdown is not a failure of the post); ``not_sent`` clears the
        doubt (the platform's answer proved nothing was posted)."""
        values: dict[str, Any] = {"next_attempt_at": at, "lease_until": None,
                                  "lease_owner": None, "last_error": error[:500],
                                  "in_doubt": not not_sent}
        if not counted:
            values["attempts"] = _UNCOUNT
        await self.run(update(O).where(O.c.id == item_id).values(values))

    async def fail(self, item_id: int, error: str) -> None:
        await self.run(update(O).where(O.c.id == item_id).values(
            status="failed", lease_until=None, lease_owner=None, last_error=error[:500]))

    async def backlog(self) -> int:
        return int((await self.run(
            select(func.count()).select_from(O).where(O.c.status == "pending"))).scalar_one())

    async def next_attempt_after(self, moment: datetime) -> datetime | None:
        return (await self.run(select(func.min(O.c.next_attempt_at)).where(
            O.c.status == "pending", O.c.next_attempt_at > moment))).scalar()

    async def relay_copy(self, request_id: int, room: str, source_ref: str) -> str | None:
        """The message ref of the delivered ``relay`` post of ``source_ref`` in ``room`` (the
        request's outbox rows are few; ``request_id`` is indexed, the JSON is read here)."""
        needle = json.dumps(source_ref, ensure_ascii=False)
        rows = await self.run(select(O.c.post, O.c.message_ref).where(
            O.c.request_id == request_id, O.c.room == room, O.c.status == "done",
            O.c.post.contains(needle, autoescape=True)).order_by(O.c.id))
        for row in rows:
            post = Post.from_json(row.post)
            if post.kind == "relay" and post.source_ref == source_ref and row.message_ref:
                return str(row.message_ref)
        return None
