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
        finally:
            await core.close()
    return out


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
