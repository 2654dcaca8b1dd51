"""directory sync

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 19:45:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "directory_sync",
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("delta_link", sa.Text(), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source"),
    )


def downgrade() -> None:
    op.drop_table("directory_sync")
