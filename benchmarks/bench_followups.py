"""Issue 5: the follow-up tick's scan + claim over a big table.

    .venv/bin/python benchmarks/bench_followups.py [--backend sqlite|postgres|both] [--n N]
        [--rows ROWS]

ROWS requests (default 1,000,000) are bulk-inserted, valid for the domain, N of them
(default 10,000) owing a nudge at NOW (next_nudge_at <= NOW, their requested office open at
NOW); every other pending request is caught up (next_nudge_at in the future or none). Then:

* Ticker.nudges(NOW): claims, records history, writes outbox rows (its SQL captured and timed
  by statement kind); the claim query's plan (captured from a rolled-back dry claim in the
  same state, EXPLAIN QUERY PLAN / EXPLAIN (ANALYZE, BUFFERS)) must use ix_request_next_nudge;
* putting N nudge posts into the outbox on their own (SqlOutbox.add, 500 per transaction);
* floor: a plain SELECT of the same N rows by primary key, 500 ids per transaction.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as b
from sqlalchemy import bindparam, text

from liaisonbot.bootstrap import build_core
from liaisonbot.domain.cards import Post
from liaisonbot.service.ports import ManualClock

DUE_SQL = ("SELECT id FROM request WHERE next_nudge_at IS NOT NULL AND next_nudge_at <= :now "
           "ORDER BY id")


async def due_ids(engine: Any) -> list[int]:
    async with engine.connect() as conn:
        rows = await conn.execute(text(DUE_SQL), {"now": b.NOW.replace(tzinfo=None)})
        return [r[0] for r in rows]


async def floor_select(engine: Any, ids: list[int], batch: int) -> tuple[float, int]:
    query = text("SELECT * FROM request WHERE id IN :ids").bindparams(
        bindparam("ids", expanding=True))
    fetched = 0
    with b.stopwatch() as t:
        for i in range(0, len(ids), batch):
            async with engine.connect() as conn:
                fetched += len((await conn.execute(query, {"ids": ids[i:i + batch]})).all())
                await conn.commit()
    return t[0], fetched


async def run_backend(backend: str, n: int, rows: int) -> dict[str, Any]:
    out: dict[str, Any] = {"backend": backend}
    async with b.fresh_database(backend) as db:
        settings = b.bench_settings(db.url)
        clock = ManualClock(b.NOW)
        core = await build_core(settings, clock=clock, migrate=False)
        cap = b.Capture(core.engine)
        batch = core.ticker.batch
        try:
            print(f"\n===== {backend}: {db.name}")
            maker = b.RowMaker(settings)
            with b.stopwatch() as load:
                inserted = await b.bulk_insert(db, maker.generate(rows, due_now=n))
            st = maker.stats
            now_text = b.NOW.strftime("%a %Y-%m-%d %H:%M")
            print(f"-- bulk load: {inserted:,} rows in {load[0]:.1f}s "
                  f"({inserted / load[0]:,.0f} rows/s); {st.pending:,} pending "
                  f"({st.overdue:,} overdue), {st.due_now:,} owe a nudge at {now_text} UTC; "
                  f"{len(maker.open_now)}/{len(maker.offices)} offices open then; "
                  f"peak RSS {b.maxrss_mb():.0f} MB")
            ids = await due_ids(core.engine)
            print(f"-- rows with next_nudge_at <= NOW: {len(ids):,}")
            out["bulk"] = {"rows": inserted, "seconds": load[0], "pending": st.pending,
                           "overdue": st.overdue, "due_now": len(ids)}

            # The claim query, captured from a dry claim that is rolled back, explained in
            # the same state the tick starts from.
            async with core.uow() as uow:
                with cap.recording() as statements:
                    claimed = await uow.requests.claim_nudges(b.NOW, batch)
            claim_sql, claim_params = b.Capture.find(statements, "FROM request",
                                                     "next_nudge_at")
            plan = await b.explain(core.engine, claim_sql, claim_params)
            verdict = b.index_verdict(plan, want="ix_request_next_nudge")
            b.print_plan(f"claim_nudges(NOW, {batch}) — dry run claimed {len(claimed)}",
                         claim_sql, plan, verdict)

            floor_s, fetched = await floor_select(core.engine, ids, batch)

            with cap.recording() as statements, b.stopwatch() as tick:
                queued = await core.ticker.nudges(b.NOW)
            kinds = b.Capture.by_kind(statements)
            same = any(" ".join(s.split()) == " ".join(claim_sql.split())
                       for s, _p, _t in statements)
            left = len(await due_ids(core.engine))
            async with core.engine.connect() as conn:
                outbox = (await conn.exec_driver_sql("SELECT count(*) FROM outbox")).scalar()
                history = (await conn.exec_driver_sql(
                    "SELECT count(*) FROM history WHERE action = 'nudged'")).scalar()
                posts = [Post.from_json(r[0]) for r in (await conn.exec_driver_sql(
                    "SELECT post FROM outbox ORDER BY id")).all()][:n]
                rooms = [r[0] for r in (await conn.exec_driver_sql(
                    "SELECT room FROM outbox ORDER BY id")).all()][:n]
            rss_tick = b.maxrss_mb()

            # Putting N nudge posts into the outbox on their own, 500 per transaction.
            with b.stopwatch() as put:
                for i in range(0, len(posts), batch):
                    async with core.uow() as uow:
                        for room, post in zip(rooms[i:i + batch], posts[i:i + batch],
                                              strict=True):
                            await uow.outbox.add(platform="console", room=room, post=post,
                                                 request_id=post.request_id, at=b.NOW)
                        await uow.commit()

            print(f"\n-- Ticker.nudges(NOW): {len(ids):,} due, {history:,} nudges recorded, "
                  f"{queued:,} posts queued ({outbox:,} outbox rows), {left} still due after; "
                  f"captured claim SQL identical to the explained one: "
                  f"{'yes' if same else 'no'}; peak RSS {rss_tick:.0f} MB\n")
            table_rows = [
                ("Ticker.nudges (claim+history+outbox)", len(ids), tick[0], len(ids) / tick[0],
                 tick[0] / floor_s),
                (f"outbox.add x{len(posts):,} alone", len(posts), put[0], len(posts) / put[0],
                 put[0] / floor_s),
                (f"floor: SELECT by id, {batch}/tx", fetched, floor_s, fetched / floor_s, 1.0)]
            b.table(table_rows, ("step", "rows", "seconds", "rows/s", "x floor"))
            print("\n-- SQL time inside Ticker.nudges by statement (round trip as seen by "
                  "SQLAlchemy)\n")
            b.table(sorted(((k, v["count"], v["seconds"], v["seconds"] / tick[0] * 100)
                            for k, v in kinds.items()), key=lambda r: -r[2]),
                    ("statement", "count", "seconds", "% of nudges"))
            out.update({
                "nudges": {"seconds": tick[0], "due": len(ids), "nudged": history,
                           "queued": queued, "left_due": left, "per_s": len(ids) / tick[0],
                           "x_floor": tick[0] / floor_s, "sql_by_kind": kinds,
                           "maxrss_mb": rss_tick},
                "outbox_put": {"posts": len(posts), "seconds": put[0],
                               "per_s": len(posts) / put[0], "x_floor": put[0] / floor_s},
                "floor_select": {"rows": fetched, "seconds": floor_s},
                "claim_plan": plan, "claim_uses_index": verdict[0], "claim_index": verdict[1],
                "claim_sql": " ".join(claim_sql.split()), "claim_sql_same_as_run": same,
                "maxrss_mb": b.maxrss_mb()})
            out["weekly"] = await weekly_report(core, clock, backend)
        finally:
            await core.close()
    return out


REPORT_OFFICE = "icc-otp"
REPORT_ACTIONS = ("acknowledged", "answered", "marked incomplete", "completed", "declined",
                  "withdrawn")
#: The floor of the weekly report: the office's requests and their history entries of the
#: actions the figures read, each in one indexed statement, fetched raw.
FLOOR_REQUESTS = ("SELECT * FROM request WHERE requested = :o UNION ALL "
                  "SELECT * FROM request WHERE requesting = :o")
FLOOR_HISTORY = ("SELECT * FROM history WHERE action IN ({actions}) AND request_id IN "
                 "(SELECT id FROM request WHERE requested = :o UNION ALL "
                 "SELECT id FROM request WHERE requesting = :o) ORDER BY id").format(
    actions=", ".join(f"'{a}'" for a in REPORT_ACTIONS))


async def weekly_report(core: Any, clock: ManualClock, backend: str) -> dict[str, Any]:
    """The weekly report of one office over the whole table: a history for the bulk rows is
    written first (an ``acknowledged`` entry for every request past ``open``, an ``answered``
    one for the answered and closed; unsealed, the report does not verify), then the office's
    report is queued by the real ``Ticker.reports`` at its Monday opening."""
    from datetime import date, timedelta

    with b.stopwatch() as load:
        async with core.engine.begin() as conn:
            if backend == "postgres":  # ids the application assigned (before 0005) skipped
                await conn.exec_driver_sql(
                    "SELECT setval(pg_get_serial_sequence('history', 'id'), "
                    "GREATEST((SELECT max(id) FROM history), 1))")
            for action, at, where in (("acknowledged", "created_at", "status <> 'open'"),
                                      ("answered", "updated_at",
                                       "status IN ('answered', 'closed')")):
                await conn.execute(text(
                    "INSERT INTO history (request_id, at, actor, platform, action, detail, "
                    f"prev_hash, hash) SELECT id, {at}, 'bench', 'console', '{action}', '{{}}', "
                    f"'', '' FROM request WHERE {where}"))
            if backend == "postgres":
                await conn.exec_driver_sql("ANALYZE history")
        async with core.engine.connect() as conn:
            entries = (await conn.exec_driver_sql("SELECT count(*) FROM history")).scalar()
    office = core.settings.directory.office(REPORT_OFFICE)
    monday = date(2026, 11, 30)
    clock.set(office.calendar.opening(monday) + timedelta(minutes=5))
    core.ticker.weekly = frozenset({REPORT_OFFICE})
    with b.stopwatch() as took:
        queued = await core.ticker.reports(clock.now())
    floor_s, counts = 0.0, []
    for statement in (FLOOR_REQUESTS, FLOOR_HISTORY):
        with b.stopwatch() as t:
            async with core.engine.connect() as conn:
                counts.append(len((await conn.execute(text(statement), {"o": REPORT_OFFICE})
                                   ).all()))
        floor_s += t[0]
    print(f"\n-- weekly report of {REPORT_OFFICE} over every request it is party to "
          f"({counts[0]:,} requests, {counts[1]:,} of its {entries:,} history entries read; "
          f"history written in {load[0]:.1f}s)\n")
    b.table([("Ticker.reports (one office)", queued, took[0], took[0] / floor_s),
             ("floor: its two SELECTs raw", counts[0] + counts[1], floor_s, 1.0)],
            ("step", "posts", "seconds", "x floor"))
    return {"office": REPORT_OFFICE, "requests": counts[0], "entries_read": counts[1],
            "history_rows": entries, "seconds": took[0], "floor_s": floor_s,
            "x_floor": took[0] / floor_s, "queued": queued}


async def main() -> None:
    parser = b.base_args(__doc__.split("\n")[0], 10_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    results: dict[str, Any] = {"n": args.n, "rows": args.rows}
    for backend in b.backends(args.backend):
        with b.stopwatch() as t:
            results[backend] = await run_backend(backend, args.n, args.rows)
        results[backend]["wall_s"] = t[0]
        print(f"\n===== {backend} done in {t[0]:.0f}s")
    b.finish("followups", results)


if __name__ == "__main__":
    asyncio.run(main())
