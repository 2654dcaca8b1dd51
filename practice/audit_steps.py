"""The steps of an audit, in order, and where an auditor should carry on.

An audit of a standard goes: confirm the case (or supervision record) → one step per
criterion → the feedback call → the allocated worker's involvement → the summary, from
which the auditor submits. Steps are named by strings stored with the audit:
"case", "criterion:3.2", "feedback", "involvement", "summary".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from practice.framework import Standard

CASE = "case"
FEEDBACK = "feedback"
INVOLVEMENT = "involvement"
SUMMARY = "summary"
_CRITERION_PREFIX = "criterion:"


class AuditKind(StrEnum):
    """Who audits whose work: a sampled case audit by a manager, or a practitioner's own."""

    SAMPLED = "sampled"
    SELF = "self"
    PEER = "peer"

    @property
    def description(self) -> str:
        """Return the plain-language name used in messages."""
        return _KIND_NAMES[self]


_KIND_NAMES = {
    AuditKind.SAMPLED: "case audit",
    AuditKind.SELF: "self-audit",
    AuditKind.PEER: "peer audit",
}


def criterion_step(criterion_id: str) -> str:
    """Return the step name of a criterion."""
    return f"{_CRITERION_PREFIX}{criterion_id}"


def criterion_of(step: str) -> str | None:
    """Return the criterion id of a criterion step, or None for any other step."""
    return step.removeprefix(_CRITERION_PREFIX) if step.startswith(_CRITERION_PREFIX) else None


def steps(standard: Standard, kind: AuditKind) -> tuple[str, ...]:
    """Return every step of an audit of this standard, in order.

    A self-audit has no involvement step: the auditor is the allocated worker.
    """
    involvement = () if kind is AuditKind.SELF else (INVOLVEMENT,)
    return (
        CASE,
        *(criterion_step(c.id) for c in standard.criteria),
        FEEDBACK,
        *involvement,
        SUMMARY,
    )


def is_step(standard: Standard, kind: AuditKind, step: str) -> bool:
    """Return whether `step` is a step of this audit."""
    return step in steps(standard, kind)


@dataclass(frozen=True)
class AuditProgress:
    """Which parts of an audit have a complete, saved answer."""

    case_confirmed: bool = False
    answered_criteria: frozenset[str] = field(default_factory=frozenset)
    feedback_complete: bool = False
    involvement_complete: bool = False

    def is_answered(self, step: str) -> bool:
        """Return whether this step has a complete answer (the summary never has one)."""
        if step == CASE:
            return self.case_confirmed
        if step == FEEDBACK:
            return self.feedback_complete
        if step == INVOLVEMENT:
            return self.involvement_complete
        criterion_id = criterion_of(step)
        return criterion_id is not None and criterion_id in self.answered_criteria


def first_unanswered(standard: Standard, kind: AuditKind, progress: AuditProgress) -> str:
    """Return the first step without a complete answer, or the summary when all are done."""
    return next((s for s in steps(standard, kind) if not progress.is_answered(s)), SUMMARY)


def is_complete(standard: Standard, kind: AuditKind, progress: AuditProgress) -> bool:
    """Return whether every step before the summary has a complete answer."""
    return first_unanswered(standard, kind, progress) == SUMMARY


def step_after(standard: Standard, kind: AuditKind, step: str) -> str:
    """Return the step that follows `step` (the summary follows itself)."""
    order = steps(standard, kind)
    return order[min(order.index(step) + 1, len(order) - 1)]


def step_before(standard: Standard, kind: AuditKind, step: str) -> str:
    """Return the step before `step` (the case step precedes itself)."""
    order = steps(standard, kind)
    return order[max(order.index(step) - 1, 0)]


def criterion_position(standard: Standard, criterion_id: str) -> tuple[int, int]:
    """Return (n, total) for "criterion n of total"."""
    ids = [c.id for c in standard.criteria]
    return ids.index(criterion_id) + 1, len(ids)
