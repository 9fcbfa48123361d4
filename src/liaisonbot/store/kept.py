"""Write statements kept for later: for the transaction's next hop (SQLite; see
``store.onehop``), or for one statement with the other writes kept (PostgreSQL).

A unit of work's writes whose results nobody reads before its commit — a history entry, the
request's version-checked write-back, a command's outbox rows, the record of a delivery — are
compiled once per dialect to the driver's own SQL and positional parameters (the column types'
own bind processors applied, as SQLAlchemy would), and handed to the connection to run at the
start of its next hop: the commit's, usually, so a command's writes and its ``COMMIT`` are one
hop, with no SQLAlchemy statement execution for any of them.

Only for statements without ``RETURNING`` whose row count the caller checks through
``expect`` (a write-back under its version changes exactly one row, or ``Conflict``).

PostgreSQL has no hop to ride on: there the kept writes go as one statement
(``send_together``), each a data-modifying CTE returning a row per row it changed, the final
``SELECT`` their counts; an ``executemany`` of an ``INSERT`` becomes one multi-row
``VALUES``. The CTEs of one statement run in no set order and see none of each other's
changes, so a write to a table already written by the statement starts the next statement:
a request's write-back and its chain's end, or two history entries, stay in their order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import Insert

from liaisonbot.store.types import UTCDateTime

#: A placeholder's value name, its default (``_REQUIRED`` when the caller must give it) and
#: the bind processor of its type (None when the driver takes the value as it is).
_Slot = tuple[str, Any, Any]
_REQUIRED = object()


class Form(NamedTuple):
    """A statement compiled for one dialect: its SQL, how many values it binds, and what
    makes one row's positional values from its named ones."""

    sql: str
    width: int
    row: Callable[[Mapping[str, Any]], tuple[Any, ...]]


class Kept:
    """A write statement (SQLAlchemy Core, bind parameters named) prepared for keeping."""

    __slots__ = ("_forms", "insert", "statement", "table")

    def __init__(self, statement: Any) -> None:
        self.insert = isinstance(statement, Insert)
        # No implicit RETURNING of the new key (PostgreSQL): nobody reads it.
        self.statement = statement.inline() if self.insert else statement
        self.table = str(statement.table.name)
        self._forms: dict[type, Form] = {}

    def form(self, dialect: Any) -> Form:
        """The statement for ``dialect`` (a positional paramstyle), compiled once."""
        found = self._forms.get(type(dialect))
        if found is None:
            compiled = self.statement.compile(dialect=dialect)
            if compiled.positiontup is None:
                raise TypeError(f"{dialect.name} does not take positional parameters")
            slots = []
            for name in compiled.positiontup:
                bind = compiled.binds[name]
                default = _REQUIRED if bind.required else bind.effective_value
                if isinstance(bind.type, UTCDateTime) and dialect.name == "sqlite":
                    process = _sqlite_utc  # the same text, in one step
                else:
                    process = bind.type.dialect_impl(dialect).bind_processor(dialect)
                slots.append((name, default, process))
            found = self._forms[type(dialect)] = Form(compiled.string, len(slots),
                                                      _row_maker(slots))
        return found

    def parameters(self, dialect: Any, values: Mapping[str, Any]) -> tuple[str, tuple[Any, ...]]:
        """The SQL and one row's positional parameters, converted."""
        form = self.form(dialect)
        return form.sql, form.row(values)

    def many(self, dialect: Any, rows: Sequence[Mapping[str, Any]]
             ) -> tuple[str, list[tuple[Any, ...]]]:
        form = self.form(dialect)
        return form.sql, [form.row(values) for values in rows]


