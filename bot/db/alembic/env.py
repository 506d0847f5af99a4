"""Alembic's environment for the bot: migrations run inside the bot (``bot.db.migrations``), on the
connection it passes in ``config.attributes["connection"]``, inside the transaction it opened (all
pending revisions are applied together, or none). There is no alembic.ini: see ``README.md`` here."""

from __future__ import annotations

from alembic import context

from bot.db.schema import metadata


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("the bot's migrations run from bot.db.migrations, not from the alembic command")
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()


# Alembic runs this file to migrate; a plain import (a tool listing every module) only defines run().
if hasattr(context, "config"):
    run()
