"""HTTP API keys and idempotent POST responses (user_version 5 before Alembic)

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.db.types import Snowflake, UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # A server's API keys: only the SHA-256 digest of each key is stored, never the key.
    op.create_table(
        "api_keys",
        sa.Column("id", Snowflake, primary_key=True, autoincrement=True),
        sa.Column("guild_id", Snowflake, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("digest", sa.LargeBinary, nullable=False, unique=True),
        sa.Column("created_by", Snowflake, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("last_used_at", UTCDateTime),
        sqlite_autoincrement=True,
    )
    op.create_index("api_keys_by_guild", "api_keys", ["guild_id", "id"])
    # The first response to a POST with an Idempotency-Key, per credential, kept 24 hours. status is
    # NULL while the first request is still running.
    op.create_table(
        "api_idempotency",
        sa.Column("credential", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("guild_id", Snowflake, nullable=False),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("status", sa.Integer),
        sa.Column("headers", sa.Text),
        sa.Column("body", sa.LargeBinary),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("api_idempotency_by_time", "api_idempotency", ["created_at"])


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward: restore a backup instead")
