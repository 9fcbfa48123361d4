"""Delivering the outbox: lease, post through the platform's gateway, mark done or back off.

Per-room order holds: a round leases a room's oldest pending entries (up to ``per_room``) and
delivers them one after another while rooms proceed side by side; after one that did not go
out, the rest are handed back. An entry is marked done only after its gateway confirmed; a
crash in between leaves it leased, and it is tried again with the same ``delivery_id``.

A delivered post costs one transaction of its own, the record of its outcome: the claim (one
per round) leases the entries, and a gateway needs no committed marker before it sends. An
entry whose earlier attempt may have been posted — it failed with an unknown outcome (lost
answer, 5xx), or its lease was never settled (a crash) — is ``in_doubt`` in SQL and reaches the
gateway with ``Delivery.in_doubt`` set, and the gateway looks for the earlier copy before
posting again; a clear refusal (``DeliveryError.not_sent``) and a hand-back clear the doubt.

While ``run()`` delivers, a command's posts do not wait for a round: the desk leases them in
the command's own transaction (``claim_in``: the same claim, limited to the command's rooms, so
a room busy in a round gets nothing and its post follows in order) and they go out right after
its commit, in a round of their own — a reply costs the command's transaction and the record
of its delivery, nothing else.

A shutdown (``halt`` then ``finish``) starts nothing new: a room's round stops before its next
entry and hands the rest back at once, a delivery in flight gets until the deadline and is
then cancelled and handed back, and every lease left is released, so a replica or the next
start takes over at once; nothing is drained that another process could deliver.

Leases are short (``RetryPolicy.lease_seconds``, 8 s) and name their owner, this process's
instance id; a heartbeat renews them every ``renew_seconds`` (2.5 s) while their deliveries are in
flight. A process that dies stops renewing, so another takes its rows within one lease; and
``reclaim()`` (run at start, and every ``reclaim_seconds`` where other processes may die
beside this one: PostgreSQL) hands back at once the leases whose owner is known to be gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Collection, Coroutine, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from liaisonbot.service.ports import (
    ChatGateway,
    Clock,
    Delivery,
    DeliveryError,
    NullTelemetry,
    OutboxItem,
    Receipt,
    Telemetry,
    ThreadLink,
    UnitOfWork,
    UnitOfWorkFactory,
)

log = logging.getLogger(__name__)


async def _uncancellable(work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` to its end even if the caller is cancelled meanwhile (then re-raise)."""
    task = asyncio.ensure_future(work)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True
    task.result()
    if cancelled:
        raise asyncio.CancelledError


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 2.0
    cap_seconds: float = 900.0
    max_attempts: int = 15
    #: How long a lease lasts without renewal; a dead process's rows wait at most this long.
    lease_seconds: float = 8.0
    #: How often the heartbeat renews the leases of deliveries in flight.
    renew_seconds: float = 2.5

    def delay(self, attempts: int) -> float:
        return min(self.cap_seconds, self.base_seconds * 2 ** max(attempts - 1, 0))


#: A round's thread links by request id, read with its claim and kept up to date as its cards
#: go out (no read transaction per post).
_Links = dict[int, list[ThreadLink]]


@dataclass(frozen=True)
class _Round:
    items: list[OutboxItem]
    links: _Links


