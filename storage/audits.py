"""Audit requests and their answers: create, read, save as answered, submit."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import bindparam, update
from sqlalchemy import select as select_entities
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from practice.answers import check_criterion_answer
from practice.audit_steps import AuditKind, AuditProgress
from practice.framework import Framework, Standard
from storage import report_tally
from storage.models import (
    AuditRequest,
    AuditStatus,
    AuditStatusChange,
    CaseRecord,
    CriterionRating,
    FeedbackCall,
    Staff,
    WorkerInvolvement,
    utc_now,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditDetail:
    """An audit with the people, case and answers it refers to."""

    audit: AuditRequest
    auditor: Staff
    case: CaseRecord | None
    subject: Staff | None
    allocated_worker: Staff | None
    ratings: dict[str, CriterionRating]
    feedback: FeedbackCall | None
    involvement: WorkerInvolvement | None

    @property
    def kind(self) -> AuditKind:
        """Return the kind of audit."""
        return AuditKind(self.audit.kind)

    def progress(self, framework: Framework) -> AuditProgress:
        """Return which steps have a complete saved answer."""
        answered = frozenset(
            criterion_id
            for criterion_id, row in self.ratings.items()
            if not check_criterion_answer(framework, row.rating, row.evidence)
        )
        return AuditProgress(
            case_confirmed=self.audit.case_confirmed_at is not None,
            answered_criteria=answered,
            feedback_complete=self.feedback is not None and self.feedback.complete,
            involvement_complete=self.involvement is not None and self.involvement.complete,
        )


class HasTeam(Protocol):
    """Anything that belongs to a team: a case, a member of staff."""

    @property
    def team(self) -> str: ...


def audited_team(case: HasTeam | None, subject: HasTeam | None, auditor: HasTeam | None) -> str:
    """Return the team whose practice an audit looks at: the case's, the worker's, or ''."""
    if case is not None and case.team:
        return case.team
    if subject is not None:
        return subject.team
    return auditor.team if auditor is not None else ""


async def _record_status(
    session: AsyncSession, audit: AuditRequest, status: AuditStatus, actor_id: int | None, note: str
) -> None:
    audit.status = status
    audit.updated_at = utc_now()
    session.add(audit)
    await session.flush()
    assert audit.id is not None
    session.add(
        AuditStatusChange(audit_id=audit.id, status=status, changed_by_id=actor_id, note=note)
    )
    log.info("audit %s is now %s (by staff %s)", audit.id, status.value, actor_id)


async def create_audit_request(
    *,
    session: AsyncSession,
    auditor: Staff,
    standard: Standard,
    kind: AuditKind,
    month: str,
    due_on: date,
    framework_version: str,
    case: CaseRecord | None = None,
    subject: Staff | None = None,
    note: str = "",
    voluntary: bool = False,
    additional: bool = False,
) -> AuditRequest:
    """Create an audit request in the `requested` state, with its first history entry."""
    assert auditor.id is not None
    audit = AuditRequest(
        month=month,
        standard=standard.number,
        kind=kind,
        framework_version=framework_version,
        auditor_id=auditor.id,
        case_id=case.id if case else None,
        subject_worker_id=subject.id if subject else None,
        status=AuditStatus.REQUESTED,
        due_on=due_on,
        voluntary=voluntary,
        additional=additional,
        team=audited_team(case, subject, auditor),
    )
    session.add(audit)
    await session.flush()
    assert audit.id is not None
    session.add(AuditStatusChange(audit_id=audit.id, status=AuditStatus.REQUESTED, note=note))
    return audit


def _detail_statement() -> Any:
    # Built once: building the aliases and joins anew took a quarter of a turn's CPU, and a
    # statement built once is also compiled once (SQLAlchemy caches it by identity).
    auditor, subject, allocated = (
        aliased(Staff, name=name) for name in ("auditor", "subject", "allocated")
    )
    # sqlalchemy's select: sqlmodel's is typed for four entities at most.
    return (
        select_entities(
            AuditRequest, auditor, CaseRecord, subject, allocated, FeedbackCall, WorkerInvolvement
        )
        .join(auditor, col(auditor.id) == AuditRequest.auditor_id)
        .outerjoin(CaseRecord, col(CaseRecord.id) == AuditRequest.case_id)
        .outerjoin(subject, col(subject.id) == AuditRequest.subject_worker_id)
        .outerjoin(allocated, col(allocated.id) == CaseRecord.allocated_worker_id)
        .outerjoin(FeedbackCall, col(FeedbackCall.audit_id) == AuditRequest.id)
        .outerjoin(WorkerInvolvement, col(WorkerInvolvement.audit_id) == AuditRequest.id)
        .where(col(AuditRequest.id) == bindparam("audit_id"))
    )


_DETAIL = _detail_statement()
_RATINGS = select(CriterionRating).where(col(CriterionRating.audit_id) == bindparam("audit_id"))
# Every answer runs these two. Built once and run as plain SQL: building an UPDATE and the
# ORM's matching of it against the objects in the session cost more than running it.
_TAKE_CARD = (
    update(AuditRequest)
    .where(
        col(AuditRequest.id) == bindparam("audit"), col(AuditRequest.card_seq) == bindparam("seq")
    )
    .values(card_seq=bindparam("next_seq"), updated_at=bindparam("now"))
)
_SET_LIVE_CARD = (
    update(AuditRequest)
    .where(col(AuditRequest.id) == bindparam("audit"))
    .values(live_card_activity_id=bindparam("activity_id"))
)


async def audit_detail(*, session: AsyncSession, audit_id: int) -> AuditDetail | None:
    """Return an audit with its people, case and answers, or None if there is no such audit."""
    # Two queries (every turn of an audit reads its detail, some twice): the audit with its
    # people, case, feedback call and involvement, then its ratings.
    row = (await session.exec(_DETAIL, params={"audit_id": audit_id})).first()
    if row is None:
        return None
    audit, auditor_row, case, subject_row, allocated_row, feedback, involvement = row
    ratings = {
        r.criterion_id: r for r in await session.exec(_RATINGS, params={"audit_id": audit_id})
    }
    return AuditDetail(
        audit=audit,
        auditor=auditor_row,
        case=case,
        subject=subject_row,
        allocated_worker=allocated_row,
        ratings=ratings,
        feedback=feedback,
        involvement=involvement,
    )


async def audits_of_auditor(
    *, session: AsyncSession, auditor_id: int, submitted_since: datetime | None = None
) -> list[AuditRequest]:
    """Return an auditor's unfinished audits, and those submitted since a time, oldest due first."""
    rows = await session.exec(
        select(AuditRequest)
        .where(AuditRequest.auditor_id == auditor_id)
        .order_by(col(AuditRequest.due_on), col(AuditRequest.id))
    )
    return [
        a
        for a in rows
        if a.status != AuditStatus.SUBMITTED
        or (submitted_since is not None and a.submitted_at and a.submitted_at >= submitted_since)
    ]


