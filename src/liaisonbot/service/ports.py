"""The ports the service layer talks through: clock, unit of work, chat gateways."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from liaisonbot.domain.audit import Entry, Seal
from liaisonbot.domain.cards import Post
from liaisonbot.domain.checkpoint import Leaf
from liaisonbot.domain.forwarding import Former
from liaisonbot.domain.model import Request


class Clock(Protocol):
    """Where every "now" comes from."""

    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock the console and the tests set and move."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment.astimezone(UTC)


class Telemetry(Protocol):
    """Where the service layer reports counts (Prometheus in production, nothing in tests)."""

    def command(self, verb: str, platform: str, outcome: str) -> None: ...
    def delivery(self, platform: str, outcome: str, latency_s: float) -> None: ...


class NullTelemetry:
    def command(self, verb: str, platform: str, outcome: str) -> None:
        pass

    def delivery(self, platform: str, outcome: str, latency_s: float) -> None:
        pass


class Conflict(Exception):
    """The row changed since it was read; the command lost a race."""


class AlreadySettled(Exception):
    """The inbox row a unit of work was to mark done was done by another process meanwhile
    (its lease ran out while this one worked): nothing of this unit of work may be kept."""


@dataclass(frozen=True)
class ThreadLink:
    """Where a request's card sits in one room."""

    request_id: int
    room: str
    message_ref: str
    thread_root: str


@dataclass(frozen=True)
class HistoryDraft:
    """A history entry to append (the repository seals it into the chain)."""

    request_id: int | None
    at: datetime
    actor: str
    platform: str
    action: str
    detail: dict[str, Any]
    #: The request's sealed state after the change (``domain.audit.state_hash``).
    state: str | None = None


@dataclass(frozen=True)
class OutboxDraft:
    """A post to queue."""

    platform: str
    room: str
    post: Post
    request_id: int | None
    at: datetime


@dataclass(frozen=True)
class HistoryItem:
    entry: Entry
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class OutboxItem:
    id: int
    platform: str
    room: str
    request_id: int | None
    post: Post
    attempts: int
    created_at: datetime
    #: An earlier attempt may have reached the platform (see ``Delivery.in_doubt``).
    in_doubt: bool = False


@dataclass(frozen=True)
class InboxEntry:
    """A verified inbound thing, as the door writes it before acknowledging it."""

    platform: str
    #: Its identity on the platform: a retry of the same thing has the same key.
    key: str
    kind: str
    room: str | None
    #: What its work needs, as JSON (never a secret).
    payload: str


@dataclass(frozen=True)
class InboxItem:
    """An inbox row leased to this process."""

    id: int
    platform: str
    key: str
    kind: str
    room: str | None
    payload: str
    attempts: int
    received_at: datetime


class InboxDoor(Protocol):
    """Writes inbound things durably before they are acknowledged."""

    async def admit(self, entry: InboxEntry, *, now: datetime,
                    until: datetime) -> InboxItem | None:
        """Commit ``entry`` as a pending row leased to this process until ``until``; None
        when a row of the same key exists (a retry: acknowledge it, do nothing)."""


class RequestRepository(Protocol):
    async def add(self, request: Request) -> int: ...
    async def get(self, request_id: int) -> Request | None: ...
    async def update(self, request: Request) -> None:
        """Write ``request`` back; raises ``Conflict`` if its version moved meanwhile."""
    async def for_case(self, case: str, office: str) -> list[Request]: ...
    async def overdue(self, office: str, now: datetime) -> list[Request]: ...
    async def pending_for(self, office: str) -> list[Request]: ...
    async def overdue_counts(self, now: datetime) -> dict[str, int]: ...
    async def party_to(self, office: str) -> list[Request]: ...
    async def incomplete_for(self, office: str) -> list[Request]:
        """Requests ``office`` is party to that wait for completion (status incomplete)."""
    async def claim_nudges(self, now: datetime, limit: int) -> list[Request]:
        """Requests whose ``next_nudge_at`` has come, locked for this transaction."""
    async def update_nudges(self, requests: Sequence[Request]) -> None:
        """Write back the nudge counters and ``next_nudge_at`` of claimed (locked) requests."""
    async def all_for_case(self, case: str) -> list[Request]: ...
    async def held_for(self, office: str) -> list[Request]:
        """Requests ``office`` is party to that are postponed or consulting."""
    async def parallels(self, request: Request) -> list[Request]:
        """The requests opened with ``request`` (``to:A,B``), itself among them, by id."""
    async def postponements_due(self, now: datetime, limit: int) -> list[Request]:
        """Postponed requests whose date has come, locked for this transaction."""
    async def next_nudge_after(self, moment: datetime) -> datetime | None: ...


