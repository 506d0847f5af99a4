"""Database URLs: ``sqlite+aiosqlite:///path/to/bot.sqlite3`` or ``postgresql+asyncpg://user:pw@host/db``.

``database_url`` turns what the settings or a test give (a URL, or a plain SQLite file path) into the
URL the engine is built from; ``BadDatabaseURL`` says what is wrong in words that never repeat the
URL (it may hold a password). ``display`` is the URL with its password hidden, for logs and messages.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

__all__ = ["EXAMPLES", "BadDatabaseURL", "database_url", "display", "sqlite_url"]

SQLITE = "sqlite+aiosqlite"
POSTGRESQL = "postgresql+asyncpg"
EXAMPLES = "sqlite+aiosqlite:///data/bot.sqlite3 or postgresql+asyncpg://user:password@host:5432/database"

MEMORY = ":memory:"


class BadDatabaseURL(ValueError):
    """Not a database URL the bot can use. ``str()`` is one line that never contains the URL."""


def sqlite_url(path: str | Path) -> URL:
    """The URL of a SQLite file (``:memory:``: a database that lives as long as the process)."""
    return URL.create(SQLITE, database=str(path))


def database_url(target: str | Path | URL) -> URL:
    """``target`` as an async SQLAlchemy URL. A Path, or a string without ``://``, is a SQLite file.

    ``sqlite://`` and ``postgresql://`` (or ``postgres://``) get the bot's async drivers.
    """
    if isinstance(target, Path) or (isinstance(target, str) and "://" not in target):
        if not str(target).strip():
            raise BadDatabaseURL(f"is empty; use {EXAMPLES}")
        return sqlite_url(target)
    try:
        url = target if isinstance(target, URL) else make_url(target.strip())
    except (ArgumentError, ValueError):
        raise BadDatabaseURL(f"is not a database URL; use {EXAMPLES}") from None
    backend, _, driver = url.drivername.partition("+")
    if backend == "sqlite":
        if not url.database:
            raise BadDatabaseURL("names no SQLite file: use sqlite+aiosqlite:///path/to/bot.sqlite3")
        if url.host or url.username or url.password:
            raise BadDatabaseURL(
                "has a host or a user, which SQLite does not use (a file path needs three slashes: "
                "sqlite+aiosqlite:///data/bot.sqlite3)"
            )
        return url.set(drivername=SQLITE)
    if backend in ("postgresql", "postgres"):
        if driver not in ("asyncpg", "psycopg2", "psycopg", ""):
            raise BadDatabaseURL("uses a PostgreSQL driver the bot does not have; use postgresql+asyncpg://")
        return url.set(drivername=POSTGRESQL)
    raise BadDatabaseURL(f"names a database the bot does not support ({backend}); use {EXAMPLES}")


def display(url: URL) -> str:
    """The URL for people: the password hidden; a SQLite file as its path."""
    if url.get_backend_name() == "sqlite":
        return url.database or MEMORY
    return url.render_as_string(hide_password=True)
