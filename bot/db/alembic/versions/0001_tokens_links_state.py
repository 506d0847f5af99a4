"""guild tokens, link records, app state (user_version 1 before Alembic)

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.db.types import Snowflake, UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "guild_tokens",
        sa.Column("guild_id", Snowflake, primary_key=True, autoincrement=False),
        sa.Column("ciphertext", sa.Text, nullable=False),
        sa.Column("last4", sa.Text, nullable=False),
        sa.Column("set_by", Snowflake, nullable=False),
        sa.Column("set_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "link_records",
        sa.Column("guild_id", Snowflake, primary_key=True, autoincrement=False),
        sa.Column("slug", sa.Text, primary_key=True),
        sa.Column("created_by", Snowflake, nullable=False),
        sa.Column("last_touched_by", Snowflake, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("touched_at", UTCDateTime, nullable=False),
    )
    # Autocomplete lists a guild's links most recently touched first.
    op.create_index("link_records_by_touch", "link_records", ["guild_id", sa.text("touched_at DESC")])
    op.create_table(
        "app_state",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward: restore a backup instead")