class FormerPartyRepository(Protocol):
    """Offices a request was forwarded away from (``domain.forwarding``)."""

    async def add(self, request: Request, *, office: str, to: str, upto: int,
                  at: datetime) -> None: ...
    async def get(self, request_id: int, office: str) -> Former | None: ...
    async def for_case(self, case: str, office: str) -> list[Former]: ...
    async def for_office(self, office: str) -> list[Former]: ...


class HistoryRepository(Protocol):
    async def append(self, *, request_id: int | None, at: datetime, actor: str, platform: str,
                     action: str, detail: dict[str, Any], state: str | None = None) -> None: ...
    async def append_many(self, drafts: Sequence[HistoryDraft]) -> None: ...
    async def for_request(self, request_id: int) -> list[Entry]: ...
    async def for_requests(self, request_ids: Sequence[int],
                           actions: Collection[str] | None = None) -> dict[int, list[Entry]]:
        ...
    async def for_office(self, office: str,
                         actions: Collection[str] | None = None) -> dict[int, list[Entry]]: ...
    async def chain(self) -> list[HistoryItem]: ...
    async def head(self) -> tuple[int, str] | None: ...
    async def seal(self) -> Seal: ...
    async def tails(self) -> dict[int, str]: ...
    async def requests(self) -> list[Request]: ...
    async def leaves(self, upto: int | None = None) -> tuple[int, list[Leaf]]: ...


class OutboxRepository(Protocol):
    async def add(self, *, platform: str, room: str, post: Post, request_id: int | None,
                  at: datetime) -> int: ...
    async def add_many(self, drafts: Sequence[OutboxDraft]) -> None: ...
    async def claim(self, now: datetime, limit: int, lease_seconds: float,
                    skip_platforms: Collection[str] = (), *,
                    owner: str | None = None, per_room: int = 1,
                    rooms: Collection[str] | None = None) -> list[OutboxItem]:
        """Lease each room's oldest due entries (of ``rooms`` only, when given)."""
    async def release(self, item_ids: Sequence[int], at: datetime) -> None: ...
    async def renew(self, item_ids: Sequence[int], owner: str, until: datetime) -> int:
        """Extend ``owner``'s leases on ``item_ids``; returns how many it still held."""
    async def release_dead(self, owner: str, now: datetime) -> list[int]:
        """Hand back the leases of processes that are gone (ids)."""
    async def done(self, item_id: int, message_ref: str, at: datetime) -> None: ...
    async def retry(self, item_id: int, error: str, at: datetime, *,
                    counted: bool = True, not_sent: bool = False) -> None:
        """Back off until ``at``; ``counted=False`` gives back the attempt ``claim`` counted;
        ``not_sent`` clears the entry's doubt (the platform proved nothing was posted)."""
    async def fail(self, item_id: int, error: str) -> None: ...
    async def backlog(self) -> int: ...
    async def next_attempt_after(self, moment: datetime) -> datetime | None: ...
    async def relay_copy(self, request_id: int, room: str, source_ref: str) -> str | None:
        """The message ref of the delivered ``relay`` post of ``source_ref`` in ``room``."""


class ThreadRepository(Protocol):
    async def add(self, link: ThreadLink, at: datetime) -> None: ...
    async def for_request(self, request_id: int) -> list[ThreadLink]: ...
    async def rooms_of(self, request_id: int) -> list[str]:
        """The rooms of the request's thread links, in order (read with the request when the
        unit of work got it)."""
    async def for_requests(self, request_ids: Sequence[int]) -> dict[int, list[ThreadLink]]: ...
    async def find(self, room: str, thread_root: str) -> ThreadLink | None: ...


class InboundRepository(Protocol):
    async def first_time(self, platform: str, event_id: str, at: datetime) -> bool:
        """Record an inbound event; False when it was recorded before (a replay)."""
    async def forget_before(self, moment: datetime) -> int: ...


