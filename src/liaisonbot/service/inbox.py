"""Working the inbox: every acknowledged inbound thing is done exactly once, by some process.

A platform adapter verifies an inbound thing, writes it through :meth:`InboxWorker.admit`
(durable, leased to this process) *before* it acknowledges it, and after the acknowledgement
hands it to :meth:`InboxWorker.start`: its work begins at once, with no claim of its own. The
work runs in the platform's :class:`InboxHandler`; the unit of work that does it marks the row
done through the :class:`Ticket` it was given (``Desk``: ``settle=``), so the work's changes,
its posts (the reply included) and the done mark commit together. Work that changes nothing
(a replay, a message outside any thread, a form opened) is marked done on its own afterwards:
doing it twice would change nothing either.

Rows another process left behind (it died, or its lease ran out) are claimed every
``poll_seconds`` and at start (``reclaim``: the leases of owners that are gone are handed back
at once), in arrival order. Leases last ``lease_seconds`` and are renewed every
``renew_seconds`` for the rows this process holds, whether they wait for a lane or work.

Work that fails (the database is down) is tried again after a back-off, by whichever process
claims it then; after ``max_attempts`` the row is ``failed`` and logged. A shutdown
(:meth:`InboxWorker.stop`) hands back at once what has not started, gives the work already
running until the deadline, then cancels it (its transaction rolls back) and hands it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from liaisonbot.service.ports import (
    AlreadySettled,
    Clock,
    InboxDoor,
    InboxEntry,
    InboxItem,
    UnitOfWork,
    UnitOfWorkFactory,
)

log = logging.getLogger(__name__)


@dataclass
class Ticket:
    """Marks one inbox row done inside the unit of work that does its work (the desk calls
    :meth:`settle_in` before its commit and sets ``settled`` after it)."""

    item: InboxItem
    clock: Clock
    settled: bool = False

    async def settle_in(self, uow: UnitOfWork) -> None:
        await uow.inbox.done(self.item.id, self.clock.now())


class InboxHandler(Protocol):
    """A platform's work for its inbox rows."""

    def lane(self, item: InboxItem) -> AbstractAsyncContextManager[None]:
        """Where the work waits its turn (a bounded lane behind pending acknowledgements); a
        thing that cannot wait (a form whose trigger expires) gets a context that does not."""

    async def work(self, item: InboxItem, ticket: Ticket) -> None:
        """Do the row's work; the unit of work that changes something settles ``ticket``."""


@dataclass(frozen=True)
class InboxPolicy:
    #: How long a lease lasts without renewal: a dead process's rows wait at most this long
    #: for a replica (on PostgreSQL much less: an owner with no connection is known gone).
    lease_seconds: float = 8.0
    renew_seconds: float = 2.5
    #: How often rows left by others are looked for.
    poll_seconds: float = 1.0
    #: Rows claimed at once (the rest wait for the next poll).
    batch: int = 20
    max_attempts: int = 8
    base_seconds: float = 2.0
    cap_seconds: float = 300.0

    def delay(self, attempts: int) -> float:
        return min(self.cap_seconds, self.base_seconds * 2 ** max(attempts - 1, 0))


@dataclass
class _Held:
    item: InboxItem
    task: asyncio.Task[None] | None = None
    running: bool = False


