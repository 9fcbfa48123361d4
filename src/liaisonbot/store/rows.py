"""A request's row and its domain object: the columns are the fields, by name.

``domain.model.Request`` is a plain dataclass; the ``request`` table (``store.tables``) has a
column for each of its fields, of the same name (``case`` alone is stored as ``case_ref``), whose
SQLAlchemy type does every conversion (aware UTC datetimes, enums, flags). Adding a field is a
column in the table, its migration and the field: nothing here changes.
``tests/test_store_columns.py`` fails when a column has no field or a field no column.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from sqlalchemy import Table

from liaisonbot.domain.model import Request
from liaisonbot.store.tables import RequestRow

R: Table = RequestRow.__table__  # type: ignore[attr-defined]

#: The one field stored under another column name.
RENAMED = {"case": "case_ref"}
#: The request table's columns that are the store's, not the domain's: the end of the
#: request's audit chain (``store.history``), written with the request under its version.
STORE_ONLY = frozenset({"audit_hash"})

#: ``(field, column)`` for every field of ``Request``.
FIELDS: tuple[tuple[str, str], ...] = tuple((f.name, RENAMED.get(f.name, f.name))
                                            for f in fields(Request))
#: The columns ``request_from`` reads: every field's (a board list may read fewer).
COLUMNS = tuple(R.c[column] for _, column in FIELDS)


def request_values(request: Request) -> dict[str, Any]:
    """The row's values by column name, but the id (the database's) and the version (the
    store moves it)."""
    return {column: getattr(request, name) for name, column in FIELDS
            if name not in ("id", "version")}


def request_from(row: Any) -> Request:
    """The request of a row that has every field's column (``COLUMNS``)."""
    m = row._mapping
    return Request(**{name: m[column] for name, column in FIELDS})


def partial_request_from(row: Any) -> Request:
    """A request from a row with only some columns (the board's lists): the fields whose
    columns it lacks keep their defaults."""
    m = row._mapping
    return Request(**{name: m[column] for name, column in FIELDS if column in m})
