"""Column types shared by the tables: what SQLAlchemy converts, so no repository does."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Text
from sqlalchemy import Enum as SAEnum
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; stored as naive UTC on every backend."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


class Moments(TypeDecorator[dict[str, datetime]]):
    """A name → aware moment map, stored as JSON text of UTC ISO strings (``{}`` when empty)."""

    impl = Text()
    cache_ok = True

    def process_bind_param(self, value: dict[str, datetime] | None, dialect: Any) -> str:
        import json

        return json.dumps({name: moment.astimezone(UTC).isoformat()
                           for name, moment in sorted((value or {}).items())},
                          separators=(",", ":"))

    def process_result_value(self, value: str | None, dialect: Any) -> dict[str, datetime]:
        import json

        return {name: datetime.fromisoformat(text).astimezone(UTC)
                for name, text in json.loads(value or "{}").items()}


class MeasureList(TypeDecorator[tuple[Any, ...]]):
    """A request's measures (``domain.measures.Measure``), stored as JSON text of their
    canonical form (``[]`` when none)."""

    impl = Text()
    cache_ok = True

    def process_bind_param(self, value: tuple[Any, ...] | None, dialect: Any) -> str:
        import json

        from liaisonbot.domain.measures import to_json_list

        return json.dumps(to_json_list(value or ()), separators=(",", ":"),
                          ensure_ascii=False)

    def process_result_value(self, value: str | None, dialect: Any) -> tuple[Any, ...]:
        import json

        from liaisonbot.domain.measures import from_json_list

        return from_json_list(json.loads(value or "[]"))


def str_enum(cls: type[enum.StrEnum], length: int = 16) -> SAEnum:
    """A domain ``StrEnum`` stored as its value in a ``VARCHAR(length)`` (no database enum
    type, no CHECK constraint: a value a newer release adds needs no migration of the
    column), read back as the enum member. SQLAlchemy's own ``Enum`` does the conversion."""
    return SAEnum(cls, native_enum=False, create_constraint=False, length=length,
                  values_callable=lambda members: [m.value for m in members],
                  validate_strings=True)
