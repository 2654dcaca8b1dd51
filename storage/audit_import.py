"""Import completed audits from before the bot (the council's forms, September 2023 onwards).

One row per audit. Every row is checked first; a file with any bad row imports nothing and
every problem is reported with its line. Importing the same file again replaces the rows'
ratings and feedback instead of adding audits twice (an audit is recognised by its month,
standard, auditor, audited worker and case reference).

Columns: month (YYYY-MM), standard (1-10), auditor_email, team, and optionally kind
(sampled, self or peer; default sampled), audited_worker_email, case_reference, feedback,
feedback_for_report (yes/no), and one column per criterion id ("1.1", "1.2", ...) holding
Below, Meets, Exceeds or N/A. A blank rating means the form did not answer that criterion;
each row needs at least one rating, and only its own standard's criteria, unless its
`ratings_lost` column says yes: then every rating column is blank, and the audit counts in
"audits completed" and nowhere else (the Board counted it, but its ratings were lost).

Whether an audit was one of the month's additional audits is decided from the framework's
timetable at import time, and kept.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, time

from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from practice.answers import is_case_reference
from practice.calendar import is_additional
from practice.framework import Framework
from practice.month import Month, MonthError
from practice.text import EMAIL
from practice.working_days import last_working_day
from storage import report_tally
from storage.csv_import import ImportResult, _read_rows
from storage.models import (
    AuditRequest,
    AuditStatus,
    AuditStatusChange,
    CaseRecord,
    CaseStatus,
    CriterionRating,
    FeedbackCall,
    Staff,
)
from storage.progress import Progress, no_progress

FIXED_COLUMNS = (
    "month", "standard", "kind", "auditor_email", "audited_worker_email", "team",
    "case_reference", "feedback", "feedback_for_report", "ratings_lost",
)  # fmt: skip
REQUIRED = ("month", "standard", "auditor_email", "team")
RATING_WORDS = {
    "below": "below",
    "meets": "meets",
    "exceeds": "exceeds",
    "n/a": "not_applicable",
    "na": "not_applicable",
    "not applicable": "not_applicable",
    "not_applicable": "not_applicable",
}
KINDS = ("sampled", "self", "peer")
YES_NO = {"": False, "yes": True, "y": True, "true": True, "no": False, "n": False, "false": False}


@dataclass(frozen=True)
class _Audit:
    line: int
    key: str
    month: str
    standard: int
    kind: str
    auditor: str
    worker: str
    team: str
    reference: str
    feedback: str
    for_report: bool
    ratings: dict[str, str]


def _key(month: str, standard: int, auditor: str, worker: str, reference: str) -> str:
    identity = "|".join((month, str(standard), auditor, worker, reference))
    return "import/" + hashlib.sha256(identity.encode()).hexdigest()[:32]


async def import_audits(
    *, session: AsyncSession, framework: Framework, text: str, progress: Progress = no_progress
) -> ImportResult:
    """Create or replace completed audits from CSV text; all rows or none."""
    criterion_ids = [c.id for _, c in framework.criteria()]
    result = ImportResult()
    rows = _read_rows(
        text, FIXED_COLUMNS + tuple(criterion_ids), REQUIRED, result.errors, free_text=("feedback",)
    )
    if not rows:
        return result
    staff = {s.email: s for s in await session.exec(select(Staff))}
    parsed: list[_Audit] = []
    seen: dict[str, int] = {}
    for checked, row in enumerate(rows, 1):
        progress("checking audits", checked, len(rows))
        v = row.values
        where = f"line {row.line}"
        problems: list[str] = []
        month = v["month"]
        try:
            Month.parse(month)
        except MonthError:
            problems.append(f"month {month!r} is not a month like 2023-09")
        standard = framework.standard(int(v["standard"])) if v["standard"].isdigit() else None
        if standard is None:
            problems.append(f"standard {v['standard']!r} is not 1 to {len(framework.standards)}")
        kind = (v.get("kind") or "sampled").lower()
        if kind not in KINDS:
            problems.append(f"kind {v['kind']!r} must be sampled, self or peer")
        auditor = v["auditor_email"].lower()
        if not EMAIL.match(auditor):
            problems.append(f"auditor_email {auditor!r} is not an email address")
        elif auditor not in staff:
            problems.append(f"auditor_email {auditor!r} is not on the roster (import it, inactive)")
        worker = v.get("audited_worker_email", "").lower()
        if worker and worker not in staff:
            problems.append(f"audited_worker_email {worker!r} is not on the roster")
        if not v["team"] or len(v["team"]) > 120:
            problems.append("team is empty or longer than 120 characters")
        reference = v.get("case_reference", "").upper()
        if reference and not is_case_reference(reference):
            problems.append(f"case_reference {reference!r} is not a case reference")
        for_report_text = v.get("feedback_for_report", "").lower()
        if for_report_text not in YES_NO:
            problems.append(f"feedback_for_report {v['feedback_for_report']!r} must be yes or no")
        lost_text = v.get("ratings_lost", "").lower()
        if lost_text not in YES_NO:
            problems.append(f"ratings_lost {v['ratings_lost']!r} must be yes or no")
        ratings_lost = YES_NO.get(lost_text, False)
        if len(v.get("feedback", "")) > framework.max_text_length:
            problems.append("feedback is longer than the framework allows")
        ratings: dict[str, str] = {}
        for criterion_id in criterion_ids:
            given = v.get(criterion_id, "").strip()
            if not given:
                continue
            code = RATING_WORDS.get(given.lower())
            if code is None:
                problems.append(f"{criterion_id}: {given!r} is not Below, Meets, Exceeds or N/A")
            elif standard is not None and not criterion_id.startswith(f"{standard.number}."):
                problems.append(f"{criterion_id} is not a criterion of standard {standard.number}")
            else:
                ratings[criterion_id] = code
        if ratings_lost and ratings:
            problems.append("ratings_lost is yes, so every rating column must be blank")
        elif standard is not None and not ratings and not ratings_lost and not problems:
            problems.append(
                "no ratings: give at least one criterion's rating (or ratings_lost yes)"
            )
        if problems or standard is None:
            result.errors += [f"{where}: {p}" for p in problems]
            continue
        key = _key(month, standard.number, auditor, worker, reference)
        if key in seen:
            result.errors.append(f"{where}: the same audit as line {seen[key]}")
            continue
        seen[key] = row.line
        parsed.append(
            _Audit(row.line, key, month, standard.number, kind, auditor, worker, v["team"],
                   reference, v.get("feedback", ""), YES_NO[for_report_text], ratings)
        )  # fmt: skip
    if result.errors:
        return result.sort_errors()

    existing = {
        a.dispatch_key: a
        for a in await session.exec(
            select(AuditRequest).where(col(AuditRequest.dispatch_key).in_([p.key for p in parsed]))
        )
    }
    cases = {
        c.reference: c
        for c in await session.exec(
            select(CaseRecord).where(
                col(CaseRecord.reference).in_([p.reference for p in parsed if p.reference])
            )
        )
    }
    # The reports' tallies: the audits replaced stop counting as they were, and every audit
    # stored counts as it now is, in the import's transaction.
    await report_tally.untally(
        session=session, audit_ids=[a.id for a in existing.values() if a.id is not None]
    )
    stored: list[int] = []
    for saved, item in enumerate(parsed, 1):
        progress("saving audits", saved, len(parsed))
        stored.append(
            await _store(session, framework, item, staff, cases, existing.get(item.key), result)
        )
    await session.flush()
    await report_tally.tally(session=session, audit_ids=stored)
    return result


async def _store(
    session: AsyncSession,
    framework: Framework,
    item: _Audit,
    staff: dict[str, Staff],
    cases: dict[str, CaseRecord],
    audit: AuditRequest | None,
    result: ImportResult,
) -> int:
    """Save one audit from the forms (new, or replacing the one it was before); return its id."""
    month = Month.parse(item.month)
    due_on = last_working_day(month.year, month.number)
    worker = staff.get(item.worker) if item.worker else None
    case = cases.get(item.reference) if item.reference else None
    if item.reference and case is None:
        # A case from the forms: kept closed so it is never drawn for a new audit.
        case = CaseRecord(
            reference=item.reference, team=item.team,
            allocated_worker_id=worker.id if worker else None, status=CaseStatus.CLOSED,
            closed_on=due_on,
        )  # fmt: skip
        session.add(case)
        await session.flush()
        cases[item.reference] = case
    new = audit is None
    auditor_id = staff[item.auditor].id
    assert auditor_id is not None
    if audit is None:
        audit = AuditRequest(
            month=item.month,
            standard=item.standard,
            kind=item.kind,
            framework_version=f"import ({framework.version})",
            auditor_id=auditor_id,
            status=AuditStatus.SUBMITTED,
            due_on=due_on,
            dispatch_key=item.key,
            additional=is_additional(framework, month, item.standard),
            source="import",
            current_step="summary",
        )
        result.created += 1
    else:
        result.updated += 1
    audit.case_id = case.id if case else None
    audit.subject_worker_id = worker.id if worker else None
    audit.team = item.team
    audit.submitted_at = datetime.combine(due_on, time(12), tzinfo=UTC)
    audit.case_confirmed_at = audit.submitted_at
    session.add(audit)
    await session.flush()
    assert audit.id is not None
    await session.exec(delete(CriterionRating).where(col(CriterionRating.audit_id) == audit.id))
    for criterion_id, rating in item.ratings.items():
        session.add(
            CriterionRating(
                audit_id=audit.id, criterion_id=criterion_id, rating=rating, evidence=""
            )
        )
    feedback = await session.get(FeedbackCall, audit.id)
    if item.feedback:
        feedback = feedback or FeedbackCall(audit_id=audit.id)
        feedback.what_they_said = item.feedback
        feedback.suitable_for_report = item.for_report
        feedback.complete = True
        session.add(feedback)
    elif feedback is not None:
        await session.delete(feedback)
    if new:
        session.add(
            AuditStatusChange(audit_id=audit.id, status=AuditStatus.SUBMITTED, note="imported")
        )
    return audit.id