async def take_card(*, session: AsyncSession, audit_id: int, seq: int) -> int | None:
    """Consume the live card numbered `seq`; return the next number, or None if it was stale.

    The compare-and-set makes a double click, a replayed submit or two devices answering
    at once count once.
    """
    now = utc_now()
    connection = await session.connection()
    result = await connection.execute(
        _TAKE_CARD, {"audit": audit_id, "seq": seq, "next_seq": seq + 1, "now": now}
    )
    if not result.rowcount:
        return None
    _as_stored(session, audit_id, card_seq=seq + 1, updated_at=now)
    return seq + 1


async def next_card(*, session: AsyncSession, audit: AuditRequest, step: str) -> int:
    """Move the audit to `step` and return the number for the card about to be sent."""
    result = await session.exec(
        update(AuditRequest)
        .where(col(AuditRequest.id) == audit.id)
        .values(card_seq=AuditRequest.card_seq + 1, current_step=step, updated_at=utc_now())
        .returning(col(AuditRequest.card_seq))
    )
    seq = int(result.scalar_one())
    await session.refresh(audit)
    return seq


async def move_to_step(*, session: AsyncSession, audit: AuditRequest, step: str) -> None:
    """Record the step whose card is now live."""
    audit.current_step = step
    audit.updated_at = utc_now()
    session.add(audit)


async def set_live_card(*, session: AsyncSession, audit_id: int, activity_id: str | None) -> None:
    """Record the Teams activity id of the audit's live card (so it can be replaced later)."""
    connection = await session.connection()
    await connection.execute(_SET_LIVE_CARD, {"audit": audit_id, "activity_id": activity_id})
    _as_stored(session, audit_id, live_card_activity_id=activity_id)


def _as_stored(session: AsyncSession, audit_id: int, **values: Any) -> None:
    """Give the audit this session holds, if any, the values plain SQL just stored."""
    held = session.identity_map.get(identity_key(AuditRequest, audit_id))
    if held is not None:
        for name, value in values.items():
            set_committed_value(held, name, value)


async def start(
    *, session: AsyncSession, audit: AuditRequest, actor_id: int, now: datetime | None = None
) -> None:
    """Mark a requested audit as in progress (now, by the bot's clock)."""
    if audit.status == AuditStatus.REQUESTED:
        audit.started_at = now or utc_now()
        await _record_status(session, audit, AuditStatus.IN_PROGRESS, actor_id, "")


