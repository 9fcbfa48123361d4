"""The tables. Every change to them comes with an Alembic migration in ``migrations/versions``.

A request's columns are its domain fields (``domain.model.Request``) by name, read and written
by ``store.rows``; a column added here and in a migration, and a field of the same name added
to the dataclass, is all it takes (``tests/test_store_columns.py`` fails when one is missing).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint, text
from sqlalchemy import false as sa_false
from sqlmodel import Field, SQLModel

from liaisonbot.domain.measures import Measure
from liaisonbot.domain.model import Confidentiality, Kind, Status
from liaisonbot.store.types import MeasureList, Moments, UTCDateTime, str_enum

PENDING_SQL = "status IN ('open', 'acknowledged', 'partly_answered')"
INCOMPLETE_SQL = "status = 'incomplete'"


def _pending_index(name: str, *columns: str) -> Index:
    return Index(name, *columns, sqlite_where=text(PENDING_SQL),
                 postgresql_where=text(PENDING_SQL))


class RequestRow(SQLModel, table=True):
    __tablename__ = "request"
    __table_args__ = (
        Index("ix_request_case_status", "case_ref", "status"),
        # The case board's cases page: an office's requests by case, index-only (0002).
        Index("ix_request_requesting_case", "requesting", "case_ref", "status", "due_at"),
        Index("ix_request_requested_case", "requested", "case_ref", "status", "due_at"),
        _pending_index("ix_request_requested_due", "requested", "due_at"),
        _pending_index("ix_request_requesting_due", "requesting", "due_at"),
        Index("ix_request_requested_incomplete", "requested",
              sqlite_where=text(INCOMPLETE_SQL), postgresql_where=text(INCOMPLETE_SQL)),
        Index("ix_request_requesting_incomplete", "requesting",
              sqlite_where=text(INCOMPLETE_SQL), postgresql_where=text(INCOMPLETE_SQL)),
        Index("ix_request_next_nudge", "next_nudge_at",
              sqlite_where=text("next_nudge_at IS NOT NULL"),
              postgresql_where=text("next_nudge_at IS NOT NULL")),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    case_ref: str = Field(max_length=64)
    kind: Kind = Field(sa_type=str_enum(Kind))
    requesting: str = Field(max_length=64)
    requested: str = Field(max_length=64)
    summary: str = Field(sa_column=Column(Text, nullable=False))
    basis: str = Field(default="", max_length=300)
    urgent: bool = False
    confidentiality: Confidentiality = Field(default=Confidentiality.RESTRICTED,
                                             sa_type=str_enum(Confidentiality))
    status: Status = Field(sa_type=str_enum(Status))
    opened_by: str = Field(max_length=255)
    assignee: str | None = Field(default=None, max_length=255)
    answer: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    due_at: datetime = Field(sa_type=UTCDateTime)
    ack_due_at: datetime = Field(sa_type=UTCDateTime)
    eta: datetime | None = Field(default=None, sa_type=UTCDateTime)
    snoozed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ack_nudges_sent: int = 0
    answer_nudges_sent: int = 0
    next_nudge_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    version: int = 1
    # 0002: legal clocks (instruments, completeness, promised dates)
    instrument: str | None = Field(default=None, max_length=32)
    person: str = Field(default="", max_length=300)
    measure: str = Field(default="", max_length=300)
    paused_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    paused_from: Status | None = Field(default=None, sa_type=str_enum(Status))
    missing: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    incomplete_nudges_sent: int = 0
    eta_reminded: bool = False
    # 0005: the hash of the request's last history entry (its audit chain's end)
    audit_hash: str | None = Field(default=None, max_length=64)
    # 0009: deadlines from events, their extensions, Annex B of the acknowledgement
    events: dict[str, datetime] = Field(default_factory=dict, sa_column=Column(
        Moments(), nullable=False, server_default="{}"))
    extensions: dict[str, datetime] = Field(default_factory=dict, sa_column=Column(
        Moments(), nullable=False, server_default="{}"))
    ack_ref: str = Field(default="", max_length=300)
    ack_contact: str = Field(default="", max_length=300)
    asked_due: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # 0010: numbered measures (issue 24) and the conditions on use of a whole answer
    measures: tuple[Measure, ...] = Field(default=(), sa_column=Column(
        MeasureList(), nullable=False, server_default="[]"))
    conditions: str = Field(default="", sa_column=Column(Text, nullable=False,
                                                         server_default=""))
    # 0011: parallel requests of one case; postponement and consultation
    parallel_of: int | None = Field(default=None, index=True)
    hold_from: Status | None = Field(default=None, sa_type=str_enum(Status))
    hold_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    hold_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    hold_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class FormerPartyRow(SQLModel, table=True):
    """An office a request was forwarded away from (0011): the request as it stood then and
    how many of its history entries that office may still read (``domain.forwarding``)."""

    __tablename__ = "former_party"
    __table_args__ = (
        UniqueConstraint("request_id", "office", "upto", name="uq_former_party"),
        Index("ix_former_party_office_case", "office", "case_ref"),
    )

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(index=True)
    office: str = Field(max_length=64)
    case_ref: str = Field(max_length=64)
    at: datetime = Field(sa_type=UTCDateTime)
    to_office: str = Field(max_length=64)
    upto: int
    snapshot: str = Field(sa_column=Column(Text, nullable=False))


class HistoryRow(SQLModel, table=True):
    """Append-only; each row seals the previous one of its request (see ``domain.audit``)."""

    __tablename__ = "history"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: int | None = Field(default=None, primary_key=True)
    request_id: int | None = Field(default=None, index=True)
    at: datetime = Field(sa_type=UTCDateTime)
    actor: str = Field(max_length=255)
    platform: str = Field(max_length=16)
    action: str = Field(max_length=32)
    detail: str = Field(sa_column=Column(Text, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)
    # 0008: the request's state after the change (``domain.audit.state_hash``), sealed
    state_hash: str | None = Field(default=None, max_length=64)


class AuditHeadRow(SQLModel, table=True):
    """One row: where the legacy global chain ends (0005) and the last entry of no request.
    Request entries never touch it (each request's chain ends in ``request.audit_hash``)."""

    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True)
    last_id: int = 0
    last_hash: str = Field(max_length=64)
    legacy_upto: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    legacy_hash: str = Field(default="0" * 64, max_length=64,
                             sa_column_kwargs={"server_default": "0" * 64})


