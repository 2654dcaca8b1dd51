"""board pack

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 20:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "board_pack",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("published_by", sa.String(length=254), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("month", "version"),
    )
    op.create_index(op.f("ix_board_pack_month"), "board_pack", ["month"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_board_pack_month"), table_name="board_pack")
    op.drop_table("board_pack")
