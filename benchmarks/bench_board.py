"""Issue 15: the case board's case page over a big table, in server time.

    .venv/bin/python benchmarks/bench_board.py [--backend sqlite|postgres|both] [--n N]
        [--rows ROWS] [--case-size K]

ROWS requests (default 1,000,000) are bulk-loaded over 40 offices, plus one case of K (default
1,000) requests that icc-otp is party to. The board is served on loopback (aiohttp, the real
handlers, a sealed session cookie for an icc-otp member: the sign-in itself is not timed) and
GET /board/icc-otp/case?ref=CASE is asked N times (default 50). Reported: the handler's own
time (its Server-Timing header: session check, SQL, need-to-know, template), the client's
round trip, and the floor: the page's captured SQL alone, fetched raw on the same engine, with
its plan and "uses index: yes/no" (a page is 250 requests, most urgent first, plus a count
for "Requests 1–250 of 1,000"; the floor is both statements). Also shown, for information: a filtered case page, the
office's cases page and the partners page (those two group over every request of the office).
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp
import common as b

from liaisonbot.board.session import SESSION_COOKIE, Sealer
from liaisonbot.bootstrap import build_core
from liaisonbot.config import WebSettings
from liaisonbot.service.ports import ManualClock
from liaisonbot.web import build_web, start_web

BIG_CASE = "BIG-0001/26"
OFFICE = "icc-otp"
SESSION_KEY = "yNp3Zf0cQ3x0Rk1wE6o4m1mJm5b0Z2d2V4c4b3a2Y1U="  # benchmark only


def _web(port: int) -> WebSettings:
    return WebSettings(enabled=True, base_url=f"http://127.0.0.1:{port}",
                       oidc_issuer="http://127.0.0.1:9", client_id="liaisonbot",
                       client_secret="bench", session_key=SESSION_KEY)


async def _timed_gets(http: aiohttp.ClientSession, url: str, n: int, cookie: str
                      ) -> tuple[list[float], list[float], str]:
    server, client, body = [], [], ""
    for _ in range(n):
        started = time.perf_counter()
        async with http.get(url, headers={"Cookie": f"{SESSION_COOKIE}={cookie}"},
                            allow_redirects=False) as response:
            body = await response.text()
            assert response.status == 200, (response.status, body[:200])
            client.append(time.perf_counter() - started)
            server.append(float(response.headers["Server-Timing"].split("dur=")[1]) / 1e3)
    return server, client, body


async def _raw(engine: Any, statement: str, params: Any, n: int) -> list[float]:
    times = []
    for _ in range(n):
        with b.stopwatch() as t:
            async with engine.connect() as conn:
                (await conn.exec_driver_sql(statement, params)).all()
        times.append(t[0])
    return times


async def run_backend(backend: str, n: int, rows: int, case_size: int) -> dict[str, Any]:
    out: dict[str, Any] = {"backend": backend}
    async with b.fresh_database(backend) as db:
        port = b_free_port()
        settings = dataclasses.replace(b.bench_settings(db.url), web=_web(port))
        clock = ManualClock(b.NOW)
        core = await build_core(settings, clock=clock, migrate=False)
        cap = b.Capture(core.engine)
        runner = await start_web(build_web(core), "127.0.0.1", port)
        try:
            print(f"\n===== {backend}: {db.name}")
            maker = b.RowMaker(settings)
            icc = settings.directory.office(OFFICE)


            with b.stopwatch() as load:
                inserted = await b.bulk_insert(db, maker.generate(rows))
                inserted += await b.bulk_insert(db, maker.one_case(BIG_CASE, icc, case_size))
            if backend == "postgres":
                async with core.engine.begin() as conn:
                    await conn.exec_driver_sql("ANALYZE request")
            print(f"-- bulk load: {inserted:,} rows in {load[0]:.1f}s; case {BIG_CASE}: "
                  f"{case_size:,} requests")
            out["rows"] = inserted
            cookie = Sealer(SESSION_KEY, clock).seal(
                {"sub": "bench", "offices": [OFFICE], "ids": ["matrix:@alice:icc.example"]},
                timedelta(hours=1))
            base = f"http://127.0.0.1:{port}/board/{OFFICE}"
            pages = (("case page", f"/case?ref={BIG_CASE}"),
                     ("case page 4 (last)", f"/case?ref={BIG_CASE}&page=4"),
                     ("case page, status=open", f"/case?ref={BIG_CASE}&status=open"),
                     ("cases page (info)", "/"), ("partners page (info)", "/partners"))
            table_rows = []
            async with aiohttp.ClientSession() as http:
                await _timed_gets(http, base + pages[0][1], 3, cookie)  # warm up
                for label, path in pages:
                    count = n if "info" not in label else max(3, n // 10)
                    with cap.recording() as statements:
                        server, client, body = await _timed_gets(http, base + path, count,
                                                                 cookie)
                    shown = body.count("<tr") - 1
                    entry = {"server_p50_ms": b.pct(server, 0.5) * 1e3,
                             "server_p99_ms": b.pct(server, 0.99) * 1e3,
                             "client_p50_ms": b.pct(client, 0.5) * 1e3, "rows_shown": shown,
                             "statements_per_page": len(statements) // count}
                    floor_p50: float | str = "-"
                    verdict = "-"
                    if label.startswith("case page"):
                        statement, params = b.Capture.find(statements, "FROM request",
                                                           "ORDER BY")
                        counting = b.Capture.find(statements, "count(", "FROM request")
                        raw = [a + c for a, c in zip(
                            await _raw(core.engine, statement, params, count),
                            await _raw(core.engine, *counting, count), strict=True)]
                        plan = await b.explain(core.engine, statement, params)
                        ok, why = b.index_verdict(plan)
                        b.print_plan(label, statement, plan, (ok, why))
                        floor_p50 = b.pct(raw, 0.5) * 1e3
                        verdict = "yes" if ok else "no"
                        entry.update(floor_sql_p50_ms=floor_p50, uses_index=ok, index=why,
                                     plan=plan)
                    out[label] = entry
                    table_rows.append((label, shown, entry["statements_per_page"],
                                       entry["server_p50_ms"], entry["server_p99_ms"],
                                       entry["client_p50_ms"], floor_p50, verdict))
            print(f"\n-- {OFFICE} over {inserted:,} requests ({n} asks per case page; "
                  "floor = the page's SQL alone, fetched raw)\n")
            b.table(table_rows, ("page", "rows", "SQL/page", "server p50 ms",
                                 "server p99 ms", "client p50 ms", "floor SQL p50 ms",
                                 "index"))
        finally:
            await runner.cleanup()
            await core.close()
    return out


def b_free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def main() -> None:
    parser = b.base_args(__doc__.split("\n")[0], 50)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--case-size", type=int, default=1_000)
    args = parser.parse_args()
    results: dict[str, Any] = {"n": args.n, "rows": args.rows, "case_size": args.case_size}
    for backend in b.backends(args.backend):
        with b.stopwatch() as t:
            results[backend] = await run_backend(backend, args.n, args.rows, args.case_size)
        results[backend]["wall_s"] = t[0]
        print(f"\n===== {backend} done in {t[0]:.0f}s")
    b.finish("board", results)


if __name__ == "__main__":
    asyncio.run(main())