class InboxWorker:
    """This process's share of the inbox (see the module's docstring)."""

    def __init__(self, *, uow: UnitOfWorkFactory, door: InboxDoor, clock: Clock,
                 owner: str, policy: InboxPolicy | None = None) -> None:
        self.uow = uow
        self.door = door
        self.clock = clock
        self.owner = owner
        self.policy = policy or InboxPolicy()
        self.handlers: dict[str, InboxHandler] = {}
        #: Rows this process holds (waiting for a lane or working), by id.
        self._held: dict[int, _Held] = {}
        self._stopping = False
        self._wake = asyncio.Event()
        #: Rows started since the loop's last turn, and the call that makes their tasks.
        self._waiting: list[_Held] = []
        self._starting: asyncio.TimerHandle | None = None
        self.done = 0
        self.failures = 0
        #: Supervision hooks (``runner``): told when looking for rows fails (returning how
        #: long to back off) and when it works again. A row whose work fails is not a failure
        #: of the process (it is retried, and given up after ``max_attempts``).
        self.on_failure: Callable[[Exception], float] | None = None
        self.on_success: Callable[[], None] | None = None

    def handle(self, platform: str, handler: InboxHandler) -> None:
        """Work ``platform``'s rows with ``handler`` (a platform registers itself)."""
        self.handlers[platform] = handler

    @property
    def busy(self) -> bool:
        """Rows of this process are waiting or working."""
        return bool(self._held)

    # ------------------------------------------------------------------ the door

    async def admit(self, entry: InboxEntry) -> InboxItem | None:
        """Write ``entry`` durably, leased to this process; None for a thing seen before. The
        caller acknowledges it after this returns, then calls :meth:`start`."""
        now = self.clock.now()
        return await self.door.admit(entry, now=now,
                                     until=now + timedelta(seconds=self.policy.lease_seconds))

    def start(self, item: InboxItem) -> None:
        """Work ``item`` now (after its acknowledgement); while stopping, hand it back. Its
        task is made on the loop's next turn, after the I/O already waiting (the answers of a
        burst leave before its work is even set up)."""
        held = self._held.setdefault(item.id, _Held(item))
        if self._starting is None:
            self._starting = asyncio.get_running_loop().call_later(0, self._start_waiting)
        self._waiting.append(held)

    def _start_waiting(self) -> None:
        self._starting = None
        waiting, self._waiting = self._waiting, []
        for held in waiting:
            if held.task is None:
                held.task = asyncio.ensure_future(self._work(held))

    # ------------------------------------------------------------------ the work

    async def _work(self, held: _Held) -> None:
        item = held.item
        handler = self.handlers.get(item.platform)
        try:
            if handler is None or self._stopping:
                await self._release([item.id])
                return
            ticket = Ticket(item, self.clock)
            async with handler.lane(item):
                if self._stopping:  # its turn came while stopping: another process does it
                    await self._release([item.id])
                    return
                held.running = True
                await handler.work(item, ticket)
            if not ticket.settled:
                await self._settle_alone(ticket)
            self.done += 1
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._release([item.id]))
            raise
        except AlreadySettled:
            log.info("inbox row done by another process", extra={"inbox_id": item.id})
        except Exception as error:
            await self._failed(item, error)
        finally:
            self._held.pop(item.id, None)

    async def _settle_alone(self, ticket: Ticket) -> None:
        async with self.uow() as uow:
            await ticket.settle_in(uow)
            await uow.commit()
        ticket.settled = True

    async def _failed(self, item: InboxItem, error: Exception) -> None:
        self.failures += 1
        give_up = item.attempts >= self.policy.max_attempts
        delay = self.policy.delay(item.attempts)
        log.error("inbox work failed", exc_info=error, extra={
            "inbox_id": item.id, "platform": item.platform, "kind": item.kind,
            "attempts": item.attempts, "given_up": give_up, "retry_in_s": delay})
        try:
            async with self.uow() as uow:
                await uow.inbox.retry(item.id, f"{type(error).__name__}: {error}",
                                      self.clock.now() + timedelta(seconds=delay),
                                      give_up=give_up)
                await uow.commit()
        except Exception:  # its lease runs out: another try then
            log.exception("recording a failed inbox row failed", extra={"inbox_id": item.id})

    async def _release(self, ids: list[int]) -> None:
        if not ids:
            return
        async with self.uow() as uow:
            await uow.inbox.release(ids)
            await uow.commit()
        for item_id in ids:
            self._held.pop(item_id, None)

    # ------------------------------------------------------------------ others' rows

    async def reclaim(self) -> list[int]:
        """Hand back the rows of processes that are gone (at start)."""
        async with self.uow() as uow:
            released = await uow.inbox.release_dead(self.owner, self.clock.now())
            await uow.commit()
        if released:
            log.warning("took over inbox rows of a process that is gone",
                        extra={"inbox_ids": released})
        return released

    async def claim_once(self) -> int:
        """Claim and start rows nobody holds; returns how many."""
        room = self.policy.batch - sum(1 for h in self._held.values() if not h.running)
        if self._stopping or room <= 0 or not self.handlers:
            return 0
        async with self.uow(read_only=True) as uow:  # most polls find nothing: no write
            if not await uow.inbox.claimable(self.clock.now(), self.handlers):
                return 0
        async with self.uow() as uow:
            items = await uow.inbox.claim(self.clock.now(), owner=self.owner, limit=room,
                                          lease_seconds=self.policy.lease_seconds,
                                          platforms=self.handlers)
            await uow.commit()
        for item in items:
            self.start(item)
        return len(items)

    async def renew_held(self) -> int:
        held = sorted(self._held)
        if not held:
            return 0
        until = self.clock.now() + timedelta(seconds=self.policy.lease_seconds)
        async with self.uow() as uow:
            renewed = await uow.inbox.renew(held, self.owner, until)
            await uow.commit()
        return renewed

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``: renew this process's leases, and take rows others left."""
        try:
            await self.reclaim()
        except Exception:  # their leases then simply run out
            log.exception("reclaiming inbox rows failed")
        beat = asyncio.ensure_future(self._heartbeat(stop))
        try:
            while not stop.is_set() and not self._stopping:
                wait = self.policy.poll_seconds
                try:
                    claimed = await self.claim_once()
                except Exception as error:
                    claimed = 0
                    if self.on_failure is None:
                        log.exception("claiming inbox rows failed")
                    else:  # logged there
                        wait = self.on_failure(error)
                else:
                    if self.on_success is not None:
                        self.on_success()
                if claimed:
                    continue
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await _first(stop, self._wake)
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.policy.renew_seconds)
            if stop.is_set():
                break
            try:
                await self.renew_held()
            except Exception:  # the next beat tries again; the lease has room for two
                log.exception("renewing inbox leases failed")

    # ------------------------------------------------------------------ shutdown

    async def stop(self, seconds: float) -> list[int]:
        """Stop taking work: rows not started are handed back at once, work running gets up
        to ``seconds`` to finish, then is cancelled (its transaction rolls back) and handed
        back. Returns the ids handed back."""
        self._stopping = True
        self._wake.set()
        if self._starting is not None:  # their tasks hand them back at once
            self._starting.cancel()
            self._start_waiting()
        waiting = [h for h in self._held.values() if not h.running]
        handed = [h.item.id for h in waiting]
        for held in waiting:
            if held.task is not None:
                held.task.cancel()
        await _settled([h.task for h in waiting if h.task is not None], None)
        running = {h.task: h.item.id for h in self._held.values() if h.task is not None}
        pending = await _settled(set(running), seconds)
        for task in pending:
            task.cancel()
            handed.append(running[task])
        await _settled(pending, None)
        left = sorted(self._held)
        if left:  # never started (admitted while stopping, a task that never ran)
            with contextlib.suppress(Exception):
                await self._release(left)
            handed += left
        return sorted(set(handed))


async def _settled(tasks: list[asyncio.Task[None]] | set[asyncio.Task[None]],
                   seconds: float | None) -> set[asyncio.Task[None]]:
    """Wait for ``tasks`` (up to ``seconds``); the ones still running."""
    tasks = {t for t in tasks if not t.done()}
    if not tasks:
        return set()
    done, pending = await asyncio.wait(tasks, timeout=seconds)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            log.debug("inbox task ended with an error", exc_info=task.exception())
    return pending


async def _first(*events: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


__all__ = ["InboxHandler", "InboxPolicy", "InboxWorker", "Ticket"]

