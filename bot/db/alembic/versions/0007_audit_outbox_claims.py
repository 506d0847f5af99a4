"""audit outbox: claims, so that several processes sharing the database post each event once

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.db.types import UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # The process posting a row (claimed_by) holds it until claimed_until; a claim past that time is
    # free again, so the posts of a process that died are taken over by another one.
    op.add_column("audit_outbox", sa.Column("claimed_by", sa.Text))
    op.add_column("audit_outbox", sa.Column("claimed_until", UTCDateTime))


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward: restore a backup instead")