async def confirm_case(
    *, session: AsyncSession, audit: AuditRequest, case: CaseRecord | None, subject: Staff | None
) -> None:
    """Record the case (or supervision record's worker) the auditor confirmed."""
    if case is not None:
        audit.case_id = case.id
    if subject is not None:
        audit.subject_worker_id = subject.id
    if case is not None or subject is not None:
        audit.team = audited_team(case, subject, None) or audit.team
    audit.case_confirmed_at = utc_now()
    audit.updated_at = utc_now()
    session.add(audit)


async def save_rating(
    *,
    session: AsyncSession,
    audit_id: int,
    criterion_id: str,
    rating: str | None,
    evidence: str,
    saved: Mapping[str, CriterionRating] | None = None,
) -> CriterionRating:
    """Save (or replace) the rating and evidence for one criterion; a draft may lack a rating.

    `saved` is the audit's ratings as this session already read them (`AuditDetail.ratings`),
    so they need not be read again. Return the row as saved.
    """
    if saved is not None:
        row = saved.get(criterion_id)
    else:
        row = (
            await session.exec(
                select(CriterionRating).where(
                    CriterionRating.audit_id == audit_id,
                    CriterionRating.criterion_id == criterion_id,
                )
            )
        ).first()
    if row is None:
        row = CriterionRating(audit_id=audit_id, criterion_id=criterion_id)
    row.rating = rating
    row.evidence = evidence
    row.updated_at = utc_now()
    session.add(row)
    return row


async def save_feedback_call(
    *,
    session: AsyncSession,
    audit_id: int,
    contacted: Collection[str],
    what_they_said: str,
    no_contact_reason: str,
    suitable_for_report: bool,
    complete: bool,
) -> FeedbackCall:
    """Save (or replace) the feedback call; return the row as saved."""
    row = await session.get(FeedbackCall, audit_id) or FeedbackCall(audit_id=audit_id)
    row.contacted = ",".join(contacted)
    row.what_they_said = what_they_said
    row.no_contact_reason = no_contact_reason
    row.suitable_for_report = suitable_for_report
    row.complete = complete
    row.updated_at = utc_now()
    session.add(row)
    return row


async def save_involvement(
    *,
    session: AsyncSession,
    audit_id: int,
    how: str,
    feedback_on: date | None,
    reason: str,
    complete: bool,
) -> WorkerInvolvement:
    """Save (or replace) how the allocated worker was involved; return the row as saved."""
    row = await session.get(WorkerInvolvement, audit_id) or WorkerInvolvement(audit_id=audit_id)
    row.how = how
    row.feedback_on = feedback_on
    row.reason = reason
    row.complete = complete
    row.updated_at = utc_now()
    session.add(row)
    return row


async def submit(
    *, session: AsyncSession, audit: AuditRequest, actor_id: int, now: datetime | None = None
) -> None:
    """Mark the audit submitted (now, by the bot's clock); its answers can no longer change.

    The reports' tallies count it in the same transaction.
    """
    assert audit.id is not None
    await report_tally.untally(session=session, audit_ids=[audit.id])
    audit.submitted_at = now or utc_now()
    audit.live_card_activity_id = None
    await _record_status(session, audit, AuditStatus.SUBMITTED, actor_id, "")
    await report_tally.tally(session=session, audit_ids=[audit.id])


async def requested_count(
    *, session: AsyncSession, auditor_id: int, standard: int, month: str
) -> int:
    """Return how many audits of a standard an auditor was asked for in a month (not voluntary)."""
    rows = await session.exec(
        select(func.count())
        .select_from(AuditRequest)
        .where(
            AuditRequest.auditor_id == auditor_id,
            AuditRequest.standard == standard,
            AuditRequest.month == month,
            col(AuditRequest.voluntary).is_(False),
        )
    )
    return int(rows.one())


async def recently_audited_case_ids(*, session: AsyncSession, since_month: str) -> set[int]:
    """Return the ids of cases with an audit requested in or after `since_month` (YYYY-MM)."""
    rows = await session.exec(
        select(AuditRequest.case_id).where(
            col(AuditRequest.month) >= since_month, col(AuditRequest.case_id).is_not(None)
        )
    )
    return {case_id for case_id in rows if case_id is not None}


async def recently_audited_worker_ids(
    *, session: AsyncSession, since_month: str, standard: int
) -> set[int]:
    """Return the ids of workers audited against a standard in or after `since_month`."""
    rows = await session.exec(
        select(AuditRequest.subject_worker_id).where(
            col(AuditRequest.month) >= since_month,
            AuditRequest.standard == standard,
            col(AuditRequest.subject_worker_id).is_not(None),
        )
    )
    return {worker_id for worker_id in rows if worker_id is not None}
