"""One completed audit as a document for the supervision file (what the renderers show)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class RatedCriterion:
    """A criterion with the auditor's rating and evidence, and the moderator's view if any."""

    criterion_id: str
    text: str
    rating: str  # the rating's label: Below, Meets, Exceeds, N/A (or "—" if unanswered)
    evidence: str
    moderation: str = ""  # "Agreed", or "Moderator: Meets" (empty when not moderated)
    moderation_reason: str = ""


@dataclass(frozen=True)
class AuditDocument:
    """Everything one audit's document shows. Names are included: it is for the file."""

    audit_id: int
    standard_number: int
    standard_title: str
    kind: str  # "case audit", "self-audit", "peer audit"
    month_label: str  # "November 2026"
    about: str  # "case 4100107" or "the supervision records of Sam Green"
    team: str
    auditor_name: str
    worker_name: str | None
    submitted_on: date | None
    due_on: date
    criteria: list[RatedCriterion] = field(default_factory=list)
    feedback_who: str = ""  # "Their carer" / "nobody"
    feedback_said: str = ""
    feedback_no_contact_reason: str = ""
    involvement: str = ""  # how the worker was involved, in words
    involvement_detail: str = ""  # the feedback date or the reason
    moderator_name: str | None = None
    moderation_comment: str = ""
    voluntary: bool = False
