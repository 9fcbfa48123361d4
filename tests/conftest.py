"""Shared fixtures: configs, SQLite and PostgreSQL databases, and ``testbot``.

``testbot`` is the whole desk behind the console: ``await bot.exec("!liaison …")`` returns what
the bot printed for that line (errbot's testbot, on the real SQL store).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from liaisonbot.bootstrap import Core, build_core, console_gateways
from liaisonbot.chat.console.repl import Console
from liaisonbot.config import Settings, parse
from liaisonbot.service.ports import ManualClock

#: Processes the tests start (``liaisonbot run``, ``console``, ``check-config``, the image's
#: entry point) import this checkout's code whatever their working directory: its ``src`` leads
#: an absolute PYTHONPATH (a relative one, or an editable install of another checkout, would
#: otherwise decide which code they run).
SRC = Path(__file__).resolve().parent.parent / "src"
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(SRC), *(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                 if p and Path(p).resolve() != SRC)])

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
IN_CI = os.environ.get("CI") == "true"

BASE_CONFIG: dict[str, Any] = {
    "policy": {"ack_within": "5bd",
               "due": {"mla": "30d", "evidence": "30d", "information": "10bd", "urgent": "2bd"},
               "nudges": {"after_due": ["0bd", "2bd", "5bd", "10bd"], "escalate_from": 3}},
    "offices": [
        {"slug": "icc-otp", "name": "ICC OTP", "timezone": "Europe/Amsterdam",
         "working_hours": "09:00-17:30", "working_days": "Mon-Fri", "holidays": "NL",
         "rooms": ["console:icc"], "members": ["console:alice", "console:head-icc"],
         "escalation": ["console:head-icc"], "accepts_languages": ["en", "fr"],
         "contacts": [{"name": "Alice Martin", "role": "liaison prosecutor",
                       "user": "console:alice", "phone": "+31705550142",
                       "email": "alice.martin@icc-otp.example.org", "languages": ["en", "fr"]}]},
        {"slug": "ba-spo", "name": "BA SPO", "timezone": "Europe/Sarajevo",
         "working_hours": "08:00-16:00", "working_days": "Mon-Fri", "holidays": "BA",
         "rooms": ["console:ba"], "members": ["console:bojan", "console:head-ba"],
         "escalation": ["console:head-ba"], "country": "BA",
         "contacts": [{"name": "Bojan Kovačević", "role": "liaison officer",
                       "user": "console:bojan", "phone": "+38733555014",
                       "languages": ["bs", "en"]}]},
        {"slug": "ua-pgo", "name": "UA PGO", "timezone": "Europe/Kyiv",
         "working_hours": "09:00-18:00", "rooms": ["console:ua"], "country": "UA",
         "contacts": [{"name": "Olena Bondarenko", "role": "international cooperation",
                       "phone": "+380445550123", "email": "o.bondarenko@pgo-ua.example.org",
                       "languages": ["uk", "en"]}]},
    ],
}
#: Monday 30 November 2026, 10:00 in Amsterdam.
MONDAY_10 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
#: Offices of EU Member States (``country``), for the instruments of ``scope = "eu"``: the
#: EIO, EAW and freezing order work only between them (issue 23); Ireland is not bound by
#: the EIO Directive.
EU_OFFICES = [
    {"slug": "de-gba", "name": "DE GBA", "timezone": "Europe/Berlin",
     "working_hours": "08:00-16:00", "holidays": "DE", "rooms": ["console:de"], "country": "DE"},
    {"slug": "nl-om", "name": "NL OM", "timezone": "Europe/Amsterdam",
     "working_hours": "09:00-17:00", "holidays": "NL", "rooms": ["console:nl"], "country": "NL"},
    {"slug": "ie-dpp", "name": "IE DPP", "timezone": "Europe/Dublin",
     "working_hours": "09:00-17:00", "rooms": ["console:ie"], "country": "IE"},
]


#: The daily audit checkpoint's post, in each catalog's words (left out of ``console_posts``).
_CHECKPOINT_POSTS = ("Audit checkpoint", "Контрольна точка", "Point de contrôle")


def console_posts(out: str) -> list[str]:
    """The bot's posts in console output, one string each: a post starts with ``[ROOM]`` and
    every other line continues it (so nothing printed escapes a leak check); the daily audit
    checkpoints are left out."""
    posts: list[str] = []
    for line in out.splitlines():
        if line.startswith("[") or not posts:
            posts.append(line)
        else:
            posts[-1] += "\n" + line
    return [p for p in posts if not any(mark in p for mark in _CHECKPOINT_POSTS)]


def make_settings(database_url: str, **overrides: Any) -> Settings:
    data = copy.deepcopy(BASE_CONFIG)
    data["database"] = {"url": database_url}
    data.update(overrides)
    return parse(data, "test-config")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'liaisonbot.db'}"


async def _pg_reachable() -> bool:
    try:
        import asyncpg

        conn = await asyncio.wait_for(asyncpg.connect(PG_ADMIN), 3)
    except Exception:
        return False
    await conn.close()
    return True


@contextlib.asynccontextmanager
async def fresh_pg_database() -> AsyncIterator[str]:
    """A new PostgreSQL database, dropped afterwards. Skips without a server, except in CI."""
    if not await _pg_reachable():
        if IN_CI:
            pytest.fail("PostgreSQL on 127.0.0.1:5432 is required in CI")
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    import asyncpg

    name = f"liaisonbot_test_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    async with fresh_pg_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
async def any_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Each test using it runs on SQLite and on the real PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'liaisonbot.db'}"
        return
    async with fresh_pg_database() as url:
        yield url


class TestBot:
    """The console, driven from tests. ``exec`` returns the printed output of one line."""

    __test__ = False

    def __init__(self, core: Core, console: Console, out: list[str]) -> None:
        self.core = core
        self.console = console
        self.out = out

    @property
    def clock(self) -> ManualClock:
        return self.console.clock

    async def exec(self, line: str, *, user: str | None = None, room: str | None = None) -> str:
        if user:
            self.console.user = user if ":" in user else f"console:{user}"
        if room:
            self.console.room = room if ":" in room else f"console:{room}"
        start = len(self.out)
        await self.console.line(line)
        return "\n".join(self.out[start:])


async def start_bot(settings: Settings, now: datetime = MONDAY_10) -> TestBot:
    out: list[str] = []
    clock = ManualClock(now)
    core = await build_core(settings, clock=clock, gateways=console_gateways(out.append))
    console = Console(core, clock, user="console:alice", room="console:icc", write=out.append)
    return TestBot(core, console, out)


@pytest.fixture
async def testbot(sqlite_url: str) -> AsyncIterator[TestBot]:
    bot = await start_bot(make_settings(sqlite_url))
    yield bot
    await bot.core.close()


@pytest.fixture
def repo_root() -> Iterator[Path]:
    yield Path(__file__).resolve().parent.parent
