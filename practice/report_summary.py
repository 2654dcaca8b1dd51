"""What a person's report summary lists besides the figures: criteria often rated Below, own audits.

Kept here, below both the cards that show them and the report service that finds them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BelowCriterion:
    """A criterion often rated Below, for the summary."""

    criterion_id: str
    text: str
    percent: str  # already formatted, e.g. "16.3%"
    answered: int


@dataclass(frozen=True)
class OwnAudit:
    """One of the person's own audits (done by them or of their work) in their summary."""

    audit_id: int
    title: str
    role: str  # "You audited" / "Your work, audited by Megan Bowen"
    outcome: str  # "Meets 5, Exceeds 2, Below 1" or "not submitted yet"
    submitted: bool  # only a submitted audit can be downloaded
