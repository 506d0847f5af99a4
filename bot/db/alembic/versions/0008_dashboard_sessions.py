"""web dashboard sessions

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.db.types import Snowflake, UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # One row per browser logged in to the dashboard, keyed by the SHA-256 digest of the random session
    # id in its cookie (never the id itself). Per user, not per server: a server's purge leaves it
    # alone. access_token is the Discord OAuth token, encrypted (TokenCipher).
    op.create_table(
        "dashboard_sessions",
        sa.Column("digest", sa.LargeBinary, primary_key=True),
        sa.Column("user_id", Snowflake, nullable=False),
        sa.Column("csrf", sa.Text, nullable=False),
        sa.Column("access_token", sa.Text, nullable=False),
        sa.Column("token_expires_at", UTCDateTime, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("last_seen_at", UTCDateTime, nullable=False),
        sa.Column("flash", sa.Text),
    )
    op.create_index("dashboard_sessions_by_seen", "dashboard_sessions", ["last_seen_at"])


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward: restore a backup instead")