def _sqlite_utc(value: datetime | None) -> str | None:
    """A UTC column's value as SQLAlchemy's SQLite dialect writes it (``UTCDateTime`` then
    ``DATETIME``: naive UTC, ``YYYY-MM-DD HH:MM:SS.ffffff``), so text comparisons in SQL
    order it with the rows SQLAlchemy wrote."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _row_maker(slots: list[_Slot]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """One row's positional values from its named ones, as one generated expression per
    statement form (a loop over 30-odd placeholders per write was most of a kept write's
    cost): ``(p3(v["a"]), v["b"], v.get("c", d5), …)``. A required value missing raises
    KeyError naming it."""
    scope: dict[str, Any] = {}
    lines: list[str] = []
    terms: list[str] = []
    done: dict[str, str] = {}
    for n, (name, default, process) in enumerate(slots):
        if name in done:  # a value used twice (SQLite repeats it) is converted once
            terms.append(done[name])
            continue
        if default is _REQUIRED:
            term = f"v[{name!r}]"
        else:
            scope[f"d{n}"] = default
            term = f"v.get({name!r}, d{n})"
        if process is not None:
            scope[f"p{n}"] = process
            term = f"p{n}({term})"
        lines.append(f"    x{n} = {term}")
        terms.append(done.setdefault(name, f"x{n}"))
    # As namedtuple and dataclasses do: generated from our own statements' parameter names
    # (quoted by repr), never from input.
    source = "def row(v):\n" + "\n".join(lines) + f"\n    return ({', '.join(terms)},)"
    exec(source, scope)
    return scope["row"]  # type: ignore[no-any-return]


class KeptWrite(NamedTuple):
    """A write kept by a unit of work: one row's values, or rows for an executemany."""

    kept: Kept
    values: Any
    many: bool
    expect: int | None
    error: BaseException | None


_PLACEHOLDER = re.compile(r"\$(\d+)")


def _shifted(sql: str, by: int) -> str:
    return _PLACEHOLDER.sub(lambda m: f"${int(m.group(1)) + by}", sql) if by else sql


def _values_group(sql: str) -> tuple[int, int]:
    """Where an INSERT's ``VALUES (…)`` group starts and ends (the parenthesis matched)."""
    start = sql.index(" VALUES (") + len(" VALUES ")
    depth = 0
    for end in range(start, len(sql)):
        depth += {"(": 1, ")": -1}.get(sql[end], 0)
        if depth == 0:
            return start, end + 1
    raise ValueError("unbalanced VALUES group")


def _part(write: KeptWrite, dialect: Any, offset: int) -> tuple[str, list[Any]]:
    """One write as a CTE body (SQL shifted past ``offset`` placeholders) and its values."""
    form = write.kept.form(dialect)
    sql = form.sql
    rows = list(write.values) if write.many else [write.values]
    if len(rows) > 1:
        start, end = _values_group(sql)
        group = sql[start:end]
        sql = sql[:start] + ", ".join(_shifted(group, i * form.width)
                                      for i in range(len(rows))) + sql[end:]
    params = [value for row in rows for value in form.row(row)]
    return _shifted(sql, offset) + " RETURNING 1", params


#: Bound values one statement may carry (PostgreSQL takes at most 32,767).
MAX_VALUES = 30_000


def _too_many(write: KeptWrite, dialect: Any) -> bool:
    return len(write.values) * write.kept.form(dialect).width > MAX_VALUES


async def send_together(conn: Any, writes: Sequence[KeptWrite]) -> None:
    """PostgreSQL: run ``writes`` in order, as few statements as the order allows (see the
    module's text); raise the first failed check's error. ``conn``: an AsyncConnection."""
    batch: list[KeptWrite] = []
    tables: set[str] = set()
    for write in writes:
        # An UPDATE executemany, or rows beyond what one statement may bind: on their own.
        alone = write.many and (not write.kept.insert or _too_many(write, conn.dialect))
        if batch and (alone or write.kept.table in tables):
            await _send(conn, batch)
            batch, tables = [], set()
        if alone:
            await conn.execute(write.kept.statement, list(write.values))
            continue
        batch.append(write)
        tables.add(write.kept.table)
    if batch:
        await _send(conn, batch)


async def _send(conn: Any, batch: list[KeptWrite]) -> None:
    if len(batch) == 1 and batch[0].expect is None:  # one write, no check: as it is
        write = batch[0]
        await conn.execute(write.kept.statement,
                           list(write.values) if write.many else write.values)
        return
    parts: list[str] = []
    params: list[Any] = []
    for n, write in enumerate(batch):
        sql, values = _part(write, conn.dialect, len(params))
        parts.append(f"k{n} AS ({sql})")
        params.extend(values)
    counts = ", ".join(f"(SELECT count(*) FROM k{n})" for n in range(len(batch)))
    row = (await conn.exec_driver_sql(f"WITH {', '.join(parts)} SELECT {counts}",
                                      tuple(params))).one()
    for write, changed in zip(batch, row, strict=True):
        if write.expect is not None and changed != write.expect:
            raise write.error or RuntimeError(
                f"a kept write to {write.kept.table} changed {changed} rows, "
                f"not {write.expect}")


__all__ = ["Kept", "KeptWrite", "send_together"]