class InboxRepository(Protocol):
    async def claim(self, now: datetime, *, owner: str, limit: int, lease_seconds: float,
                    platforms: Collection[str]) -> list[InboxItem]:
        """Lease the oldest pending rows of ``platforms`` that nobody holds (no lease, one
        run out, or on PostgreSQL an owner that is gone), in arrival order."""
    async def claimable(self, now: datetime, platforms: Collection[str]) -> bool:
        """Whether ``claim`` would find a row (a read only)."""
    async def renew(self, item_ids: Sequence[int], owner: str, until: datetime) -> int: ...
    async def release(self, item_ids: Sequence[int]) -> None:
        """Hand back pending rows at once, unattempted (a shutdown)."""
    async def release_dead(self, owner: str, now: datetime) -> list[int]:
        """Hand back the rows leased by processes that are gone (ids)."""
    async def done(self, item_id: int, at: datetime) -> None:
        """Mark the row done; raises ``AlreadySettled`` when it is not pending any more."""
    async def retry(self, item_id: int, error: str, at: datetime, *, give_up: bool) -> None:
        """Its work failed: due again at ``at`` (no owner), or ``failed`` with ``give_up``."""
    async def pending(self) -> int: ...
    async def forget_before(self, moment: datetime) -> int:
        """Delete rows done or failed that were received before ``moment``."""


class StateRepository(Protocol):
    async def get(self, key: str) -> str | None: ...
    async def put(self, key: str, value: str, at: datetime) -> None: ...
    async def forget(self, prefix: str, before: datetime) -> int: ...
    async def with_prefix(self, prefix: str) -> dict[str, str]: ...
    async def claim_day(self, office: str, day: Any) -> bool:
        """Mark ``day`` as the office's last digest day; False if it already was."""


class UnitOfWork(Protocol):
    """One transaction over every repository: ``async with uow: …; await uow.commit()``."""

    @property
    def requests(self) -> RequestRepository: ...
    @property
    def history(self) -> HistoryRepository: ...
    @property
    def outbox(self) -> OutboxRepository: ...
    @property
    def threads(self) -> ThreadRepository: ...
    @property
    def inbound(self) -> InboundRepository: ...
    @property
    def inbox(self) -> InboxRepository: ...
    @property
    def state(self) -> StateRepository: ...
    @property
    def former(self) -> FormerPartyRepository: ...

    async def __aenter__(self) -> UnitOfWork: ...
    async def __aexit__(self, *exc: object) -> None: ...
    async def commit(self) -> None:
        """Commit; may raise ``Conflict`` (an audit chain moved meanwhile), and then nothing
        of the unit of work is stored."""
    async def rollback(self) -> None:
        """Undo everything so far and go on in a fresh transaction."""


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, read_only: bool = False) -> UnitOfWork:
        """A unit of work; ``read_only`` when it will only read (SQLite then takes no write
        lock when it begins)."""


@dataclass(frozen=True)
class Delivery:
    """One post to deliver. ``delivery_id`` is stable across retries: gateways use it to make
    delivery idempotent (Matrix txn id, Slack message metadata)."""

    delivery_id: str
    room: str
    post: Post
    thread: ThreadLink | None
    related: Sequence[ThreadLink] = ()
    #: For ``relay_edit``/``relay_delete`` posts: the message ref of this room's copy of the
    #: relayed message to change (None when that copy was never delivered).
    target_ref: str | None = None
    #: An earlier attempt of this delivery may have been posted (its outcome is unknown: a
    #: crash, a lost answer, a 5xx): the gateway looks for it before posting again. False on
    #: a first attempt and after a clear refusal, so the common path never searches.
    in_doubt: bool = False


@dataclass(frozen=True)
class Receipt:
    """What the platform gave back: the posted message's reference."""

    message_ref: str


class DeliveryError(Exception):
    """A delivery that failed; ``retry_after`` seconds when the platform said, ``permanent``
    when trying again cannot help (room gone, bot removed). ``not_sent`` when the platform's
    answer proves nothing was posted (a 4xx, a rate limit): the next attempt need not look
    for an earlier copy. A rate limit (``retry_after``) is always ``not_sent``."""

    def __init__(self, message: str, *, retry_after: float | None = None,
                 permanent: bool = False, not_sent: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent
        self.not_sent = not_sent or retry_after is not None


class ChatGateway(Protocol):
    """Posts to one platform. Must not post twice for one ``delivery_id``."""

    platform: str

    async def deliver(self, delivery: Delivery) -> Receipt: ...
