"""An audit in words: what it looks at and whom the auditor should involve.

Kept here, below both the cards that show them and the audit document that prints them.
"""

from __future__ import annotations


def audit_about(*, supervision: bool, subject_name: str | None, case_reference: str | None) -> str:
    """Return what is being audited, e.g. 'case ABC123' or "Sam Jones's supervision"."""
    if supervision:
        return (
            f"the supervision records of {subject_name}" if subject_name else "supervision records"
        )
    return f"case {case_reference}" if case_reference else "a case to be chosen"


def worker_to_involve(*, supervision: bool, worker_name: str | None) -> str:
    """Return who the auditor should involve, in words."""
    if supervision:
        return "the supervisor"
    if worker_name is not None:
        return f"the allocated worker, {worker_name}"
    return "the allocated worker (or the person most recently involved)"
