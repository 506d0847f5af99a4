"""audit outbox: log-channel posts still to be made (user_version 4 before Alembic)

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.db.types import Snowflake, UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # One row per audit event whose post is still due, written in the event's transaction. The target
    # is the guild's log channel at posting time; also_to is a previous log channel that is told about
    # a channel change. Rows are deleted once posted (or given up on).
    op.create_table(
        "audit_outbox",
        sa.Column(
            "event_id",
            Snowflake,
            sa.ForeignKey("audit_events.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("guild_id", Snowflake, nullable=False),
        sa.Column("also_to", Snowflake),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("last_error", sa.Text),
    )
    # Each guild's posts go out oldest first.
    op.create_index("audit_outbox_by_guild", "audit_outbox", ["guild_id", "event_id"])


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward: restore a backup instead")