class OutboxWorker:
    """Delivers pending posts. ``wake()`` after queueing; ``run()`` until ``stop`` is set."""

    def __init__(self, *, uow: UnitOfWorkFactory, gateways: Mapping[str, ChatGateway],
                 clock: Clock, retry: RetryPolicy | None = None, batch: int = 20,
                 telemetry: Telemetry | None = None, owner: str | None = None,
                 per_room: int = 20) -> None:
        self.uow = uow
        #: How many entries of one room a round leases (delivered one after the other).
        self.per_room = per_room
        #: ``run()`` is delivering: posts a command queues are then leased in the command's
        #: own transaction (``claim_in``) and delivered at once (``_direct`` rounds).
        self._live = False
        #: Those rounds, with the platform of their posts ("" when several).
        self._direct: dict[asyncio.Future[None], str] = {}
        #: The rounds ``run()`` is delivering (at most one).
        self._rounds: set[asyncio.Future[None]] = set()
        #: Shutting down: no new round, no next entry of a room (``halt``).
        self._halting = False
        #: A claim ran while commands' own rounds held rooms (it may have left their later
        #: posts): the round that ends wakes the worker to take them.
        self._deferred = False
        #: Who this worker's leases belong to: the process instance (``store.db.INSTANCE``).
        self.owner = owner or f"worker-{secrets.token_hex(6)}"
        self.telemetry = telemetry or NullTelemetry()
        self.gateways = gateways
        self.clock = clock
        self.retry = retry or RetryPolicy()
        #: Entries per round in all: 20 keeps a morning of digests (each carrying its office's
        #: cards) from holding ~10 MB at once; posts/s was the same with 50 (bench_outbox).
        self.batch = batch
        self._wake = asyncio.Event()
        #: Platforms whose posts this process must not deliver now (e.g. Matrix on a replica
        #: that does not lead: its client is not running).
        self.paused: set[str] = set()
        #: Entries this worker has leased and not yet settled (done, retry, failed, released).
        self._held: set[int] = set()
        self.delivered = 0
        #: Supervision hooks (``runner``): told of each failed round (returning how long to
        #: back off) and of each round that went through.
        self.on_failure: Callable[[Exception], float] | None = None
        self.on_success: Callable[[], None] | None = None
        #: How often ``run()`` hands back the leases of processes that are gone (None: only
        #: at start, as on SQLite, where this process is the only one).
        self.reclaim_seconds: float | None = None
        self._next_reclaim = 0.0

    def wake(self) -> None:
        self._wake.set()

    async def _lease(self, uow: UnitOfWork, rooms: Collection[str] | None = None) -> _Round:
        """Lease a round in ``uow``'s transaction (of ``rooms`` only, when given), with the
        thread links of its requests."""
        if self._direct:
            self._deferred = True
        items = await uow.outbox.claim(self.clock.now(), self.batch, self.retry.lease_seconds,
                                       self.paused, owner=self.owner, per_room=self.per_room,
                                       rooms=rooms)
        request_ids = sorted({i.request_id for i in items if i.request_id is not None})
        links = await uow.threads.for_requests(request_ids) if request_ids else {}
        return _Round(items, {rid: links.get(rid, []) for rid in request_ids})

    async def _claim(self) -> _Round:
        async with self.uow() as uow:
            leased = await self._lease(uow)
            await uow.commit()
        self._held.update(item.id for item in leased.items)
        return leased

    async def claim_in(self, uow: UnitOfWork,
                       rooms: Collection[str]) -> Callable[[], None] | None:
        """Lease, inside the caller's own transaction, the due entries of ``rooms`` (the posts
        it just queued, after any older ones of those rooms still pending there). Returns what
        to call once the caller has committed: it delivers them at once, with no claim
        transaction and no wait for the next round. None while ``run()`` is not delivering
        (the console and tests drain instead): the caller then just wakes the worker."""
        if not self._live or self._halting or not rooms:
            return None
        leased = await self._lease(uow, rooms)
        return lambda: self._deliver_leased(leased)

    async def sent(self, platform: str, timeout: float) -> None:  # noqa: ASYNC109
        """Wait (up to ``timeout`` seconds) for the commands' own rounds of ``platform`` now
        in flight: a chat loop calls it before it asks its server for more, so the server
        takes the reply before the next long poll (as a bot that answers in line would)."""
        rounds = [task for task, room_platform in self._direct.items() if room_platform == platform]
        if rounds:
            await asyncio.wait(rounds, timeout=timeout)

    def _deliver_leased(self, leased: _Round) -> None:
        if not leased.items:  # those rooms are busy in a round: the worker takes them next
            self._deferred = True
            self.wake()
            return
        self._held.update(item.id for item in leased.items)
        task = asyncio.ensure_future(self._round(leased))
        platforms = {item.platform for item in leased.items}
        self._direct[task] = platforms.pop() if len(platforms) == 1 else ""
        task.add_done_callback(self._direct_done)

    def _direct_done(self, task: asyncio.Future[None]) -> None:
        self._direct.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("outbox delivery of a command's posts failed",
                      exc_info=task.exception())
        if self._deferred:  # what queued behind this round's rooms meanwhile
            self._deferred = False
            self.wake()

    async def _round(self, leased: _Round) -> None:
        """Deliver a round: rooms in parallel, each room's entries in order."""
        rooms: dict[str, list[OutboxItem]] = {}
        for item in leased.items:
            rooms.setdefault(item.room, []).append(item)
        if len(rooms) == 1:  # a reply: no task of its own, it starts at once
            await self._deliver_room(leased.items, leased.links)
            return
        await asyncio.gather(*(self._deliver_room(run, leased.links) for run in rooms.values()))

    async def _deliver_room(self, run: list[OutboxItem], links: _Links) -> None:
        """One room's leased entries, in order; after one that did not go out, the rest are
        handed back at once (they go after it), and so are the ones not started when a
        shutdown halts the worker."""
        for number, item in enumerate(run):
            if self._halting:
                await self._hand_back(run[number:])
                return
            try:
                delivered = await self._deliver(item, links)
            except asyncio.CancelledError:
                await _uncancellable(self._hand_back(run[number + 1:]))
                raise
            if not delivered:
                await self._hand_back(run[number + 1:])
                return

    async def _hand_back(self, items: list[OutboxItem]) -> None:
        if not items:
            return
        async with self.uow() as uow:
            await uow.outbox.release([item.id for item in items], self.clock.now())
            await uow.commit()
        self._held.difference_update(item.id for item in items)

    async def reclaim(self) -> list[int]:
        """Hand back the leases of processes that are gone (at start: what this process held
        before a crash, or a dead replica's); their rows go out at the next round."""
        async with self.uow() as uow:
            released = await uow.outbox.release_dead(self.owner, self.clock.now())
            await uow.commit()
        if released:
            log.warning("reclaimed leases of a process that is gone",
                        extra={"outbox_ids": released})
            self.wake()
        return released

    async def renew_held(self) -> int:
        """Extend the leases of the deliveries in flight (the heartbeat's beat)."""
        held = sorted(self._held)
        if not held:
            return 0
        until = self.clock.now() + timedelta(seconds=self.retry.lease_seconds)
        async with self.uow() as uow:
            renewed = await uow.outbox.renew(held, self.owner, until)
            await uow.commit()
        return renewed

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.retry.renew_seconds)
            if stop.is_set():
                break
            try:
                await self.renew_held()
            except Exception:  # the next beat tries again; the lease has room for two misses
                log.exception("renewing outbox leases failed")

    @contextlib.asynccontextmanager
    async def _heartbeating(self) -> AsyncIterator[None]:
        stop = asyncio.Event()
        beat = asyncio.create_task(self._heartbeat(stop), name="outbox-heartbeat")
        try:
            yield
        finally:
            stop.set()
            await beat

    async def run_once(self) -> int:
        """Lease one round (the head entries of each room) and deliver it; returns the count.
        A round leased as a shutdown began is handed back at once."""
        leased = await self._claim()
        if not leased.items:
            return 0
        if self._halting:
            await self._hand_back(leased.items)
            return 0
        task = asyncio.ensure_future(self._round(leased))
        self._rounds.add(task)
        task.add_done_callback(self._rounds.discard)
        await asyncio.wait({task})  # a shutdown may cancel the round, never this loop
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
        return len(leased.items)

    def halt(self) -> None:
        """Shutting down: from now on no round starts and no room starts its next entry (the
        rest is handed back at once); ``claim_in`` leases nothing."""
        self._halting = True

    async def finish(self, seconds: float) -> None:
        """Shutting down (``halt``, then this): the deliveries in flight get up to ``seconds``
        to finish; then each is cancelled and handed back, and every lease this worker still
        holds is released. Nothing new is delivered: what is left goes out from a replica or
        the next start."""
        self.halt()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        async with self._heartbeating():
            while self._direct or self._rounds:
                if not await self._settle(set(self._direct) | set(self._rounds), deadline):
                    break
        await self.release_held()

    async def _settle(self, rounds: set[asyncio.Future[None]], deadline: float) -> bool:
        """Wait for ``rounds`` until ``deadline``; cancel what is left (each unfinished entry
        is handed back). True when all finished."""
        loop = asyncio.get_running_loop()
        _, pending = await asyncio.wait(rounds, timeout=max(deadline - loop.time(), 0))
        for round_ in pending:
            log.info("shutdown: handing back unfinished deliveries")
            round_.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await round_
        return not pending

    async def drain(self, max_rounds: int = 10_000) -> int:
        """Deliver until nothing is due now (the console and tests use this)."""
        total = 0
        for _ in range(max_rounds):
            count = await self.run_once()
            if count == 0:
                break
            total += count
        return total

    async def run(self, stop: asyncio.Event, *, idle_seconds: float = 1.0) -> None:
        try:
            await self.reclaim()
        except Exception:  # the leases then simply run out
            log.exception("reclaiming outbox leases failed")
        async with self._heartbeating():
            await self._run(stop, idle_seconds)

    async def _run(self, stop: asyncio.Event, idle_seconds: float) -> None:
        # The idle wait is on ``_wake`` alone (stopping sets it too): a post queued by the desk
        # starts the next round one loop step after ``wake()``, not after several.
        watch = asyncio.ensure_future(self._wake_on(stop))
        self._live = True
        try:
            await self._rounds_until(stop, idle_seconds)
        finally:
            self._live = False
            watch.cancel()

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._wake.set()

    async def _rounds_until(self, stop: asyncio.Event, idle_seconds: float) -> None:
        loop = asyncio.get_running_loop()
        self._next_reclaim = loop.time() + (self.reclaim_seconds or 0.0)
        while not stop.is_set() and not self._halting:
            wait = idle_seconds
            self._wake.clear()  # a wake() from here on (posts queued meanwhile) is kept
            try:
                if self.reclaim_seconds is not None and loop.time() >= self._next_reclaim:
                    self._next_reclaim = loop.time() + self.reclaim_seconds
                    await self.reclaim()  # a replica that died: its posts, now
                count = await self.run_once()
            except Exception as error:  # the worker must outlive a database hiccup
                count = 0
                if self.on_failure is None:
                    log.exception("outbox round failed")
                else:  # logged there; back off as told, without waking early
                    wait = self.on_failure(error)
                    await self._pause(stop, wait)
                    continue
            else:
                if self.on_success is not None:
                    self.on_success()
            if count or stop.is_set() or self._halting:
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    @staticmethod
    async def _pause(stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)

    async def _deliver(self, item: OutboxItem, links: _Links) -> bool:
        """Deliver one entry; True when it went out."""
        gateway = self.gateways.get(item.platform)
        try:
            if gateway is None:
                raise DeliveryError(f"no gateway for {item.platform}", permanent=True)
            delivery = await self._delivery(item, links)
            receipt = await gateway.deliver(delivery)
        except asyncio.CancelledError:
            # Shutting down mid-delivery: hand the entry back now rather than at lease end
            # (the gateway's delivery id keeps a half-done post from doubling).
            await _uncancellable(self._release(item))
            raise
        except DeliveryError as error:
            await self._failed(item, error)
            return False
        except Exception as error:  # a gateway bug must not lose the post
            log.exception("delivery %s to %s crashed", item.id, item.room)
            await self._failed(item, DeliveryError(f"{type(error).__name__}: {error}"))
            return False
        # It is posted: record that even if shutdown cancels us meanwhile.
        await _uncancellable(self._done(item, receipt, links))
        return True

    async def _delivery(self, item: OutboxItem, links: _Links) -> Delivery:
        thread = None
        related: list[ThreadLink] = []
        target = None
        if item.request_id is not None:
            cached = links.get(item.request_id)
            source = item.post.extra.get("target")
            if cached is None or (item.post.kind in ("relay_edit", "relay_delete") and source):
                async with self.uow(read_only=True) as uow:
                    related = await uow.threads.for_request(item.request_id)
                    if source and item.post.kind in ("relay_edit", "relay_delete"):
                        # Per-room order: the relay copy went out (or failed) before this.
                        target = await uow.outbox.relay_copy(item.request_id, item.room,
                                                             str(source))
            else:
                related = list(cached)
            thread = next((link for link in related if link.room == item.room), None)
        return Delivery(delivery_id=f"lb-{item.id}", room=item.room, post=item.post,
                        thread=thread, related=related, target_ref=target,
                        in_doubt=item.in_doubt)

    async def _done(self, item: OutboxItem, receipt: Receipt, links: _Links) -> None:
        now = self.clock.now()
        async with self.uow() as uow:
            await uow.outbox.done(item.id, receipt.message_ref, now)
            link = None
            if item.post.kind == "card" and item.request_id is not None:
                link = ThreadLink(item.request_id, item.room, receipt.message_ref,
                                  receipt.message_ref)
                await uow.threads.add(link, now)
            await uow.commit()
        if link is not None and item.request_id in links:
            links[item.request_id].append(link)
        self._held.discard(item.id)
        self.delivered += 1
        latency = (now - item.created_at).total_seconds()
        self.telemetry.delivery(item.platform, "ok", latency)
        log.info("delivered", extra={"outbox_id": item.id, "room": item.room,
                                     "platform": item.platform, "request": item.request_id,
                                     "kind": item.post.kind,
                                     "latency_s": (now - item.created_at).total_seconds()})

    async def _release(self, item: OutboxItem) -> None:
        log.info("delivery interrupted, handed back", extra={"outbox_id": item.id})
        async with self.uow() as uow:
            await uow.outbox.retry(item.id, "interrupted by shutdown", self.clock.now(),
                                   counted=False)
            await uow.commit()
        self._held.discard(item.id)

    async def release_held(self) -> None:
        """Hand back every entry this worker still leases (the last step of a shutdown)."""
        if not self._held:
            return
        held, now = sorted(self._held), self.clock.now()
        async with self.uow() as uow:
            for item_id in held:
                await uow.outbox.retry(item_id, "released at shutdown", now, counted=False)
            await uow.commit()
        self._held.clear()
        log.info("handed back leases at shutdown", extra={"outbox_ids": held})

    async def _failed(self, item: OutboxItem, error: DeliveryError) -> None:
        # A rate limit is the platform pacing us, not a failure: the attempt ``claim``
        # counted is given back, so only real failures bring a post nearer to failing.
        rate_limited = error.retry_after is not None and not error.permanent
        permanent = error.permanent or (not rate_limited
                                        and item.attempts >= self.retry.max_attempts)
        delay = error.retry_after if error.retry_after is not None else \
            self.retry.delay(item.attempts)
        async with self.uow() as uow:
            if permanent:
                await uow.outbox.fail(item.id, str(error))
            else:
                await uow.outbox.retry(item.id, str(error),
                                       self.clock.now() + timedelta(seconds=delay),
                                       counted=not rate_limited,
                                       # this attempt posted nothing, and none before it may
                                       # have (an entry in doubt stays so: the search that
                                       # came first is the only proof)
                                       not_sent=error.not_sent and not item.in_doubt)
            await uow.commit()
        self._held.discard(item.id)
        self.telemetry.delivery(item.platform, "failed" if permanent else "retry",
                                (self.clock.now() - item.created_at).total_seconds())
        log.warning("delivery failed", extra={"outbox_id": item.id, "room": item.room,
                                              "platform": item.platform, "error": str(error),
                                              "permanent": permanent, "retry_in_s": delay})
