"""Shared plumbing for the benchmarks: fresh databases, settings, bulk rows, SQL capture,
query plans, timing and the result table.

Nothing here is imported by the application; run the scripts with the project's venv:
``.venv/bin/python benchmarks/bench_desk.py --backend both``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import secrets
import sys
import tempfile
import time
import tomllib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from sqlalchemy import event  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402

from liaisonbot.config import Settings, parse  # noqa: E402
from liaisonbot.domain.followups import next_nudge_at  # noqa: E402
from liaisonbot.domain.model import Kind, Office, Request, Status  # noqa: E402
from liaisonbot.store.migrate import upgrade  # noqa: E402

PG_ADMIN = os.environ.get("BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_BASE = os.environ.get("BENCH_PG_BASE", "postgresql+asyncpg://postgres@127.0.0.1:5432/")

#: The benchmark's "now": a Wednesday at 12:00 UTC, inside every office's working hours.
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)

# Synthetic offices next to the four of config/liaisonbot.toml, so rows spread over 40 offices.
_ZONES = [("Europe/Paris", "FR"), ("Europe/Berlin", "DE"), ("Europe/Madrid", "ES"),
          ("Europe/Rome", "IT"), ("Europe/Warsaw", "PL"), ("Europe/Prague", "CZ"),
          ("Europe/Vienna", "AT"), ("Europe/Lisbon", "PT"), ("Europe/London", "GB"),
          ("Europe/Helsinki", "FI"), ("Europe/Athens", "GR"), ("Europe/Bucharest", "RO")]
SYNTHETIC_OFFICES = 36


# ----------------------------------------------------------------------------- settings


def bench_settings(url: str) -> Settings:
    """config/liaisonbot.toml's offices and policy plus 36 synthetic offices, on ``url``."""
    data = tomllib.loads((ROOT / "config" / "liaisonbot.toml").read_text(encoding="utf-8"))
    data["database"] = {"url": url}
    offices = list(data["offices"])
    for i in range(SYNTHETIC_OFFICES):
        zone, country = _ZONES[i % len(_ZONES)]
        slug = f"bench-{i:02d}"
        offices.append({
            "slug": slug, "name": f"Benchmark office {i:02d}", "timezone": zone,
            "working_hours": "09:00-17:00" if i % 2 else "08:00-16:30",
            "working_days": "Mon-Fri", "holidays": country, "rooms": [f"console:{slug}"],
            "members": [f"console:user-{slug}", f"console:head-{slug}"],
            "escalation": [f"console:head-{slug}"]})
    data["offices"] = offices
    return parse(data, "benchmarks(config/liaisonbot.toml + synthetic offices)")


# ----------------------------------------------------------------------------- databases


@dataclass
class Database:
    backend: str
    url: str
    cleanup: Callable[[], Any]
    name: str = ""


@contextlib.asynccontextmanager
async def fresh_database(backend: str) -> AsyncIterator[Database]:
    """A new, migrated database: a temp SQLite file, or ``liaisonbot_bench_<random>`` on PG
    (created on the ``postgres`` database, dropped at the end)."""
    if backend == "sqlite":
        folder = tempfile.mkdtemp(prefix="liaisonbot_bench_")
        path = Path(folder) / "bench.db"
        url = f"sqlite+aiosqlite:///{path}"
        db = Database("sqlite", url, lambda: None, str(path))
        await asyncio.to_thread(upgrade, url)
        try:
            yield db
        finally:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(f"{path}{suffix}")
            with contextlib.suppress(OSError):
                os.rmdir(folder)
        return
    import asyncpg

    name = f"liaisonbot_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = f"{PG_BASE}{name}"
    db = Database("postgres", url, lambda: None, name)
    try:
        await asyncio.to_thread(upgrade, url)
        yield db
    finally:
        admin = await asyncpg.connect(PG_ADMIN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def sqlite_path(url: str) -> str:
    return url.split("sqlite+aiosqlite:///", 1)[1]


# ----------------------------------------------------------------------------- measuring


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict[str, float]:
    """Seconds in, milliseconds out."""
    return {"n": len(values), "p50_ms": pct(values, 0.5) * 1e3, "p99_ms": pct(values, 0.99) * 1e3,
            "mean_ms": (sum(values) / len(values) * 1e3) if values else float("nan"),
            "total_s": sum(values)}


@contextlib.contextmanager
def stopwatch() -> Iterator[list[float]]:
    box: list[float] = []
    start = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - start)


