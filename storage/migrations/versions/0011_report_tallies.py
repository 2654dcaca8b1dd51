"""report tallies: the Board's report counts, kept as audits are written

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 23:55:00.000000

The tallies are filled from the audits already held, by the same counts the reports make
(storage/report_tally.py keeps them from now on).
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# Completed: submitted, with its moment. A moderator who agreed left their own rating
# blank: theirs is the auditor's.
BACKFILL = (
    """
    INSERT INTO tallied_audits
        (month, standard, additional, voluntary, kind, team, rated, audits)
    SELECT a.month, a.standard, a.additional, a.voluntary, a.kind, a.team,
           CASE WHEN EXISTS (SELECT 1 FROM criterion_rating r
                             WHERE r.audit_id = a.id AND r.rating IS NOT NULL)
                THEN TRUE ELSE FALSE END AS rated,
           count(*)
    FROM audit_request a
    WHERE a.status = 'submitted' AND a.submitted_at IS NOT NULL
    GROUP BY a.month, a.standard, a.additional, a.voluntary, a.kind, a.team, rated
    """,
    """
    INSERT INTO tallied_ratings (month, standard, additional, criterion_id, rating, answers)
    SELECT a.month, a.standard, a.additional, r.criterion_id, r.rating, count(*)
    FROM audit_request a JOIN criterion_rating r ON r.audit_id = a.id
    WHERE a.status = 'submitted' AND a.submitted_at IS NOT NULL AND a.voluntary = FALSE AND r.rating IS NOT NULL
    GROUP BY a.month, a.standard, a.additional, r.criterion_id, r.rating
    """,
    """
    INSERT INTO tallied_team_ratings
        (team, month, standard, additional, criterion_id, rating, answers)
    SELECT a.team, a.month, a.standard, a.additional, r.criterion_id, r.rating, count(*)
    FROM audit_request a JOIN criterion_rating r ON r.audit_id = a.id
    WHERE a.status = 'submitted' AND a.submitted_at IS NOT NULL AND a.voluntary = FALSE AND r.rating IS NOT NULL
    GROUP BY a.team, a.month, a.standard, a.additional, r.criterion_id, r.rating
    """,
    """
    INSERT INTO tallied_moderated_criteria
        (month, team, criterion_id, auditor_rating, moderator_rating, pairs)
    SELECT a.month, a.team, mr.criterion_id, r.rating,
           (CASE WHEN mr.agrees = TRUE THEN r.rating ELSE mr.rating END), count(*)
    FROM audit_request a
    JOIN moderation d ON d.audit_id = a.id
    JOIN moderation_rating mr ON mr.audit_id = a.id
    JOIN criterion_rating r ON r.audit_id = a.id AND r.criterion_id = mr.criterion_id
    WHERE d.submitted_at IS NOT NULL AND r.rating IS NOT NULL
      AND (CASE WHEN mr.agrees = TRUE THEN r.rating ELSE mr.rating END) IS NOT NULL
    GROUP BY a.month, a.team, mr.criterion_id, r.rating,
             (CASE WHEN mr.agrees = TRUE THEN r.rating ELSE mr.rating END)
    """,
    """
    INSERT INTO tallied_moderated_auditors
        (month, team, auditor_id, auditor_rating, moderator_rating, pairs)
    SELECT a.month, a.team, a.auditor_id, r.rating,
           (CASE WHEN mr.agrees = TRUE THEN r.rating ELSE mr.rating END), count(*)
    FROM audit_request a
    JOIN moderation d ON d.audit_id = a.id
    JOIN moderation_rating mr ON mr.audit_id = a.id
    JOIN criterion_rating r ON r.audit_id = a.id AND r.criterion_id = mr.criterion_id
    WHERE d.submitted_at IS NOT NULL AND r.rating IS NOT NULL
      AND (CASE WHEN mr.agrees = TRUE THEN r.rating ELSE mr.rating END) IS NOT NULL
    GROUP BY a.month, a.team, a.auditor_id, r.rating,
             (CASE WHEN mr.agrees = TRUE THEN r.rating ELSE mr.rating END)
    """,
)


def upgrade() -> None:
    op.create_table(
        "tallied_audits",
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("standard", sa.Integer(), nullable=False),
        sa.Column("additional", sa.Boolean(), nullable=False),
        sa.Column("voluntary", sa.Boolean(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("team", sa.String(length=120), nullable=False),
        sa.Column("rated", sa.Boolean(), nullable=False),
        sa.Column("audits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "month", "standard", "additional", "voluntary", "kind", "team", "rated"
        ),
    )
    op.create_table(
        "tallied_ratings",
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("standard", sa.Integer(), nullable=False),
        sa.Column("additional", sa.Boolean(), nullable=False),
        sa.Column("criterion_id", sa.String(length=8), nullable=False),
        sa.Column("rating", sa.String(length=16), nullable=False),
        sa.Column("answers", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("month", "standard", "additional", "criterion_id", "rating"),
    )
    op.create_table(
        "tallied_team_ratings",
        sa.Column("team", sa.String(length=120), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("standard", sa.Integer(), nullable=False),
        sa.Column("additional", sa.Boolean(), nullable=False),
        sa.Column("criterion_id", sa.String(length=8), nullable=False),
        sa.Column("rating", sa.String(length=16), nullable=False),
        sa.Column("answers", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "team", "month", "standard", "additional", "criterion_id", "rating"
        ),
    )
    op.create_table(
        "tallied_moderated_criteria",
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("team", sa.String(length=120), nullable=False),
        sa.Column("criterion_id", sa.String(length=8), nullable=False),
        sa.Column("auditor_rating", sa.String(length=16), nullable=False),
        sa.Column("moderator_rating", sa.String(length=16), nullable=False),
        sa.Column("pairs", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "month", "team", "criterion_id", "auditor_rating", "moderator_rating"
        ),
    )
    op.create_table(
        "tallied_moderated_auditors",
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("team", sa.String(length=120), nullable=False),
        sa.Column("auditor_id", sa.Integer(), nullable=False),
        sa.Column("auditor_rating", sa.String(length=16), nullable=False),
        sa.Column("moderator_rating", sa.String(length=16), nullable=False),
        sa.Column("pairs", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "month", "team", "auditor_id", "auditor_rating", "moderator_rating"
        ),
    )
    for statement in BACKFILL:
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("tallied_moderated_auditors")
    op.drop_table("tallied_moderated_criteria")
    op.drop_table("tallied_team_ratings")
    op.drop_table("tallied_ratings")
    op.drop_table("tallied_audits")
