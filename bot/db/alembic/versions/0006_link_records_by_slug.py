"""link records: index on lower(slug), for "who manages this link" with case ignored

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # claim() and managed_elsewhere() look a slug up across every guild, case ignored.
    op.create_index("link_records_by_slug", "link_records", [sa.text("lower(slug)")])


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward: restore a backup instead")
