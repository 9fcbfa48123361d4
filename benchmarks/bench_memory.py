"""Issue 16: resident memory with 1,000 rooms and 100,000 requests after a day of traffic.

    .venv/bin/python benchmarks/bench_memory.py [--rooms 1000] [--requests 100000]
        [--commands 2000] [--step 5] [--trace] [--untuned] [--backend sqlite|postgres]
        [--adapters]

A generated config: the four offices of config/liaisonbot.toml plus synthetic ones (European
zones and holiday calendars, ten console rooms each) until there are ROOMS rooms. REQUESTS
requests are bulk-loaded (common.RowMaker: ~15 % pending, 2,000 owing a nudge at the start).
Each figure is measured in its own fresh child process (its VmHWM: see peak_rss_mb), so the
loader's rows and caches are not counted:

* floor: the interpreter with what ``liaisonbot run`` imports for the generated config (the
  CLI, the runner with the core and the web server; no platform adapter, as none is
  configured), the config parsed (its holiday calendars built) and the database opened
  (engine, one query); the same floor plus the Slack or the Matrix adapter, to show what
  configuring one adds;
* day: the same imports, ``build_core`` as ``run`` calls it (the schema checked without
  Alembic: the database is current) with a null gateway per platform, and a ManualClock run
  through 24 hours (Wed 06:00 UTC → Thu 06:00 UTC) in STEP-minute steps: COMMANDS desk
  commands spread over the office hours (open, ack, answer, list CASE, overdue, show), then
  ``Ticker.tick`` (nudges, digests, housekeeping) and ``OutboxWorker.drain`` (every post
  delivered) at each step.

Both children first do what ``liaisonbot run`` does about memory (``liaisonbot.memory``: two
malloc arenas; free pages returned after each tick); ``--untuned`` leaves glibc's defaults.

``--adapters``: the day child also imports the Slack and the Matrix adapters (a deployment
with both platforms configured; they are not started, the gateways stay null).

``--trace`` adds a third child: the day again under tracemalloc, printing the top allocation
sites still held at the end (tracemalloc's own overhead makes its RSS meaningless).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as b

ZONES = b._ZONES
START = b.NOW - timedelta(hours=6)  # Wed 06:00 UTC
ROOMS_PER_OFFICE = 10


def memory_settings(url: str, rooms: int) -> Any:
    """config/liaisonbot.toml plus synthetic offices with ten console rooms each."""
    import tomllib

    from liaisonbot.config import parse

    data = tomllib.loads((b.ROOT / "config" / "liaisonbot.toml").read_text(encoding="utf-8"))
    data["database"] = {"url": url}
    offices = list(data["offices"])
    have = sum(len(o.get("rooms", [])) for o in offices)
    i = 0
    while have < rooms:
        zone, country = ZONES[i % len(ZONES)]
        slug = f"mem-{i:03d}"
        count = min(ROOMS_PER_OFFICE, rooms - have)
        offices.append({
            "slug": slug, "name": f"Memory office {i:03d}", "timezone": zone,
            "working_hours": "09:00-17:00" if i % 2 else "08:00-16:30",
            "working_days": "Mon-Fri", "holidays": country,
            "rooms": [f"console:{slug}-{k}" for k in range(count)],
            "members": [f"console:user-{slug}", f"console:head-{slug}"],
            "escalation": [f"console:head-{slug}"]})
        have += count
        i += 1
    data["offices"] = offices
    return parse(data, f"bench_memory({rooms} rooms)")


def peak_rss_mb() -> float:
    """This process's peak resident size (VmHWM). Not ``ru_maxrss``: Linux carries a process's
    maximum over ``exec``, so a child's ``ru_maxrss`` starts at what its parent (this bench,
    holding the loaded rows) had resident when it spawned the child."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def rss_now_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# ----------------------------------------------------------------------------- children


def _import_as_run(settings: Any, extra: tuple[str, ...] = ()) -> None:
    """What ``liaisonbot run`` imports with ``settings``: the CLI, the runner (core, web) and the
    adapter of each platform configured (none in the generated config), plus ``extra``."""
    import liaisonbot.cli
    import liaisonbot.runner  # noqa: F401

    adapters = {"slack": "liaisonbot.chat.slack.platform",
                "matrix": "liaisonbot.chat.matrix.platform"}
    wanted = {p for p in adapters if getattr(settings, p).enabled} | set(extra)
    for platform in sorted(wanted):
        __import__(adapters[platform])


