"""Issue 11: what ``:advance`` costs in the console once the store is busy.

    .venv/bin/python benchmarks/bench_console.py [--requests 1200] [--advance 4d]

Opens N requests (example config, SQLite in a temporary directory, clock on Monday
2026-11-30 10:00 CET), then times ``:advance`` and splits it: the follow-up tick (nudges,
digests, housekeeping), the outbox rounds (claim, per-post delivery and bookkeeping), and how
many posts and rounds that took. The floor beside it: the same number of bare one-row
transactions on the same engine.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

from liaisonbot.bootstrap import build_core, console_gateways
from liaisonbot.chat.console.repl import Console
from liaisonbot.config import load
from liaisonbot.service.desk import Actor
from liaisonbot.service.ports import ManualClock

ROOT = Path(__file__).resolve().parent.parent


def _timed(obj: Any, name: str, spent: dict[str, float], calls: dict[str, int]) -> None:
    original: Callable[..., Awaitable[Any]] = getattr(obj, name)

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original(*args, **kwargs)
        finally:
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - started
            calls[name] = calls.get(name, 0) + 1

    setattr(obj, name, wrapper)


async def main(requests: int, advance: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "liaisonbot.toml"
        config.write_text((ROOT / "config" / "liaisonbot.toml").read_text().replace(
            "sqlite+aiosqlite:///var/liaisonbot.db", f"sqlite+aiosqlite:///{tmp}/bench.db"))
        settings = load(str(config))
        clock = ManualClock(datetime(2026, 11, 30, 9, 0, tzinfo=UTC))
        printed: list[str] = []
        core = await build_core(settings, clock=clock, gateways=console_gateways(printed.append))
        console = Console(core, clock, user="console:alice", room="console:icc-otp",
                          write=printed.append)
        try:
            alice = Actor("console:alice", "console:icc-otp")
            for i in range(requests):
                to = ("ba-spo", "ua-pgo")[i % 2]
                await core.desk.handle_command(alice, f"open C-{i % 40} to:{to} "
                                                      f"due:{1 + i % 5}d Records {i}")
            await console.settle()
            spent: dict[str, float] = {}
            calls: dict[str, int] = {}
            _timed(core.ticker, "tick", spent, calls)
            _timed(core.outbox, "run_once", spent, calls)
            before = core.outbox.delivered
            started = time.perf_counter()
            await console.line(f":advance {advance}")
            total = time.perf_counter() - started
            posts = core.outbox.delivered - before
            floor_started = time.perf_counter()
            async with core.engine.begin() as conn:
                await conn.execute(text("CREATE TABLE IF NOT EXISTS bench_floor (n INTEGER)"))
            for n in range(posts * 2 + calls.get("run_once", 0)):
                async with core.engine.begin() as conn:
                    await conn.execute(text("INSERT INTO bench_floor VALUES (:n)"), {"n": n})
            floor = time.perf_counter() - floor_started
        finally:
            await core.close()
    print(f":advance {advance} with {requests} requests: {total:.2f} s")
    print(f"  tick        {spent.get('tick', 0):6.2f} s in {calls.get('tick', 0)} ticks")
    print(f"  outbox      {spent.get('run_once', 0):6.2f} s in {calls.get('run_once', 0)} rounds"
          f" for {posts} posts ({posts / max(calls.get('run_once', 1), 1):.1f} per round)")
    print(f"  floor       {floor:6.2f} s for {posts * 2 + calls.get('run_once', 0)} bare "
          "one-row transactions (two per post and one per round, as the outbox runs them)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1200)
    parser.add_argument("--advance", default="4d")
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.advance))
