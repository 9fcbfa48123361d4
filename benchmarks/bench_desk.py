"""Issue 2: the desk's cost per command, and `list CASE` / `overdue` over a big table.

    .venv/bin/python benchmarks/bench_desk.py [--backend sqlite|postgres|both] [--n N]
        [--rows ROWS] [--case-size K]

1. open → ack → answer → close for N requests (default 2,500) through Desk.handle_command
   (ManualClock, console actors in the offices' rooms, reply_in_room=True, an event id per
   command as the chat platforms pass one), phase by phase. Commands/s and p50/p99 per verb,
   next to a floor measured in the same run, between the commands (after every third, so a
   busy moment of the machine weighs on both alike): a bare single-row INSERT+UPDATE
   transaction on the same engine, opened as a unit of work opens one. Round trips: statements,
   COMMITs and the pool's resets on both databases, and asyncpg's own BEGIN on PostgreSQL. CPU per command and per floor
   transaction. Outbox rows are written as in production and not delivered.
2. ROWS requests (default 1,000,000) bulk-inserted, plus one case of K (default 1,000)
   requests; then `list CASE` and `overdue` for one office: the desk command's time, the raw
   time of the SQL it ran (captured), and that SQL's plan with "uses index: yes/no".
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as b
from sqlalchemy import text

from liaisonbot.bootstrap import build_core
from liaisonbot.service.desk import Actor
from liaisonbot.service.ports import ManualClock
from liaisonbot.store.tables import PENDING_SQL, RequestRow

START = b.NOW - timedelta(hours=3)  # 09:00 UTC on a Wednesday
# Who acts for each example office, in its room (ua-pgo and eurojust list no members:
# anyone in their rooms acts for them).
PEOPLE = {"icc-otp": "console:alice", "ba-spo": "console:bojan", "ua-pgo": "console:oksana",
          "eurojust": "console:emma"}
EXAMPLE = tuple(PEOPLE)
PAIRS = [(a, c) for a in EXAMPLE for c in EXAMPLE if a != c]
#: A confidential request needs listed members on both sides (``open`` refuses it otherwise).
CONFIDENTIAL_PAIRS = [("icc-otp", "ba-spo"), ("ba-spo", "icc-otp")]
BIG_CASE = "BIG-0001/26"
LIST_OFFICE = "icc-otp"
REPEAT = 5


def actor(settings: Any, slug: str) -> Actor:
    office = settings.directory.office(slug)
    return Actor(PEOPLE[slug], office.rooms[0], name=PEOPLE[slug].split(":")[1])


class Floor:
    """A bare single-row INSERT + UPDATE transaction, the same way a unit of work opens one:
    run between the commands (every ``FLOOR_EVERY``-th), so both see the same machine."""

    def __init__(self, engine: Any, first_id: int = 1) -> None:
        self.engine = engine
        self.times: list[float] = []
        self.cpu_s = 0.0
        self.trips: list[int] = []
        self._n = first_id - 1

    async def setup(self) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text("CREATE TABLE IF NOT EXISTS bench_floor (id INTEGER "
                                    "PRIMARY KEY, n INTEGER NOT NULL, note TEXT NOT NULL)"))

    async def once(self, counter: RoundTrips) -> None:
        self._n += 1
        i = self._n
        trips, cpu = counter.count, time.process_time()
        with b.stopwatch() as t:
            conn = await self.engine.connect()
            await conn.begin()
            await conn.execute(text("INSERT INTO bench_floor (id, n, note) VALUES (:i, 0, :s)"),
                               {"i": i, "s": f"row {i}"})
            await conn.execute(text("UPDATE bench_floor SET n = n + 1 WHERE id = :i"),
                               {"i": i})
            await conn.commit()
            await conn.close()
        self.cpu_s += time.process_time() - cpu
        self.times.append(t[0])
        self.trips.append(counter.count - trips)


FLOOR_EVERY = 3
#: The back-to-back floor: HOT_BURSTS bursts of HOT_BURST transactions over the run.
HOT_BURSTS, HOT_BURST = 10, 50


class RoundTrips:
    """Counts the database round trips of the engine (SQLAlchemy event listeners): every
    statement the driver runs (an executemany counts once; SQLite's ``BEGIN IMMEDIATE`` is a
    statement), every COMMIT, and on PostgreSQL the pool's reset of a returned connection and
    the BEGIN asyncpg sends itself. ``sql_s``: the time inside statements."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event
        self._events = 0
        sync = engine.sync_engine
        self.sqlite = sync.dialect.name == "sqlite"

        self.sql_s = 0.0
        started: list[float] = []

        def bump(*_: Any, **__: Any) -> None:
            self._events += 1

        def before(*_: Any, **__: Any) -> None:
            self._events += 1
            started.append(time.perf_counter())

        def after(*_: Any, **__: Any) -> None:
            if started:
                self.sql_s += time.perf_counter() - started.pop()

        event.listen(sync, "before_cursor_execute", before)
        event.listen(sync, "after_cursor_execute", after)
        event.listen(sync, "commit", bump)
        if not self.sqlite:  # SQLite's pool rolls back only a connection left in a transaction
            event.listen(sync.pool, "reset", bump)
            event.listen(sync, "begin", bump)

    @property
    def count(self) -> int:
        return self._events