def _tune() -> bool:
    """What ``liaisonbot run`` does first (two malloc arenas), unless BENCH_UNTUNED is set."""
    if os.environ.get("BENCH_UNTUNED"):
        return False
    from liaisonbot.memory import limit_malloc_arenas

    limit_malloc_arenas()
    return True


async def child_floor(url: str, rooms: int, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    _tune()
    settings = memory_settings(url, rooms)  # the config is parsed before anything runs
    _import_as_run(settings, extra)
    from sqlalchemy import text

    from liaisonbot.store.db import make_engine

    engine = make_engine(url)
    async with engine.connect() as conn:
        await conn.execute(text("SELECT count(*) FROM request"))
    await engine.dispose()
    return {"maxrss_mb": peak_rss_mb(), "rss_mb": rss_now_mb()}


class PeakByPhase:
    """A thread sampling RSS every 5 ms: the highest seen while each phase ran."""

    def __init__(self) -> None:
        import threading

        self.phase = "setup"
        self.peaks: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            rss = rss_now_mb()
            if rss > self.peaks.get(self.phase, 0.0):
                self.peaks[self.phase] = rss

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        return {k: round(v, 1) for k, v in self.peaks.items()}


class NullGateway:
    """Accepts every post (a platform that always confirms)."""

    def __init__(self, platform: str) -> None:
        self.platform = platform
        self.posts = 0

    async def deliver(self, delivery: Any) -> Any:
        from liaisonbot.service.ports import Receipt

        self.posts += 1
        return Receipt(message_ref=f"{self.platform}-null-{delivery.delivery_id}")


async def child_day(url: str, rooms: int, commands: int, step_minutes: int,
                    trace: bool, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    tuned = _tune()
    if trace:
        import tracemalloc

        tracemalloc.start(1)
    peaks = PeakByPhase()
    settings = memory_settings(url, rooms)
    _import_as_run(settings, extra)
    from sqlalchemy import text

    from liaisonbot.bootstrap import build_core
    from liaisonbot.domain.refs import PLATFORMS
    from liaisonbot.service.desk import Actor
    from liaisonbot.service.ports import ManualClock

    clock = ManualClock(START)
    nulls = {p: NullGateway(p) for p in PLATFORMS}
    # as `run` does: the schema checked (and migrated in a child process if behind)
    core = await build_core(settings, clock=clock, gateways=nulls, migrate_in_child=True)
    offices = list(settings.directory.offices)
    rng = random.Random(16)
    async with core.engine.connect() as conn:
        pending = (await conn.execute(text(
            "SELECT id, requested, requesting, \"case\" FROM request "
            "WHERE status IN ('open', 'acknowledged') ORDER BY random() LIMIT :n"),
            {"n": commands})).all()  # enough to act on; the bench holds no more than that
    by_office: dict[str, list[tuple[int, str, str]]] = {}
    for rid, requested, requesting, case in pending:
        by_office.setdefault(requested, []).append((rid, requesting, case))

    def actor(slug: str) -> Actor:
        office = settings.directory.office(slug)
        assert office is not None
        user = office.members[0] if office.members else f"console:clerk-{slug}"
        return Actor(user, rng.choice(office.rooms))

    def command() -> tuple[Actor, str]:
        x = rng.random()
        office = rng.choice(offices)
        own = by_office.get(office.slug) or []
        if x < 0.35 or not own:
            other = rng.choice([o for o in offices if o.slug != office.slug])
            return actor(office.slug), (f"open MEM-{rng.randint(1, 5000):05d} to:{other.slug} "
                                        f"due:{rng.randint(3, 30)}d Records {rng.random():.6f}")
        rid, _requesting, case = own.pop(rng.randrange(len(own)))
        if x < 0.55:
            return actor(office.slug), f"ack R-{rid}"
        if x < 0.75:
            return actor(office.slug), f"answer R-{rid} Records sent {rng.randint(1, 999)}"
        if x < 0.85:
            return actor(office.slug), f"list {case}"
        if x < 0.92:
            return actor(office.slug), "overdue"
        return actor(office.slug), f"show R-{rid}"

    steps = 24 * 60 // step_minutes
    # commands arrive in working hours (06:00–17:00 UTC covers every office's day)
    busy = [s for s in range(steps) if s * step_minutes < 11 * 60]
    phases = {"setup": rss_now_mb()}
    baseline = tracemalloc.take_snapshot() if trace else None
    per_step = {s: 0 for s in busy}
    for _ in range(commands):
        per_step[rng.choice(busy)] += 1
    done = failed = queued = delivered = 0
    started = time.perf_counter()
    peak_rss = 0.0
    for s in range(steps):
        clock.set(START + timedelta(minutes=s * step_minutes))
        peaks.phase = "commands"
        for _ in range(per_step.get(s, 0)):
            who, line = command()
            outcome = await core.desk.handle_command(who, line, reply_in_room=False)
            done += 1
            failed += 0 if outcome is None or outcome.ok else 1
        peaks.phase = "first tick" if s == 0 else "ticks"
        queued += await core.ticker.tick()
        peaks.phase = "first drain" if s == 0 else "drains"
        delivered += await core.outbox.drain()
        if tuned:
            from liaisonbot.memory import release_free_memory

            release_free_memory()  # as the runner does after each tick
        peak_rss = max(peak_rss, rss_now_mb())
        if s == 0:
            phases["first tick"] = rss_now_mb()
        if (s + 1) * step_minutes % 240 == 0:
            phases[f"+{(s + 1) * step_minutes // 60}h"] = rss_now_mb()
    seconds = time.perf_counter() - started
    out: dict[str, Any] = {
        "maxrss_mb": peak_rss_mb(), "rss_mb": rss_now_mb(), "steps": steps,
        "commands": done, "refused": failed, "tick_posts": queued, "delivered": delivered,
        "seconds": seconds, "phases": phases, "peaks": peaks.stop()}
    if trace:
        import tracemalloc

        assert baseline is not None
        snap = tracemalloc.take_snapshot()
        out["traced_mb"] = tracemalloc.get_traced_memory()[0] / 2**20
        out["traced_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        out["top_lines"] = [
            (str(stat.traceback[0]).split("site-packages/")[-1], round(stat.size_diff / 2**20, 2),
             stat.count_diff) for stat in snap.compare_to(baseline, "lineno")[:25]]
        out["top_files"] = [
            (stat.traceback[0].filename.split("site-packages/")[-1],
             round(stat.size_diff / 2**20, 2)) for stat in snap.compare_to(baseline, "filename")[:25]]
    await core.close()
    return out


# ----------------------------------------------------------------------------- parent


@contextlib.asynccontextmanager
async def fresh_copy(db: b.Database) -> AsyncIterator[str]:
    """A copy of the loaded database (a file copy on SQLite, ``TEMPLATE`` on PostgreSQL)."""
    if db.backend == "sqlite":
        path = b.sqlite_path(db.url)
        copy = f"{path}.day.db"
        shutil.copyfile(path, copy)
        try:
            yield f"sqlite+aiosqlite:///{copy}"
        finally:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(f"{copy}{suffix}")
        return
    import asyncpg

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(b.PG_ADMIN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    name = f"{db.name}_day"
    await admin(f'CREATE DATABASE "{name}" TEMPLATE "{db.name}"')
    try:
        yield f"{b.PG_BASE}{name}"
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_child(*args: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(b.ROOT / "src")}
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                          env=env, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"child {args[:2]} failed ({proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


async def main(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"rooms": args.rooms, "requests": args.requests,
                           "day_adapters": list(args.adapters),
                           "commands": args.commands, "backend": args.backend,
                           "tuned": not args.untuned}
    async with b.fresh_database(args.backend) as db:
        settings = memory_settings(db.url, args.rooms)
        offices = settings.directory.offices
        print(f"-- {len(offices)} offices, {sum(len(o.rooms) for o in offices)} rooms; "
              f"loading {args.requests:,} requests ({db.backend})")
        maker = b.RowMaker(settings)
        loaded = await b.bulk_insert(db, maker.generate(args.requests, due_now=min(
            2000, args.requests // 50)))
        del maker
        floor = run_child("--child", "floor", "--url", db.url, "--rooms", str(args.rooms))
        adapters = {p: run_child("--child", "floor", "--url", db.url, "--rooms", str(args.rooms),
                                 "--with", p) for p in ("slack", "matrix")}
        with_adapters = [arg for p in args.adapters for arg in ("--with", p)]
        day_args = ("--rooms", str(args.rooms), "--commands", str(args.commands),
                    "--step", str(args.step), *with_adapters)
        async with fresh_copy(db) as url:  # each day starts from the loaded state
            day = run_child("--child", "day", "--url", url, *day_args)
        traced = None
        if args.trace:
            async with fresh_copy(db) as url:
                traced = run_child("--child", "trace", "--url", url, *day_args)
    out |= {"loaded": loaded, "floor": floor, "adapters": adapters, "day": day}
    if args.adapters:
        print("the day imported the Slack and Matrix adapters (not run; the floor has none)")
    print(f"\n{args.rooms} rooms, {loaded:,} requests, a day in {day['steps']} steps: "
          f"{day['commands']} commands ({day['refused']} refused), {day['tick_posts']} posts "
          f"queued by the ticker, {day['delivered']} delivered, {day['seconds']:.1f} s")
    b.table([
        ("floor: run's imports, DB opened", floor["maxrss_mb"], floor["rss_mb"], 1.0),
        ("after a day of traffic", day["maxrss_mb"], day["rss_mb"],
         day["maxrss_mb"] / floor["maxrss_mb"]),
        ("over the floor", day["maxrss_mb"] - floor["maxrss_mb"],
         day["rss_mb"] - floor["rss_mb"], None)],
        ("process", "peak RSS MB", "RSS at end MB", "x floor"))
    print(f"goal: peak RSS <= 150 MB: {'met' if day['maxrss_mb'] <= 150 else 'NOT met'}")
    print("a platform adapter configured adds its imports to every figure (floor peak with it): "
          + ", ".join(f"{p} +{a['maxrss_mb'] - floor['maxrss_mb']:.1f} MB "
                      f"({a['maxrss_mb']:.1f})" for p, a in adapters.items()))
    print("RSS by phase of the day (MB): " + ", ".join(
        f"{k} {v:.0f}" for k, v in day["phases"].items()))
    print("highest RSS seen while each part ran (MB, 5 ms samples): " + ", ".join(
        f"{k} {v:.0f}" for k, v in day["peaks"].items()))
    if traced:
        out["trace"] = traced
        print(f"\ntracemalloc: Python objects held at the end of the day "
              f"{traced['traced_mb']:.1f} MB (peak {traced['traced_peak_mb']:.1f} MB); "
              "grown since the core was built:")
        for where, mb, count in traced["top_lines"][:15]:
            print(f"  {mb:7.2f} MB {count:8d}  {where}")
        print("by file:")
        for where, mb in traced["top_files"][:12]:
            print(f"  {mb:7.2f} MB  {where}")
    return out


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--commands", type=int, default=2000)
    parser.add_argument("--step", type=int, default=5, help="minutes per simulated step")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--trace", action="store_true")
    parser.add_argument("--untuned", action="store_true",
                        help="glibc's malloc defaults (no arena limit, no trim)")
    parser.add_argument("--child", choices=("floor", "day", "trace"))
    parser.add_argument("--url")
    parser.add_argument("--with", dest="extra", choices=("slack", "matrix"), action="append",
                        default=[], help="child: also import this platform's adapter")
    parser.add_argument("--adapters", action="store_const", const=("slack", "matrix"),
                        default=(), help="the day also imports the Slack and Matrix adapters "
                        "(a deployment with both platforms; they are not run)")
    args = parser.parse_args()
    if args.child == "floor":
        print(json.dumps(asyncio.run(child_floor(args.url, args.rooms, tuple(args.extra)))))
    elif args.child in ("day", "trace"):
        print(json.dumps(asyncio.run(child_day(args.url, args.rooms, args.commands, args.step,
                                               args.child == "trace", tuple(args.extra))),
                         default=str))
    else:
        if args.untuned:
            os.environ["BENCH_UNTUNED"] = "1"
        b.finish("memory", asyncio.run(main(args)))


if __name__ == "__main__":
    cli()
