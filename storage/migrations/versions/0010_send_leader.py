"""send leader, and an index for claiming the outbox

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 23:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "send_leader",
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("term", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("role"),
    )
    op.create_table(
        "send_member",
        sa.Column("instance", sa.String(length=64), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("instance"),
    )
    op.create_index(op.f("ix_send_member_seen_at"), "send_member", ["seen_at"], unique=False)
    op.create_index(
        "ix_outbox_message_status_recipient",
        "outbox_message",
        ["status", "recipient_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_message_status_recipient", table_name="outbox_message")
    op.drop_index(op.f("ix_send_member_seen_at"), table_name="send_member")
    op.drop_table("send_member")
    op.drop_table("send_leader")
