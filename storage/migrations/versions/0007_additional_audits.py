"""additional audits recorded when requested

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 20:40:00.000000

Existing audits are marked from the timetable of the framework file the bot runs with
(`PQF_FRAMEWORK_FILE`, else the shipped one), by the rule `practice.calendar.is_additional`
applies to new requests: requested (not voluntary), in a timetabled month, of another standard.
"""

import os
from pathlib import Path

import sqlalchemy as sa
from alembic import op

from practice.framework import load_framework

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_request") as batch:
        batch.add_column(
            sa.Column("additional", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("audit_request") as batch:
        batch.alter_column("additional", server_default=None)
    configured = os.environ.get("PQF_FRAMEWORK_FILE")
    framework = load_framework(Path(configured) if configured else None)
    audit = sa.table(
        "audit_request",
        sa.column("month", sa.String),
        sa.column("standard", sa.Integer),
        sa.column("voluntary", sa.Boolean),
        sa.column("additional", sa.Boolean),
    )
    for entry in framework.timetable:
        op.execute(
            audit.update()
            .where(
                audit.c.month.like(f"%-{entry.month:02d}"),
                audit.c.standard != entry.standard,
                audit.c.voluntary == sa.false(),
            )
            .values(additional=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("audit_request") as batch:
        batch.drop_column("additional")