class Capture:
    """Records the SQL an engine runs (statement, DBAPI parameters, seconds) while on."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.on = False
        self.statements: list[tuple[str, Any, float]] = []
        self._started: dict[int, float] = {}
        sync = engine.sync_engine
        event.listen(sync, "before_cursor_execute", self._before)
        event.listen(sync, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                executemany: bool) -> None:
        if self.on:
            self._started[id(cursor)] = time.perf_counter()

    def _after(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
               executemany: bool) -> None:
        if self.on:
            started = self._started.pop(id(cursor), time.perf_counter())
            self.statements.append((statement, parameters, time.perf_counter() - started))

    @contextlib.contextmanager
    def recording(self) -> Iterator[list[tuple[str, Any, float]]]:
        self.statements = []
        self.on = True
        try:
            yield self.statements
        finally:
            self.on = False

    @staticmethod
    def find(statements: list[tuple[str, Any, float]], *needles: str) -> tuple[str, Any]:
        for statement, params, _ in statements:
            flat = " ".join(statement.split())
            if all(n in flat for n in needles):
                return statement, params
        raise LookupError(f"no captured statement contains {needles}")

    @staticmethod
    def by_kind(statements: list[tuple[str, Any, float]]) -> dict[str, dict[str, float]]:
        """SQL time grouped by verb and table (``INSERT outbox``, ``SELECT request``…)."""
        out: dict[str, dict[str, float]] = {}
        for statement, _params, seconds in statements:
            words = statement.split()
            verb = words[0].upper() if words else "?"
            table = "?"
            upper = [w.upper() for w in words]
            for marker in ("INTO", "FROM", "UPDATE"):
                if marker in upper:
                    i = upper.index(marker)
                    table = words[i + 1].strip('"') if marker != "UPDATE" or i == 0 else table
                    if marker == "UPDATE" and i == 0:
                        table = words[1].strip('"')
                    break
            key = f"{verb} {table}"
            slot = out.setdefault(key, {"count": 0, "seconds": 0.0})
            slot["count"] += 1
            slot["seconds"] += seconds
        return out


# ----------------------------------------------------------------------------- query plans


async def explain(engine: AsyncEngine, statement: str, params: Any, *, analyze: bool = True
                  ) -> list[str]:
    """The plan of a captured statement with its captured parameters, in a transaction that
    is rolled back (so FOR UPDATE locks and the like leave nothing behind)."""
    sqlite = engine.url.get_backend_name() == "sqlite"
    prefix = "EXPLAIN QUERY PLAN " if sqlite else (
        "EXPLAIN (ANALYZE, BUFFERS) " if analyze else "EXPLAIN ")
    async with engine.connect() as conn:
        await conn.begin()
        rows = (await conn.exec_driver_sql(prefix + statement, params)).all()
        await conn.rollback()
    if sqlite:
        return [f"{'  ' * _depth(rows, r)}{r[3]}" for r in rows]
    return [r[0] for r in rows]


def _depth(rows: list[Any], row: Any) -> int:
    parents = {r[0]: r[1] for r in rows}
    depth, parent = 0, row[1]
    while parent in parents:
        depth += 1
        parent = parents[parent]
    return depth


def index_verdict(plan: list[str], table: str = "request", want: str | None = None
                  ) -> tuple[bool, str]:
    """Whether every access to ``table`` in ``plan`` goes through an index (``want``: that
    index by name). Returns (yes/no, why)."""
    full_scans, indexes = [], []
    for line in plan:
        s = line.strip()
        # SQLite: "SCAN request" is a full scan, "SEARCH request USING INDEX x (...)" is not;
        # PostgreSQL: "Seq Scan on request" vs "Index Scan using x on request".
        if s.startswith(f"SCAN {table}") and "USING" not in s:
            full_scans.append(s)
        elif f"Seq Scan on {table}" in s:
            full_scans.append(s)
        for token in ("USING INDEX ", "USING COVERING INDEX ", "Index Scan using ",
                      "Index Only Scan using ", "Bitmap Index Scan on "):
            if token in s:
                name = s.split(token, 1)[1].split()[0]
                indexes.append(name)
        if "USING INTEGER PRIMARY KEY" in s and table in s:
            indexes.append("rowid")
    if full_scans:
        return False, "full scan: " + "; ".join(full_scans)
    if want is not None and want not in indexes:
        return False, f"{want} not used (indexes: {', '.join(indexes) or 'none'})"
    if not indexes:
        return False, "no index in the plan"
    return True, ", ".join(dict.fromkeys(indexes))


def print_plan(title: str, statement: str, plan: list[str], verdict: tuple[bool, str]) -> None:
    print(f"\n-- {title}: SQL captured from the run")
    print("   " + " ".join(statement.split()))
    print("-- plan")
    for line in plan:
        print("   " + line)
    print(f"-- uses index: {'yes' if verdict[0] else 'no'} ({verdict[1]})")


# ----------------------------------------------------------------------------- bulk rows

REQUEST_COLUMNS = (
    "case_ref", "kind", "requesting", "requested", "summary", "basis", "urgent",
    "confidentiality", "status", "opened_by", "assignee", "answer", "created_at", "updated_at",
    "due_at", "ack_due_at", "eta", "snoozed_until", "ack_nudges_sent", "answer_nudges_sent",
    "next_nudge_at", "version")

_DUE_KINDS = (Kind.MLA, Kind.EVIDENCE, Kind.INFORMATION, Kind.INFORMATION, Kind.WITNESS)
_ENDED_MIX = ((Status.CLOSED, 0.82), (Status.DECLINED, 0.05), (Status.WITHDRAWN, 0.07),
              (Status.ANSWERED, 0.06))


@dataclass
class Dataset:
    """What was bulk-loaded: counts by group, for the report and the checks."""

    total: int = 0
    pending: int = 0
    overdue: int = 0
    due_now: int = 0
    extra: dict[str, int] = field(default_factory=dict)


class RowMaker:
    """Valid request rows for the domain, over the settings' offices. The pending ones carry
    the ``next_nudge_at`` and nudge counters the ticker would have left at ``NOW`` (caught
    up), except the ``due_now`` ones, which owe exactly one nudge at ``NOW``."""

    def __init__(self, settings: Settings, seed: int = 7) -> None:
        self.directory = settings.directory
        self.policy = settings.directory.policy
        self.offices: list[Office] = list(settings.directory.offices)
        self.open_now = [o for o in self.offices if o.calendar.is_open(NOW)]
        self.rng = random.Random(seed)

    def _pair(self, requested: Office | None = None) -> tuple[Office, Office]:
        offices, r = self.offices, self.rng.random
        target = requested or offices[int(r() * len(offices))]
        while True:
            origin = offices[int(r() * len(offices))]
            if origin.slug != target.slug:
                return origin, target

    @staticmethod
    def _opener(office: Office) -> str:
        return office.members[0] if office.members else f"console:clerk-{office.slug}"

    @lru_cache(maxsize=200_000)  # noqa: B019 - one maker per run
    def _deadlines(self, slug: str, day: int, kind: Kind, urgent: bool
                   ) -> tuple[datetime, datetime]:
        office = self.directory.office(slug)
        assert office is not None
        start = NOW - timedelta(days=day)
        duration = self.policy.due_for(kind, urgent=urgent)
        return (office.calendar.deadline(start, duration),
                office.calendar.deadline(start, self.policy.ack_within))

    @lru_cache(maxsize=200_000)  # noqa: B019 (one planner per benchmark run)
    def _moments(self, slug: str, due: datetime) -> tuple[datetime, ...]:
        calendar = self.directory.office(slug).calendar  # type: ignore[union-attr]
        return tuple(calendar.after(due, d) for d in self.policy.nudges_after_due)

    def _request(self, origin: Office, target: Office, case: str, created: datetime,
                 kind: Kind, urgent: bool, status: Status, due: datetime, ack_due: datetime
                 ) -> Request:
        return Request(id=0, case=case, kind=kind, requesting=origin.slug,
                       requested=target.slug, summary="", status=status, created_at=created,
                       due_at=due, ack_due_at=ack_due, opened_by=self._opener(origin),
                       urgent=urgent)

    def _caught_up(self, request: Request, office: Office, *, owe_one: bool) -> bool:
        """Set the nudge counters as the ticker would have at NOW; with ``owe_one`` leave the
        last owed nudge unsent. False when that state cannot be made (nothing owed)."""
        state = self._nudge_state(office.slug, request.status, request.due_at,
                                  request.ack_due_at, owe_one)
        if state is None:
            return False
        request.ack_nudges_sent, request.answer_nudges_sent, request.next_nudge_at = state
        return True

    @lru_cache(maxsize=500_000)  # noqa: B019
    def _nudge_state(self, slug: str, status: Status, due: datetime, ack_due: datetime,
                     owe_one: bool) -> tuple[int, int, datetime | None] | None:
        calendar = self.directory.office(slug).calendar  # type: ignore[union-attr]
        moments = self._moments(slug, due)
        owed = sum(1 for m in moments if m <= NOW)
        ack_owed = status is Status.OPEN and ack_due <= NOW
        answer_sent = owed
        ack_sent = 1 if (ack_owed or (owed and status is Status.OPEN)) else 0
        if owe_one:
            if owed:
                answer_sent = owed - 1
            elif ack_owed:
                ack_sent = 0
            else:
                return None
        probe = Request(id=0, case="x", kind=Kind.OTHER, requesting="x", requested=slug,
                        summary="", status=status, created_at=NOW, due_at=due,
                        ack_due_at=ack_due, opened_by="x", ack_nudges_sent=ack_sent,
                        answer_nudges_sent=answer_sent)
        upcoming = next_nudge_at(probe, self.policy, calendar)
        if owe_one and (upcoming is None or upcoming > NOW):
            return None
        if not owe_one and upcoming is not None and upcoming <= NOW:
            return None
        return ack_sent, answer_sent, upcoming

    def _row(self, r: Request, summary: str, answer: str | None, updated: datetime,
             confidential: bool) -> tuple[Any, ...]:
        return (r.case, r.kind.value, r.requesting, r.requested, summary, "", r.urgent,
                "confidential" if confidential else "restricted", r.status.value, r.opened_by,
                None, answer, r.created_at, updated, r.due_at, r.ack_due_at, None, None,
                r.ack_nudges_sent, r.answer_nudges_sent, r.next_nudge_at, 1)

    def pending_row(self, case: str, *, requested: Office | None = None, owe_one: bool = False,
                    origin: Office | None = None) -> tuple[Any, ...] | None:
        rng = self.rng
        if origin is not None and requested is not None:
            pair = (origin, requested)
        else:
            pair = self._pair(requested)
        origin, target = pair
        kind = rng.choice(_DUE_KINDS)
        urgent = rng.random() < 0.05
        if owe_one:  # old enough to owe an ack or answer nudge
            day = rng.randint(8, 45)
        else:  # most pending requests are recent; a tail is months old
            day = min(int(rng.expovariate(1 / 12)), 180)
        created = NOW - timedelta(days=day, seconds=rng.randint(0, 8 * 3600))
        due, ack_due = self._deadlines(target.slug, day, kind, urgent)
        status = Status.OPEN if rng.random() < 0.35 else Status.ACKNOWLEDGED
        request = self._request(origin, target, case, created, kind, urgent, status, due,
                                ack_due)
        if not self._caught_up(request, target, owe_one=owe_one):
            return None
        return self._row(request, f"Bank and phone records, item {rng.randint(1, 99999)}",
                         None, created, rng.random() < 0.1)

    def one_case(self, case: str, office: Office, size: int) -> Iterator[list[Any]]:
        """One batch of ``size`` requests in ``case`` between ``office`` and the others, in
        both directions; three in ten pending, the rest ended."""
        batch = []
        for i in range(size):
            other = self.offices[1 + i % (len(self.offices) - 1)]
            pair = (office, other) if i % 2 else (other, office)
            row = None
            if i % 10 < 3:
                while row is None:
                    row = self.pending_row(case, origin=pair[0], requested=pair[1])
            else:
                row = self.ended_row(case, origin=pair[0], requested=pair[1])
            batch.append(row)
        yield batch

    def ended_row(self, case: str, *, requested: Office | None = None,
                  origin: Office | None = None) -> tuple[Any, ...]:
        rng = self.rng
        if origin is not None and requested is not None:
            origin_, target = origin, requested
        else:
            origin_, target = self._pair(requested)
        r = rng.random
        x, status = r(), Status.CLOSED
        for candidate, share in _ENDED_MIX:
            if x < share:
                status = candidate
                break
            x -= share
        kind = _DUE_KINDS[int(r() * len(_DUE_KINDS))]
        created = NOW - timedelta(days=46 + int(r() * 1050), seconds=int(r() * 86400))
        due = created + timedelta(days=30 if kind in (Kind.MLA, Kind.EVIDENCE) else 14)
        ack_due = created + timedelta(days=7)
        answer = "Records provided via secure channel." if status in (
            Status.ANSWERED, Status.CLOSED) else None
        updated = created + timedelta(days=1 + int(r() * 60))
        return (case, kind.value, origin_.slug, target.slug,
                f"Witness contact details, item {int(r() * 99999)}", "", False,
                "confidential" if r() < 0.1 else "restricted", status.value,
                self._opener(origin_), None, answer, created, updated, due, ack_due, None, None,
                1 if r() < 0.3 else 0, 0, None, 1)

    def generate(self, total: int, *, pending_share: float = 0.15, due_now: int = 0,
                 cases: int | None = None, batch: int = 25_000
                 ) -> Iterator[list[tuple[Any, ...]]]:
        """Batches of rows: ``due_now`` rows owing a nudge at NOW (requested office open at
        NOW), ``pending_share`` caught-up pending rows, the rest ended. Cases of ~20 rows."""
        cases = cases or max(1, total // 20)
        stats = self.stats = Dataset(total=total)
        plan_due = due_now
        rows: list[tuple[Any, ...]] = []
        for _ in range(total):
            case = f"BENCH-{int(self.rng.random() * cases):06d}"
            row = None
            if plan_due > 0:
                while row is None:
                    row = self.pending_row(case, requested=self.rng.choice(self.open_now),
                                           owe_one=True)
                plan_due -= 1
                stats.due_now += 1
            elif self.rng.random() < pending_share:
                while row is None:
                    row = self.pending_row(case)
            else:
                row = self.ended_row(case)
            if row[8] in ("open", "acknowledged"):
                stats.pending += 1
                if row[14] <= NOW:
                    stats.overdue += 1
            rows.append(row)
            if len(rows) >= batch:
                yield rows
                rows = []
        if rows:
            yield rows


def _pg_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


async def bulk_insert(db: Database, batches: Iterator[list[tuple[Any, ...]]]) -> int:
    """Insert request rows fast: an executemany of SQLAlchemy Core per batch on SQLite (one
    transaction each; the column types convert the values), COPY (asyncpg
    ``copy_records_to_table``) on PostgreSQL. Returns the row count."""
    count = 0
    if db.backend == "sqlite":
        from sqlalchemy import create_engine, insert

        from liaisonbot.store.rows import R

        engine = create_engine(f"sqlite:///{sqlite_path(db.url)}")
        try:
            for rows in batches:
                with engine.begin() as conn:
                    conn.execute(insert(R), [dict(zip(REQUEST_COLUMNS, r, strict=True))
                                             for r in rows])
                count += len(rows)
        finally:
            engine.dispose()
        return count
    import asyncpg

    conn = await asyncpg.connect(asyncpg_dsn(db.url))
    try:
        for rows in batches:
            await conn.copy_records_to_table(
                "request", columns=list(REQUEST_COLUMNS),
                records=[tuple(_pg_value(v) for v in r) for r in rows])
            count += len(rows)
        await conn.execute("ANALYZE request")
    finally:
        await conn.close()
    return count


# ----------------------------------------------------------------------------- output


def base_args(description: str, default_n: int) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--n", type=int, default=default_n)
    return parser


def backends(choice: str) -> list[str]:
    return ["sqlite", "postgres"] if choice == "both" else [choice]


def table(rows: list[tuple[Any, ...]], header: tuple[str, ...]) -> None:
    cells = [tuple(_fmt(c) for c in row) for row in [header, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for n, row in enumerate(cells):
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in
                        enumerate(zip(row, widths, strict=True))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 1e5 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def finish(name: str, results: dict[str, Any]) -> None:
    """Write benchmarks/results-<name>.json and print the JSON as the last line."""
    results["maxrss_mb"] = round(maxrss_mb(), 1)
    payload = json.dumps(results, default=str, sort_keys=True)
    (Path(__file__).parent / f"results-{name}.json").write_text(payload + "\n")
    print(f"\nwrote benchmarks/results-{name}.json")
    print(payload)
