"""Write statements kept for the transaction's next hop (SQLite; see ``store.onehop``).

A unit of work's writes whose results nobody reads before its commit — a history entry, the
request's version-checked write-back, a command's outbox rows, the record of a delivery — are
compiled once per dialect to the driver's own SQL and positional parameters (the column types'
own bind processors applied, as SQLAlchemy would), and handed to the connection to run at the
start of its next hop: the commit's, usually, so a command's writes and its ``COMMIT`` are one
hop, with no SQLAlchemy statement execution for any of them.

Only for statements without ``RETURNING`` whose row count the caller checks through
``expect`` (a write-back under its version changes exactly one row, or ``Conflict``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: A placeholder's value name, its default (``_REQUIRED`` when the caller must give it) and
#: the bind processor of its type (None when the driver takes the value as it is).
_Slot = tuple[str, Any, Any]
_REQUIRED = object()


class Kept:
    """A write statement (SQLAlchemy Core, bind parameters named) prepared for keeping."""

    __slots__ = ("_forms", "statement")

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        self._forms: dict[type, tuple[str, tuple[_Slot, ...]]] = {}

    def form(self, dialect: Any) -> tuple[str, tuple[_Slot, ...]]:
        """The SQL and its placeholders for ``dialect`` (a positional paramstyle)."""
        found = self._forms.get(type(dialect))
        if found is None:
            compiled = self.statement.compile(dialect=dialect)
            if compiled.positiontup is None:
                raise TypeError(f"{dialect.name} does not take positional parameters")
            slots = []
            for name in compiled.positiontup:
                bind = compiled.binds[name]
                default = _REQUIRED if bind.required else bind.effective_value
                slots.append((name, default, bind.type.dialect_impl(dialect)
                              .bind_processor(dialect)))
            found = self._forms[type(dialect)] = (compiled.string, tuple(slots))
        return found

    def parameters(self, dialect: Any, values: Mapping[str, Any]) -> tuple[str, tuple[Any, ...]]:
        """The SQL and one row's positional parameters, converted."""
        sql, slots = self.form(dialect)
        return sql, _row(slots, values)

    def many(self, dialect: Any, rows: Sequence[Mapping[str, Any]]
             ) -> tuple[str, list[tuple[Any, ...]]]:
        sql, slots = self.form(dialect)
        return sql, [_row(slots, values) for values in rows]


def _row(slots: tuple[_Slot, ...], values: Mapping[str, Any]) -> tuple[Any, ...]:
    out = []
    for name, default, process in slots:
        value = values.get(name, default)
        if value is _REQUIRED:
            raise KeyError(f"no value for the statement's parameter {name!r}")
        out.append(process(value) if process is not None else value)
    return tuple(out)


__all__ = ["Kept"]
