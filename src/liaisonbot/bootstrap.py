"""The one composition root: settings in, a wired desk, outbox worker and ticker out."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from liaisonbot.audit_key import signing_key
from liaisonbot.config import Settings
from liaisonbot.domain.refs import PLATFORMS
from liaisonbot.metrics import PrometheusTelemetry
from liaisonbot.service.desk import Desk
from liaisonbot.service.followups import Ticker
from liaisonbot.service.inbox import InboxWorker
from liaisonbot.service.outbox import OutboxWorker, RetryPolicy
from liaisonbot.service.ports import ChatGateway, Clock, SystemClock
from liaisonbot.store.db import INSTANCE, is_sqlite, make_engine
from liaisonbot.store.inbox import SqlInboxDoor
from liaisonbot.store.schema import ensure_schema
from liaisonbot.store.uow import SqlUnitOfWorkFactory


@dataclass
class Core:
    """Everything the platforms plug into."""

    settings: Settings
    engine: AsyncEngine
    uow: SqlUnitOfWorkFactory
    clock: Clock
    desk: Desk
    outbox: OutboxWorker
    ticker: Ticker
    telemetry: PrometheusTelemetry
    #: Inbound things written before they are acknowledged, and their work (Slack).
    inbox: InboxWorker
    door: SqlInboxDoor
    gateways: dict[str, ChatGateway] = field(default_factory=dict)

    async def close(self) -> None:
        await self.door.close()
        await self.engine.dispose()


async def build_core(settings: Settings, *, clock: Clock | None = None,
                     gateways: Mapping[str, ChatGateway] | None = None,
                     migrate: bool = True, migrate_in_child: bool = False,
                     retry: RetryPolicy | None = None) -> Core:
    """Migrate (unless told not to) and wire the core. Gateways may be added later to
    ``core.gateways`` (the worker reads the same dict). A database already at the head
    revision is not touched and Alembic is not imported; ``migrate_in_child`` (``run``) runs
    the migrations, when there are some, in a child process (``store.schema``)."""
    if migrate:
        await ensure_schema(settings.database_url, child=migrate_in_child)
    engine = make_engine(settings.database_url)
    uow = SqlUnitOfWorkFactory(engine)
    clock = clock or SystemClock()
    all_gateways: dict[str, ChatGateway] = dict(gateways or {})
    telemetry = PrometheusTelemetry()
    outbox = OutboxWorker(uow=uow, gateways=all_gateways, clock=clock, retry=retry,
                          telemetry=telemetry, owner=INSTANCE)
    if not is_sqlite(settings.database_url):  # replicas: a dead one's posts, within a second
        outbox.reclaim_seconds = 1.0
    desk = Desk(uow=uow, clock=clock, directory=settings.directory, on_posted=outbox.wake,
                telemetry=telemetry, claim_posts=outbox.claim_in)
    ticker = Ticker(uow=uow, clock=clock, desk=desk, on_posted=outbox.wake,
                    weekly=settings.weekly_report,
                    audit_key=lambda: signing_key(settings.audit))
    door = SqlInboxDoor(engine, owner=INSTANCE)
    inbox = InboxWorker(uow=uow, door=door, clock=clock, owner=INSTANCE)
    return Core(settings, engine, uow, clock, desk, outbox, ticker, telemetry, inbox, door,
                all_gateways)


def console_gateways(write: Callable[[str], None]) -> dict[str, ChatGateway]:
    """One printing gateway per platform: the console stands in for all of them."""
    from liaisonbot.chat.console.gateway import ConsoleGateway

    return {platform: ConsoleGateway(platform, write) for platform in PLATFORMS}
