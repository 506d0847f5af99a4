"""guild settings, audit events (user_version 2 before Alembic)

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.db.types import Snowflake, UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "guild_settings",
        sa.Column("guild_id", Snowflake, primary_key=True, autoincrement=False),
        sa.Column("log_channel_id", Snowflake),
        sa.Column("locale", sa.Text),
        sa.Column("log_channel_problem", sa.Text),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", Snowflake, primary_key=True, autoincrement=True),
        sa.Column("guild_id", Snowflake, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("actor_id", Snowflake),
        sa.Column("slug", sa.Text),
        sa.Column("payload", sa.Text, nullable=False, server_default="{}"),
        sa.Column("at", UTCDateTime, nullable=False),
        sqlite_autoincrement=True,
    )
    # latest() and the keep-last-N trim both walk one guild's events by id.
    op.create_index("audit_events_by_guild", "audit_events", ["guild_id", sa.text("id DESC")])


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward: restore a backup instead")
