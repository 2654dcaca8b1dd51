"""directory held

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 23:10:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "directory_held",
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("aad_object_id", sa.String(length=64), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "aad_object_id"),
    )


def downgrade() -> None:
    op.drop_table("directory_held")
