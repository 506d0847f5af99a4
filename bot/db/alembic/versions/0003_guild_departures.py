"""servers the bot was removed from (user_version 3 before Alembic)

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.db.types import Snowflake, UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # One row per server the bot left (or was removed from): its data is purged once left_at is older
    # than the retention period, unless the bot is invited back first.
    op.create_table(
        "guild_departures",
        sa.Column("guild_id", Snowflake, primary_key=True, autoincrement=False),
        sa.Column("left_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward: restore a backup instead")
