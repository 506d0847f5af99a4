"""``python -m bot migrate-db``: copy every table of one database into another, empty one.

The target is migrated to the newest revision first (``Database.connect``), then filled in ONE
transaction: every table in foreign-key order, each row as it is (the dsc.gg tokens stay encrypted:
their ciphertext is copied, never decrypted), read from one snapshot of the source. Before the
commit, each table's row count in the target must equal the source's; then PostgreSQL's sequences
(``audit_events.id``) are moved past the copied ids. Any failure rolls back everything: the target
is left empty. A target that already holds rows is refused before anything is written.
"""

from __future__ import annotations

import logging

from sqlalchemy import Table, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.db.database import Database
from bot.db.schema import metadata

__all__ = ["BATCH", "CopyRefused", "copy_database"]

log = logging.getLogger(__name__)

#: Rows inserted per statement.
BATCH = 1000


class CopyRefused(Exception):
    """The copy was not made (nothing was written). ``str()`` is one line saying why."""


async def copy_database(source: Database, target: Database) -> dict[str, int]:
    """Copy every table of ``source`` into the empty ``target``; returns the rows copied per table."""
    if source.url == target.url:
        raise CopyRefused(f"{target.name}: the target is the database the bot uses now; name another one")
    tables = metadata.sorted_tables  # parents before children (audit_events before audit_outbox)
    async with source.snapshot() as reading, target.transaction() as writing:
        await target.lock(writing, "migrate-db", "target")  # two copies into one database: one waits
        filled = {table.name: n for table in tables if (n := await _count(writing, table))}
        if filled:
            listed = ", ".join(f"{name}: {n}" for name, n in filled.items())
            raise CopyRefused(
                f"{target.name} already holds rows ({listed}); migrate-db only copies into an empty "
                "database, so that nothing there is mixed up or overwritten"
            )
        counts: dict[str, int] = {}
        for table in tables:
            counts[table.name] = await _copy_table(reading, writing, table)
        for table in tables:
            expected = await _count(reading, table)
            copied = await _count(writing, table)
            if copied != expected or counts[table.name] != expected:
                raise CopyRefused(
                    f"{table.name}: {copied} rows in the target after the copy, {expected} in the source; "
                    "nothing was copied"
                )
        if target.dialect == "postgresql":
            await _move_sequences(writing, tables)
    log.info("Copied %d rows from %s to %s", sum(counts.values()), source.name, target.name)
    return counts


async def _copy_table(reading: AsyncConnection, writing: AsyncConnection, table: Table) -> int:
    order = list(table.primary_key.columns)
    result = await reading.stream(select(table).order_by(*order))
    copied = 0
    async for rows in result.partitions(BATCH):
        await writing.execute(table.insert(), [dict(row._mapping) for row in rows])
        copied += len(rows)
    return copied


async def _count(conn: AsyncConnection, table: Table) -> int:
    return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def _move_sequences(writing: AsyncConnection, tables: list[Table]) -> None:
    """Rows were inserted with their ids: the next generated id must come after the largest."""
    for table in tables:
        column = table.autoincrement_column
        if column is None:
            continue
        await writing.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence(:table, :column), "  # noqa: S608 (names from the schema)
                f"COALESCE(MAX({column.name}), 0) + 1, false) FROM {table.name}"
            ),
            {"table": table.name, "column": column.name},
        )
