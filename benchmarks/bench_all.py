"""Issue 16's figures in one command, each beside its floor, in one summary table.

    .venv/bin/python benchmarks/bench_all.py [--full] [--only desk,replicas,followups,posts,slack,memory]
        [--backend sqlite|postgres|both] [--slack-runs 5]

Runs the existing scripts one after the other (each in its own process, output passed
through), reads the JSON each prints as its last line, and prints one table at the end:

* ``desk``      bench_desk.py: commands/s and p50/p99 per verb, SQLite and PostgreSQL, beside a
                bare INSERT+UPDATE transaction (and the replica figures, when the script has them);
* ``followups`` bench_followups.py: the follow-up tick's nudges/s beside a SELECT-by-id floor
                (and the weekly report, when the script has it);
* ``replicas``  bench_desk.py --replicas (when the script has it): writes/s, two processes vs one;
* ``posts``     bench_outbox.py / bench_posts.py / bench_delivery.py, whichever exists: posts/s;
* ``slack``     bench_slack.py, ``--slack-runs`` times: p99 ack latency at 50 concurrent signed
                commands beside a bare Bolt app (goal ≤ 1.5× in every run);
* ``memory``    bench_memory.py: peak RSS after a day beside the floor (goal ≤ 150 MB).

Modest sizes by default (minutes); ``--full`` uses the issue's (1M rows, 10,000 requests,
100,000 requests in memory: tens of minutes). A script that does not exist is skipped; one that
fails is reported and the others still run. PostgreSQL must be reachable for ``desk`` and
``followups`` (see benchmarks/README.md); ``--backend sqlite`` runs them on SQLite only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

Row = tuple[str, str, str, str, str]  # figure, value, floor, ratio, goal


def run(script: str, args: list[str]) -> tuple[dict[str, Any] | None, str, float]:
    """Run one script, passing its output through; its last JSON line, an error, seconds."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep
           + os.environ.get("PYTHONPATH", "")}
    print(f"\n===== {script} {' '.join(args)}", flush=True)
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(HERE / script), *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    last_json: dict[str, Any] | None = None
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        tail = [*tail, line.rstrip()][-5:]
        if line.startswith("{"):
            try:
                last_json = json.loads(line)
            except json.JSONDecodeError:
                pass
    code = proc.wait()
    seconds = time.perf_counter() - started
    if code != 0:
        return None, f"exit {code}: {' | '.join(tail[-2:])}"[:160], seconds
    return last_json, "" if last_json is not None else "no JSON line", seconds


def _ms(value: Any) -> str:
    return f"{value:,.2f} ms" if isinstance(value, (int, float)) else "–"


def _x(value: Any) -> str:
    return f"{value:.2f}×" if isinstance(value, (int, float)) else "–"