async def lifecycle(core: Any, clock: ManualClock, n: int,
                    trips: dict[str, list[int]] | None = None,
                    tag: str = "", floor: Floor | None = None,
                    hot: Floor | None = None) -> dict[str, list[float]]:
    """open → ack → answer → close for ``n`` requests; ``trips`` gets each command's round
    trips and time in SQL, and ``trips["cpu_s"]`` the CPU seconds of the commands."""
    settings, desk = core.settings, core.desk
    counter = RoundTrips(core.engine)
    actors = {slug: actor(settings, slug) for slug in EXAMPLE}
    times: dict[str, list[float]] = {"open": [], "ack": [], "answer": [], "close": []}
    ids: list[tuple[int, str, str]] = []
    event = 0
    failures: list[str] = []

    async def run(verb: str, slug: str, line: str) -> Any:
        nonlocal event
        event += 1
        clock.set(clock.now() + timedelta(milliseconds=50))
        before, sql_before, cpu = counter.count, counter.sql_s, time.process_time()
        with b.stopwatch() as t:
            outcome = await desk.handle_command(actors[slug], line, event_id=f"bench-{tag}{event}",
                                                reply_in_room=True)
        times[verb].append(t[0])
        if trips is not None:  # the command's own, before any floor transaction runs
            trips.setdefault("cpu_s", [0])[0] += time.process_time() - cpu  # type: ignore
            trips.setdefault(verb, []).append(counter.count - before)
            trips.setdefault(f"{verb}:sql_us", []).append(
                round((counter.sql_s - sql_before) * 1e6))
        if floor is not None and event % FLOOR_EVERY == 0:
            await floor.once(counter)
        if hot is not None and event % max(1, 4 * n // HOT_BURSTS) == 0:
            for _ in range(HOT_BURST):
                await hot.once(counter)
        if outcome is None or not outcome.ok:
            failures.append(f"{line!r}: {outcome.reply.text if outcome else 'replayed'}")
        return outcome

    for i in range(n):
        origin, target = PAIRS[i % len(PAIRS)]
        options = ""
        if i % 10 == 3:  # confidential: only between offices that list members (else refused)
            origin, target = CONFIDENTIAL_PAIRS[(i // 10) % 2]
            options = " conf:confidential"
        options += " urgent" if i % 20 == 7 else ""
        outcome = await run("open", origin, f"open CASE-{i % 500:04d}/26 to:{target} "
                            f"kind:evidence{options} Bank records for account {i}")
        ids.append((outcome.request_id, origin, target))
    for rid, _origin, target in ids:
        await run("ack", target, f"ack R-{rid} eta:10d On it")
    for rid, _origin, target in ids:
        await run("answer", target, f"answer R-{rid} Records attached in the secure channel.")
    for rid, origin, _target in ids:
        await run("close", origin, f"close R-{rid} Thank you")
    if failures:
        print(f"!! {len(failures)} commands failed, first: {failures[0]}")
    return times


async def timed_command(core: Any, cap: b.Capture, who: Actor, line: str
                        ) -> tuple[list[float], Any, list[Any]]:
    times: list[float] = []
    outcome: Any = None
    statements: list[Any] = []
    for _ in range(REPEAT):
        with cap.recording() as recorded, b.stopwatch() as t:
            outcome = await core.desk.handle_command(who, line, reply_in_room=True)
        times.append(t[0])
        statements = recorded
    return times, outcome, statements


async def raw_time(engine: Any, statement: str, params: Any) -> tuple[list[float], int]:
    times, count = [], 0
    for _ in range(REPEAT):
        with b.stopwatch() as t:
            async with engine.connect() as conn:
                count = len((await conn.exec_driver_sql(statement, params)).all())
        times.append(t[0])
    return times, count


async def run_backend(backend: str, n: int, rows: int, case_size: int) -> dict[str, Any]:
    out: dict[str, Any] = {"backend": backend}
    async with b.fresh_database(backend) as db:
        settings = b.bench_settings(db.url)
        clock = ManualClock(START)
        core = await build_core(settings, clock=clock, migrate=False)
        cap = b.Capture(core.engine)
        try:
            print(f"\n===== {backend}: {db.name}")
            # ---- 1. lifecycle
            # CPU seconds of this process (all its threads) as well as wall time: other
            # jobs on a shared machine move the wall figures, much less these.
            bare = Floor(core.engine)
            await bare.setup()
            # The same floor back to back (the way earlier rounds of this benchmark measured
            # it, all before the commands): a thread kept hot, so a lower figure. Here in
            # bursts of HOT_BURST spread over the run, so one quiet or busy moment of the
            # machine does not make the figure.
            hot = Floor(core.engine, first_id=10_000_000)
            trips: dict[str, list[int]] = {}
            with b.stopwatch() as wall:
                times = await lifecycle(core, clock, n, trips, floor=bare, hot=hot)
            floor = bare.times
            floor_cpu_ms = bare.cpu_s / len(floor) * 1e3
            command_cpu_ms = trips.pop("cpu_s")[0] / (4 * n) * 1e3
            floor_trips = sorted(bare.trips)[len(bare.trips) // 2]
            commands = sum(len(v) for v in times.values())
            busy_s = sum(sum(v) for v in times.values())  # the commands' own time
            async with core.engine.connect() as conn:
                outbox = (await conn.exec_driver_sql("SELECT count(*) FROM outbox")).scalar()
                history = (await conn.exec_driver_sql("SELECT count(*) FROM history")).scalar()
            fl = b.summary(floor)
            print(f"\n-- lifecycle: {n:,} requests, {commands:,} commands in {wall[0]:.1f}s "
                  f"(with a floor transaction after every {FLOOR_EVERY}rd) "
                  f"({commands / busy_s:,.0f} commands/s); {outbox:,} outbox rows and "
                  f"{history:,} history rows written; peak RSS {b.maxrss_mb():.0f} MB")
            print(f"-- floor: bare INSERT+UPDATE transaction, {fl['n']:,} runs between the "
                  f"commands: "
                  f"p50 {fl['p50_ms']:.3f} ms, p99 {fl['p99_ms']:.3f} ms, "
                  f"{1e3 / fl['mean_ms']:,.0f} tx/s")
            print(f"-- CPU of the process: {command_cpu_ms:.3f} ms per command, "
                  f"{floor_cpu_ms:.3f} ms per floor transaction "
                  f"({command_cpu_ms / floor_cpu_ms:.1f}×)\n")
            rows_out = []
            per_verb: dict[str, Any] = {}
            for verb, values in times.items():
                s = b.summary(values)
                rt = sorted(trips.get(verb, [0]))[len(trips.get(verb, [0])) // 2]
                sql_ms = b.pct([float(v) for v in trips.get(f"{verb}:sql_us", [0])], 0.5) / 1e3
                per_verb[verb] = {**s, "per_s": len(values) / s["total_s"],
                                  "x_floor_p50": s["p50_ms"] / fl["p50_ms"], "round_trips": rt,
                                  "sql_p50_ms": sql_ms}
                rows_out.append((verb, len(values), len(values) / s["total_s"], s["p50_ms"],
                                 s["p99_ms"], s["p50_ms"] / fl["p50_ms"], rt, sql_ms))
            all_times = [t for v in times.values() for t in v]
            s = b.summary(all_times)
            rows_out.append(("all", len(all_times), len(all_times) / s["total_s"], s["p50_ms"],
                             s["p99_ms"], s["p50_ms"] / fl["p50_ms"], "", ""))
            rows_out.append(("floor tx", fl["n"], 1e3 / fl["mean_ms"], fl["p50_ms"],
                             fl["p99_ms"], 1.0, floor_trips, ""))
            hf = b.summary(hot.times)
            rows_out.append(("floor b2b", hf["n"], 1e3 / hf["mean_ms"], hf["p50_ms"],
                             hf["p99_ms"], hf["p50_ms"] / fl["p50_ms"], floor_trips, ""))
            b.table(rows_out, ("verb", "count", "per s", "p50 ms", "p99 ms", "p50 / floor",
                               "round trips", "in SQL p50 ms"))
            print(f"-- all commands' p50 against the back-to-back floor's: "
                  f"{b.summary(all_times)['p50_ms'] / hf['p50_ms']:.2f}×")
            out["lifecycle"] = {"requests": n, "commands": commands, "wall_s": wall[0],
                                "commands_per_s": commands / busy_s, "per_verb": per_verb,
                                "floor": fl, "floor_back_to_back": hf,
                                "x_floor_back_to_back_p50": b.summary(
                                    [t for v in times.values() for t in v])["p50_ms"]
                                / hf["p50_ms"], "outbox_rows": outbox, "history_rows": history,
                                "maxrss_mb": b.maxrss_mb(), "cpu_ms_per_command": command_cpu_ms,
                                "floor_cpu_ms_per_tx": floor_cpu_ms}

            # ---- 2. big table
            if rows <= 0:
                return out
            maker = b.RowMaker(settings)
            icc = settings.directory.office(LIST_OFFICE)


            with b.stopwatch() as load:
                inserted = await b.bulk_insert(db, maker.generate(rows))
                inserted += await b.bulk_insert(db, maker.one_case(BIG_CASE, icc, case_size))
            st = maker.stats
            print(f"\n-- bulk load: {inserted:,} rows in {load[0]:.1f}s "
                  f"({inserted / load[0]:,.0f} rows/s); {st.pending:,} pending, "
                  f"{st.overdue:,} of them overdue; case {BIG_CASE}: {case_size:,} requests; "
                  f"peak RSS {b.maxrss_mb():.0f} MB")
            out["bulk"] = {"rows": inserted, "seconds": load[0], "pending": st.pending,
                           "overdue": st.overdue}
            clock.set(b.NOW)  # the bulk rows are laid out around NOW
            who = actor(settings, LIST_OFFICE)
            queries: dict[str, Any] = {}
            result_rows = []
            for label, line, needles in (
                    (f"list {BIG_CASE}", f"list {BIG_CASE}", ("FROM request", "case_ref")),
                    (f"list {BIG_CASE} all", f"list {BIG_CASE} all",
                     ("FROM request", "case_ref")),
                    ("overdue", "overdue", ("FROM request", "due_at"))):
                times_cmd, outcome, statements = await timed_command(core, cap, who, line)
                statement, params = b.Capture.find(statements, *needles)
                raw, count = await raw_time(core.engine, statement, params)
                plan = await b.explain(core.engine, statement, params)
                verdict = b.index_verdict(plan)
                cards = len(outcome.reply.cards) if outcome else 0
                b.print_plan(f"{label} ({LIST_OFFICE})", statement, plan, verdict)
                cmd_p50, raw_p50 = b.pct(times_cmd, 0.5) * 1e3, b.pct(raw, 0.5) * 1e3
                result_rows.append((label, count, cards, cmd_p50, max(times_cmd) * 1e3,
                                    raw_p50, cmd_p50 / raw_p50,
                                    "yes" if verdict[0] else "no"))
                queries[label] = {"command_p50_ms": cmd_p50, "command_max_ms": max(times_cmd) * 1e3,
                                  "sql_p50_ms": raw_p50, "rows": count, "cards": cards,
                                  "uses_index": verdict[0], "index": verdict[1],
                                  "plan": plan, "sql": " ".join(statement.split())}
            # The same overdue query with the pending filter written as the partial indexes'
            # own predicate (literal, in the same order) — see the README's findings.
            R = RequestRow.__table__
            from sqlalchemy import select

            async with core.engine.connect() as conn:
                with cap.recording() as statements:
                    query = select(R).where(R.c.requested == LIST_OFFICE, text(PENDING_SQL),
                                            R.c.due_at <= clock.now()).union_all(
                        select(R).where(R.c.requesting == LIST_OFFICE, text(PENDING_SQL),
                                        R.c.due_at <= clock.now()))
                    await conn.execute(query)
            statement, params = b.Capture.find(statements, "FROM request", "due_at")
            raw, count = await raw_time(core.engine, statement, params)
            plan = await b.explain(core.engine, statement, params)
            verdict = b.index_verdict(plan)
            b.print_plan("overdue, pending filter as literal PENDING_SQL (proposed fix)",
                         statement, plan, verdict)
            result_rows.append(("overdue SQL w/ literal PENDING_SQL", count, "-", "-", "-",
                                b.pct(raw, 0.5) * 1e3, "-", "yes" if verdict[0] else "no"))
            queries["overdue_literal_pending_sql"] = {
                "sql_p50_ms": b.pct(raw, 0.5) * 1e3, "rows": count, "uses_index": verdict[0],
                "index": verdict[1], "plan": plan}
            print(f"\n-- {LIST_OFFICE} over {inserted + n:,} requests (median of {REPEAT}; floor "
                  "= the captured SQL alone, fetched raw)\n")
            b.table(result_rows, ("command", "rows", "cards", "cmd p50 ms", "cmd max ms",
                                  "SQL p50 ms", "cmd / SQL", "index"))
            out["queries"] = queries
            out["maxrss_mb"] = b.maxrss_mb()
        finally:
            await core.close()
    return out


async def worker(url: str, n: int, floor: bool) -> None:
    """One replica (a process of its own): the lifecycle of N requests, or N bare floor
    transactions, against ``url``; prints its count and wall time as JSON."""
    import json
    import time

    settings = b.bench_settings(url)
    clock = ManualClock(START)
    core = await build_core(settings, clock=clock, migrate=False)
    try:
        if floor:
            async with core.engine.begin() as conn:  # the table, and a warm connection
                await conn.execute(text("CREATE TABLE IF NOT EXISTS bench_floor (id BIGINT "
                                        "PRIMARY KEY, n INTEGER NOT NULL, note TEXT NOT NULL)"))
            began = time.perf_counter()
            done = len(await floor_tx_offset(core.engine, n))
        else:
            began = time.perf_counter()
            import secrets
            times = await lifecycle(core, clock, n, tag=secrets.token_hex(4))
            done = sum(len(v) for v in times.values())
        wall = time.perf_counter() - began
    finally:
        await core.close()
    print(json.dumps({"count": done, "wall_s": wall}))


async def floor_tx_offset(engine: Any, count: int) -> list[float]:
    """Bare INSERT+UPDATE transactions on ids no other replica uses (random 62-bit ids)."""
    import secrets

    times: list[float] = []
    for _ in range(count):
        key = secrets.randbits(62)
        with b.stopwatch() as t:
            conn = await engine.connect()
            await conn.begin()
            await conn.execute(text("INSERT INTO bench_floor (id, n, note) VALUES (:i, 0, 'r')"),
                               {"i": key})
            await conn.execute(text("UPDATE bench_floor SET n = n + 1 WHERE id = :i"),
                               {"i": key})
            await conn.commit()
            await conn.close()
        times.append(t[0])
    return times


async def replicas(n: int, rounds: int = 3) -> dict[str, Any]:
    """PostgreSQL, replicas writing at once: N requests' lifecycle in one process alone, then
    in two processes at the same time (each its own N requests); commands/s of all and the
    scaling factor 1 → 2. The same for bare INSERT+UPDATE transactions (the floor: what the
    machine and the database scale to, whatever the application does)."""
    import json

    async def spawn(url: str, count: int, floor: bool) -> Any:
        args = [sys.executable, __file__, "--worker-url", url, "--n", str(count)]
        if floor:
            args.append("--worker-floor")
        return await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE)

    async def run(url: str, count: int, floor: bool, processes: int) -> tuple[float, float]:
        """Commands (or transactions) per second of all processes together, and the share
        of samples (every 5 ms) in which some backend waited for a lock."""
        import asyncpg

        watcher = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        samples, waiting = 0, 0
        procs = [await spawn(url, count, floor) for _ in range(processes)]
        pending = [asyncio.ensure_future(p.communicate()) for p in procs]
        while not all(task.done() for task in pending):
            samples += 1
            waiting += bool(await watcher.fetchval(
                "SELECT count(*) FROM pg_locks WHERE NOT granted"))
            await asyncio.sleep(0.005)
        await watcher.close()
        outs = [json.loads(task.result()[0].decode().strip().splitlines()[-1])
                for task in pending]
        rate = sum(o["count"] for o in outs) / max(o["wall_s"] for o in outs)
        return rate, waiting / max(samples, 1)

    out: dict[str, Any] = {}
    async with b.fresh_database("postgres") as db:
        async with b.fresh_database("postgres") as floor_db:
            rows = []
            for label, url, floor, count in (("commands", db.url, False, n),
                                             ("floor tx", floor_db.url, True, n * 4)):
                ones, twos, waits = [], [], []
                for _ in range(rounds):  # alternate, median: the machine is shared
                    ones.append((await run(url, count, floor, 1))[0])
                    rate, waited = await run(url, count, floor, 2)
                    twos.append(rate)
                    waits.append(waited)
                one, two = b.pct(ones, 0.5), b.pct(twos, 0.5)
                out[label] = {"one_per_s": one, "two_per_s": two, "scaling": two / one,
                              "runs_one": ones, "runs_two": twos,
                              "lock_wait_share_two": b.pct(waits, 0.5)}
                rows.append((label, one, two, two / one, b.pct(waits, 0.5) * 100))
            print(f"\n-- PostgreSQL, replicas writing at once ({n:,} requests' lifecycle each; "
                  f"floor: {n * 4:,} bare INSERT+UPDATE transactions each; median of {rounds} "
                  "alternating runs)\n")
            b.table(rows, ("work", "1 process /s", "2 processes /s", "scaling",
                           "% samples with a lock wait (2 processes)"))
    return out


async def main() -> None:
    parser = b.base_args(__doc__.split("\n")[0], 2_500)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--case-size", type=int, default=1_000)
    parser.add_argument("--replicas", action="store_true",
                        help="PostgreSQL: one process, then two writing at once (scaling)")
    parser.add_argument("--worker-url", help=argparse.SUPPRESS)
    parser.add_argument("--worker-floor", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker_url:
        await worker(args.worker_url, args.n, args.worker_floor)
        return
    if args.replicas:
        b.finish("desk-replicas", {"n": args.n, "replicas": await replicas(args.n)})
        return
    results: dict[str, Any] = {"n": args.n, "rows": args.rows, "case_size": args.case_size}
    for backend in b.backends(args.backend):
        with b.stopwatch() as t:
            results[backend] = await run_backend(backend, args.n, args.rows, args.case_size)
        results[backend]["wall_s"] = t[0]
        print(f"\n===== {backend} done in {t[0]:.0f}s")
    b.finish("desk", results)


if __name__ == "__main__":
    asyncio.run(main())
