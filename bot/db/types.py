"""Column types that read and write the same on SQLite and PostgreSQL.

- ``UTCDateTime``: an aware datetime in, an aware UTC datetime out. PostgreSQL stores
  ``timestamp with time zone``; SQLite keeps the fixed-width ISO-8601 text the bot has always written
  (``2024-05-01T12:00:00.000000+00:00``), so text order is time order and files written before the
  move to SQLAlchemy read back unchanged.
- ``Snowflake``: Discord ids (64 bits): ``BIGINT`` on PostgreSQL, ``INTEGER`` (SQLite's 64-bit integer,
  the one that ``INTEGER PRIMARY KEY`` makes the row id) on SQLite.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = ["Snowflake", "UTCDateTime", "from_db_time", "to_db_time", "utc_now"]


def to_db_time(moment: datetime) -> str:
    """UTC ISO-8601 with a fixed width, so text order is time order."""
    if moment.tzinfo is None:
        raise ValueError("naive datetimes are ambiguous; pass an aware datetime")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def from_db_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def utc_now() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime, stored in UTC (see the module docstring). A naive one is refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Text())
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return to_db_time(value)
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            return from_db_time(value)
        assert isinstance(value, datetime)
        return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


#: A Discord id: BIGINT on PostgreSQL, INTEGER on SQLite (both 64-bit).
Snowflake: TypeEngine[int] = BigInteger().with_variant(Integer(), "sqlite")
