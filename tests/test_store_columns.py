"""Every column is read back as it was written, on SQLite and PostgreSQL (issue 21).

A column takes three places: the table (``store.tables``), its migration and, for a request, the
domain field of the same name (``store.rows``). These tests fail when one of them is missing or
when a column type converts a value to something else (a time zone lost, an enum read as a
string, text cut):

* the request table's columns are exactly ``Request``'s fields (by name; ``case`` is
  ``case_ref``) and the store's own ``audit_hash``;
* a request of any values (hypothesis: every field drawn from its column's type, aware datetimes
  in any time zone) is read back equal after ``requests.add`` and after ``requests.update``;
* a row of any values in every table is read back equal, column by column (SQLAlchemy Core).

The values are drawn from the column's SQLAlchemy type, so a new column is covered as soon as
it is in the table.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
from collections.abc import Callable, Coroutine
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Enum,
    Integer,
    String,
    Table,
    Text,
    delete,
    select,
)
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel

from liaisonbot.domain.measures import Measure, MeasureState
from liaisonbot.domain.model import Request
from liaisonbot.store import tables  # noqa: F401  (registers every table)
from liaisonbot.store.db import make_engine
from liaisonbot.store.migrate import upgrade_async
from liaisonbot.store.rows import FIELDS, RENAMED, STORE_ONLY, R
from liaisonbot.store.types import MeasureList, Moments, UTCDateTime
from liaisonbot.store.uow import SqlUnitOfWorkFactory
from support.insider import insider

#: Text without what no database column stores (NUL; lone surrogates are not text).
_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
#: Aware moments in any zone, far enough from the calendar's ends that UTC stays in range.
_MOMENTS = st.datetimes(min_value=datetime(1901, 1, 1), max_value=datetime(9000, 12, 31),
                        timezones=st.timezones())


def values_of(column: Column[Any]) -> st.SearchStrategy[Any]:
    """What ``column`` may hold, drawn from its SQLAlchemy type."""
    kind = column.type
    if isinstance(kind, Moments):  # name → moment (a request's events, its extensions)
        return st.dictionaries(st.text(_CHARS, min_size=1, max_size=20), _MOMENTS, max_size=4)
    if isinstance(kind, MeasureList):  # a request's numbered measures
        return st.lists(_measures(), max_size=3).map(
            lambda items: tuple(dataclasses.replace(m, number=i)
                                for i, m in enumerate(items, start=1)))
    if isinstance(kind, TypeDecorator) and not isinstance(kind, UTCDateTime):
        kind = kind.impl_instance  # SQLModel's AutoString: a String of the same length
    drawn: st.SearchStrategy[Any]
    if isinstance(kind, UTCDateTime) or isinstance(kind, DateTime):
        drawn = _MOMENTS
    elif isinstance(kind, Enum):
        assert kind.enum_class is not None, column
        drawn = st.sampled_from(list(kind.enum_class))
    elif isinstance(kind, Boolean):
        drawn = st.booleans()
    elif isinstance(kind, Integer):
        drawn = st.integers(min_value=0 if column.primary_key else -(2**31),
                            max_value=2**31 - 1)
    elif isinstance(kind, Date):
        drawn = st.dates(min_value=date(1901, 1, 1), max_value=date(9000, 12, 31))
    elif isinstance(kind, Text) or (isinstance(kind, String) and kind.length is None):
        drawn = st.text(_CHARS, max_size=300)
    elif isinstance(kind, String):
        drawn = st.text(_CHARS, max_size=kind.length)
    else:
        raise AssertionError(f"no values for {column.table.name}.{column.name}: {kind!r}; "
                             "teach values_of this type")
    return st.none() | drawn if column.nullable and not column.primary_key else drawn


def _measures() -> st.SearchStrategy[Measure]:
    """One measure of any values (moments in UTC: a measure compares its moments as is)."""
    text = st.text(_CHARS, max_size=60)
    utc = st.none() | _MOMENTS.map(lambda moment: moment.astimezone(UTC))
    return st.builds(Measure, number=st.just(1), text=text,
                     state=st.sampled_from(list(MeasureState)), answer=text, conditions=text,
                     at=utc, until=utc, reason=text)


def same(written: Any, read: Any) -> bool:
    """Equal, and a datetime read back aware in UTC at the same instant (compared in UTC:
    Python never finds a time in a zone's gap or fold equal to one in another zone)."""
    if isinstance(written, datetime):
        return isinstance(read, datetime) and read.tzinfo is UTC \
            and read == written.astimezone(UTC)
    if isinstance(written, enum.Enum):
        return read is written
    if isinstance(written, dict):
        return isinstance(read, dict) and read.keys() == written.keys() \
            and all(same(value, read[key]) for key, value in written.items())
    return bool(read == written) and type(read) is type(written)


def _request_column(name: str) -> Column[Any]:
    return R.c[RENAMED.get(name, name)]


@st.composite
def requests(draw: Callable[[st.SearchStrategy[Any]], Any]) -> Request:
    return Request(id=0, **{name: draw(values_of(_request_column(name)))
                            for name, _ in FIELDS if name not in ("id", "version")})


def test_the_request_table_is_the_request_dataclass() -> None:
    """Every column of ``request`` is a field of ``Request`` (or the store's own), and every
    field has its column: adding one without the other fails here."""
    columns = {column.name for column in R.c}
    fields = {RENAMED.get(f.name, f.name) for f in dataclasses.fields(Request)}
    assert columns - STORE_ONLY == fields, (
        f"columns without a field: {sorted(columns - STORE_ONLY - fields)}; "
        f"fields without a column: {sorted(fields - columns)}")
    assert STORE_ONLY <= columns


def _on_loop(loop: asyncio.AbstractEventLoop
             ) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    """Run a coroutine on ``loop`` (the test's) from hypothesis's thread and wait for it."""
    return lambda coro: asyncio.run_coroutine_threadsafe(coro, loop).result(60)


_HYPOTHESIS = settings(max_examples=40, deadline=None, derandomize=False,
                       suppress_health_check=list(HealthCheck))


async def test_a_request_of_any_values_is_read_back_equal(any_url: str) -> None:
    await upgrade_async(any_url)
    engine = make_engine(any_url)
    uow = SqlUnitOfWorkFactory(engine)
    run = _on_loop(asyncio.get_running_loop())

    async def round_trip(first: Request, second: Request) -> None:
        async with uow() as tx:
            request_id = await tx.requests.add(first)
            await tx.commit()
        async with uow() as tx:
            got = await tx.requests.get(request_id)
        _assert_same(first, got)
        # Every field changed and written back under its version.
        changed = dataclasses.replace(second, id=request_id, version=got.version)
        async with uow() as tx:
            await tx.requests.update(changed)
            await tx.commit()
        async with uow() as tx:
            again = await tx.requests.get(request_id)
        _assert_same(changed, again)

    @_HYPOTHESIS
    @given(requests(), requests())
    def check(first: Request, second: Request) -> None:
        run(round_trip(first, second))

    try:
        await asyncio.to_thread(check)
    finally:
        await engine.dispose()


def _assert_same(written: Request, read: Request | None) -> None:
    assert read is not None
    for field in dataclasses.fields(Request):
        mine, theirs = getattr(written, field.name), getattr(read, field.name)
        assert same(mine, theirs), f"{field.name}: wrote {mine!r}, read {theirs!r}"


@st.composite
def rows(draw: Callable[[st.SearchStrategy[Any]], Any], table: Table) -> dict[str, Any]:
    return {column.name: draw(values_of(column)) for column in table.c}


@pytest.mark.parametrize("table", sorted(SQLModel.metadata.tables.values(),
                                         key=lambda t: t.name), ids=lambda t: t.name)
async def test_every_column_of_every_table_is_read_back_equal(any_url: str,
                                                              table: Table) -> None:
    await upgrade_async(any_url)
    engine = make_engine(any_url)
    run = _on_loop(asyncio.get_running_loop())

    async def round_trip(row: dict[str, Any]) -> None:
        async with insider(engine) as conn:  # history is append-only (migration 0008)
            await conn.execute(delete(table))
            await conn.execute(table.insert(), row)
        async with engine.connect() as conn:
            read = (await conn.execute(select(table))).one()._mapping
        for name, value in row.items():
            assert same(value, read[name]), f"{table.name}.{name}: wrote {value!r}, " \
                                            f"read {read[name]!r}"

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(rows(table))
    def check(row: dict[str, Any]) -> None:
        run(round_trip(row))

    try:
        await asyncio.to_thread(check)
    finally:
        await engine.dispose()