class OutboxRow(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_pending", "next_attempt_at", "id",
              sqlite_where=text("status = 'pending'"),
              postgresql_where=text("status = 'pending'")),
        # The claim: each room's oldest pending entries, by index (0005).
        Index("ix_outbox_room_pending", "room", "id",
              sqlite_where=text("status = 'pending'"),
              postgresql_where=text("status = 'pending'")),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    room: str = Field(max_length=255)
    request_id: int | None = Field(default=None, index=True)
    post: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    created_at: datetime = Field(sa_type=UTCDateTime)
    next_attempt_at: datetime = Field(sa_type=UTCDateTime)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: The process instance holding the lease (``store.db.INSTANCE`` of that process).
    lease_owner: str | None = Field(default=None, max_length=64)
    #: An earlier attempt may have reached the platform (a send whose outcome is unknown:
    #: a crash, a lost answer, a 5xx): the gateway looks for it before posting again.
    #: Set when an attempt ends with an unknown outcome or its lease is never settled (the
    #: next claim or ``release_dead``), cleared when it is handed back unattempted or the
    #: platform clearly refused it (``store.uow.SqlOutbox.claim``).
    in_doubt: bool = Field(default=False, sa_column_kwargs={"server_default": sa_false()})
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    message_ref: str | None = Field(default=None, max_length=255)
    last_error: str | None = Field(default=None, max_length=500)


class ThreadRow(SQLModel, table=True):
    """Where a request's card sits in a room: its message and the thread root."""

    __tablename__ = "thread_link"
    __table_args__ = (UniqueConstraint("room", "thread_root", name="uq_thread_room_root"),)

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(index=True)
    room: str = Field(max_length=255)
    message_ref: str = Field(max_length=255)
    thread_root: str = Field(max_length=255)
    created_at: datetime = Field(sa_type=UTCDateTime)


class InboundRow(SQLModel, table=True):
    """Inbound events already handled (platform event id or a dedupe key)."""

    __tablename__ = "inbound_event"

    platform: str = Field(primary_key=True, max_length=16)
    event_id: str = Field(primary_key=True, max_length=255)
    at: datetime = Field(sa_type=UTCDateTime, index=True)


class InboxRow(SQLModel, table=True):
    """Inbound things a platform was told were received (Slack's HTTP 200 or Socket Mode
    ack), each written before that acknowledgement and worked from here (``store.inbox``):
    leased like the outbox, done in the transaction that does its work (0007)."""

    __tablename__ = "inbox"
    __table_args__ = (
        # The thing's identity on its platform: a retry of it is the same row.
        UniqueConstraint("platform", "event_key", name="uq_inbox_platform_event_key"),
        # The claim: pending rows in arrival order.
        Index("ix_inbox_pending", "id", sqlite_where=text("status = 'pending'"),
              postgresql_where=text("status = 'pending'")),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    #: Its identity on the platform (Slack: ``command:T:trigger id``, ``event:event id``,
    #: ``action:T:U:action ts``, ``view:view id``).
    event_key: str = Field(max_length=255)
    #: What kind of thing it is (Slack: command, mention, message, action, view).
    kind: str = Field(max_length=16)
    #: The room it came from, when it has one.
    room: str | None = Field(default=None, max_length=255)
    #: What the work needs (the verified payload, never a secret); cleared once done.
    payload: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    received_at: datetime = Field(sa_type=UTCDateTime, index=True)
    #: Until when ``lease_owner`` (a process instance) holds it; a row handed back after a
    #: failure carries no owner and is due again at ``lease_until``.
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lease_owner: str | None = Field(default=None, max_length=64)
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=500)


class StateRow(SQLModel, table=True):
    """Small named state: sync tokens, leader leases, digest days."""

    __tablename__ = "kv_state"

    key: str = Field(primary_key=True, max_length=255)
    value: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime = Field(sa_type=UTCDateTime)


class DigestRow(SQLModel, table=True):
    """The last working day each office got its morning digest."""

    __tablename__ = "office_digest"

    office: str = Field(primary_key=True, max_length=64)
    last_on: date
