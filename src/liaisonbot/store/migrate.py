"""Apply the Alembic migrations programmatically (``liaisonbot db upgrade``, ``run``,
``console``)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


_LOCK = threading.Lock()


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` (blocking; runs its own event loop). One at a time in a
    process (Alembic loads its scripts as modules); across processes PostgreSQL's advisory
    lock in ``env.py`` serialises replicas."""
    with _LOCK:
        command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str) -> None:
    """Migrate from inside a running event loop (Alembic's async env needs its own loop)."""
    await asyncio.to_thread(upgrade, url)
