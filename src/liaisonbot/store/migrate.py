"""Apply the Alembic migrations programmatically: ``liaisonbot db upgrade``, the console,
``export``, and (as ``python -m liaisonbot.store.migrate``, a child process) ``liaisonbot run``
when ``store.schema`` finds the database behind. Importing this module imports Alembic."""

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


def main() -> int:
    """``python -m liaisonbot.store.migrate``: migrate the database whose URL is on stdin
    (``store.schema.upgrade_in_child``: ``liaisonbot run`` migrates in a child, so Alembic
    never stays in the server)."""
    import logging
    import sys

    from liaisonbot.logs import setup_logging

    setup_logging()
    url = sys.stdin.read().strip()
    try:
        upgrade(url)
    except Exception:
        logging.getLogger("liaisonbot.store.migrate").exception("the database migration failed")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