def desk_rows(data: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for backend in ("sqlite", "postgres"):
        life = (data.get(backend) or {}).get("lifecycle") or {}
        floor = life.get("floor") or {}
        for verb, s in (life.get("per_verb") or {}).items():
            rows.append((f"desk {backend} {verb}: p50 (p99), per s, round trips",
                         f"{_ms(s.get('p50_ms'))} ({_ms(s.get('p99_ms'))}), "
                         f"{s.get('per_s', 0):,.0f}/s, {s.get('round_trips', '–')}",
                         _ms(floor.get("p50_ms")), _x(s.get("x_floor_p50")), "p50 ≤ 3×"))
        hot = life.get("floor_back_to_back")
        if hot:  # the same floor run back to back (a hot thread): the lower one
            rows.append((f"desk {backend} all: p50 against the floor back to back", "",
                         _ms(hot.get("p50_ms")), _x(life.get("x_floor_back_to_back_p50")),
                         "(for comparison)"))
        for key, value in (data.get(backend) or {}).items():
            if "replica" in key and isinstance(value, dict):
                rows.append((f"desk {backend} {key}", json.dumps(value, default=str)[:60],
                             "one writer", _x(value.get("scaling") or value.get("ratio")),
                             "≥ 1.6×"))
    return rows


def followups_rows(data: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for backend in ("sqlite", "postgres"):
        part = data.get(backend) or {}
        nudges = part.get("nudges") or {}
        if nudges:
            rows.append((f"tick {backend}: {nudges.get('due', 0):,} nudges over "
                         f"{(part.get('bulk') or {}).get('rows', 0):,} rows",
                         f"{nudges.get('per_s', 0):,.0f}/s ({nudges.get('seconds', 0):.2f} s)",
                         f"{(part.get('floor_select') or {}).get('seconds', 0):.2f} s",
                         _x(nudges.get("x_floor")), "no N+1"))
        for key, value in part.items():
            if "report" in key and isinstance(value, dict):
                rows.append((f"{key} {backend}", json.dumps(value, default=str)[:60], "",
                             _x(value.get("x_floor")), "indexed aggregates"))
    return rows


def replica_rows(data: dict[str, Any]) -> list[Row]:
    """``bench_desk.py --replicas``: writes/s with one process and with two."""
    rows: list[Row] = []
    for what, r in (data.get("replicas") or {}).items():
        if isinstance(r, dict) and "scaling" in r:
            rows.append((f"replicas ({what}): two processes vs one",
                         f"{r.get('two_per_s', 0):,.0f}/s", f"{r.get('one_per_s', 0):,.0f}/s",
                         _x(r["scaling"]), "≥ 1.6×" if what == "commands" else "(floor)"))
    return rows


def posts_rows(data: dict[str, Any]) -> list[Row]:
    """``bench_outbox.py``: posts/s delivered beside its floor."""
    if "posts_per_s" not in data:
        return generic_rows("posts")(data)
    return [(f"posts delivered ({data.get('posts', '?')} into {data.get('rooms', '?')} rooms)",
             f"{data['posts_per_s']:,.0f}/s", f"{data.get('floor_posts_per_s', 0):,.0f}/s",
             _x(data.get("x_floor")), "one transaction per post")]


def generic_rows(name: str) -> Callable[[dict[str, Any]], list[Row]]:
    def rows(data: dict[str, Any]) -> list[Row]:
        flat = {k: v for k, v in data.items() if isinstance(v, (int, float, str))}
        return [(name, json.dumps(flat, default=str)[:80], "(see its output)", "–", "")]
    return rows


def slack_rows(runs: list[dict[str, Any]]) -> list[Row]:
    rows: list[Row] = []
    for i, r in enumerate(runs, 1):
        rows.append((f"Slack ack p99, run {i} ({r['n']} concurrent × {r['rounds']})",
                     _ms(r["ours_p99_ms"]), _ms(r["bare_p99_ms"]), _x(r["ratio_p99"]),
                     "≤ 1.5×" + (" ok" if r["ratio_p99"] <= 1.5 else " MISSED")))
    return rows


def memory_rows(data: dict[str, Any]) -> list[Row]:
    day, floor = data["day"], data["floor"]
    return [(f"peak RSS: {data['rooms']:,} rooms, {data['loaded']:,} requests, a day",
             f"{day['maxrss_mb']:.0f} MB", f"{floor['maxrss_mb']:.0f} MB",
             _x(day["maxrss_mb"] / floor["maxrss_mb"]),
             "≤ 150 MB" + (" ok" if day["maxrss_mb"] <= 150 else " MISSED"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the issue's sizes (slow)")
    parser.add_argument("--only", default="desk,replicas,followups,posts,slack,memory")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--slack-runs", type=int, default=5)
    args = parser.parse_args()
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    full = args.full
    rows: list[Row] = []
    notes: list[str] = []
    spent: dict[str, float] = {}

    def step(name: str, script: str, argv: list[str],
             to_rows: Callable[[dict[str, Any]], list[Row]]) -> dict[str, Any] | None:
        if not (HERE / script).exists():
            notes.append(f"{name}: {script} does not exist here, skipped")
            return None
        data, error, seconds = run(script, argv)
        spent[script] = spent.get(script, 0.0) + seconds
        if data is None:
            notes.append(f"{name}: {script} failed ({error})")
            return None
        try:
            rows.extend(to_rows(data))
        except (KeyError, TypeError, AttributeError) as problem:
            notes.append(f"{name}: {script} printed an unexpected JSON ({problem!r})")
        return data

    backend = ["--backend", args.backend]
    if "desk" in only:
        step("desk", "bench_desk.py", backend + (
            ["--n", "10000", "--rows", "1000000"] if full
            else ["--n", "500", "--rows", "20000", "--case-size", "200"]), desk_rows)
    if "followups" in only:
        step("followups", "bench_followups.py", backend + (
            ["--n", "10000", "--rows", "1000000"] if full else ["--n", "1000", "--rows", "20000"]),
            followups_rows)
    if "replicas" in only:
        desk = HERE / "bench_desk.py"
        if desk.exists() and "--replicas" in desk.read_text(encoding="utf-8"):
            step("replicas", "bench_desk.py",
                 ["--replicas", "--n", "4000" if full else "800"], replica_rows)
        else:
            notes.append("replicas: bench_desk.py has no --replicas here, skipped")
    if "posts" in only:
        found = [s for s in ("bench_outbox.py", "bench_posts.py", "bench_delivery.py")
                 if (HERE / s).exists()]
        if found:
            step("posts", found[0], [] if full else ["--n", "500"], posts_rows)
        else:
            notes.append("posts: no bench_posts.py / bench_outbox.py / bench_delivery.py here, "
                         "skipped")
    if "slack" in only:
        runs: list[dict[str, Any]] = []
        for _ in range(args.slack_runs):
            data = step("slack", "bench_slack.py",
                        ["--n", "50", "--rounds", "5" if full else "3"], lambda d: [])
            if data is not None:
                runs.append(data)
        rows.extend(slack_rows(runs))
    if "memory" in only:
        step("memory", "bench_memory.py",
             ["--rooms", "1000", "--requests", "100000", "--commands", "2000", "--step", "5"]
             if full else ["--rooms", "1000", "--requests", "20000", "--commands", "500",
                           "--step", "30"], memory_rows)

    print(f"\n===== summary ({'issue sizes' if full else 'modest sizes; --full for the issue'})")
    header = ("figure", "value", "floor", "ratio", "goal")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(5)]
    for n, row in enumerate([header, *rows]):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    for note in notes:
        print(f"note: {note}")
    print("time: " + ", ".join(f"{k} {v:.0f} s" for k, v in spent.items()))


if __name__ == "__main__":
    main()
