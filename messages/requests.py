"""Ask one member of staff for one audit: create the request and put its card in the outbox."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date

from sqlmodel.ext.asyncio.session import AsyncSession

from messages.request_cards import queue_request_card
from practice.audit_steps import AuditKind
from practice.calendar import audits_in_month, is_additional
from practice.dispatch import monthly_quota
from practice.framework import Framework
from practice.month import Month
from practice.sampling import (
    CaseCandidate,
    StaffCandidate,
    choose,
    eligible_cases,
    eligible_peers,
    eligible_supervisees,
)
from practice.working_days import last_working_day
from storage import audits as audit_store
from storage import roster
from storage.models import AuditRequest, CaseRecord, CaseStatus, OutboxMessage, Staff

MANAGER_KINDS = ("sampled",)
PRACTITIONER_KINDS = ("self", "peer")


class RequestError(ValueError):
    """The audit cannot be requested; the message says why."""


@dataclass(frozen=True)
class RequestedAudit:
    """The request created and the outbox message carrying its card."""

    audit: AuditRequest
    auditor: Staff
    message: OutboxMessage


def default_kind(framework: Framework, auditor: Staff, calendar_month: int) -> AuditKind:
    """Return the kind of audit the auditor's role does this month."""
    role = framework.role(auditor.role_code)
    if role is None or role.audit_kind != "practitioner":
        return AuditKind.SAMPLED
    entry = framework.timetable_for_month(calendar_month)
    return AuditKind(entry.practitioner_kind) if entry else AuditKind.SELF


def _quota_reached(
    framework: Framework, auditor: Staff, standard: int, month: str, quota: int
) -> str:
    """Say why nobody is asked for more than their role's quota, and what they can do."""
    extra = "they can start an extra one themselves with 'new audit' in Teams"
    if quota == 0:
        role = framework.role(auditor.role_code)
        why = " (moderators moderate audits)" if role and role.audit_kind == "moderation" else ""
        return (
            f"{auditor.email}'s role ({auditor.role_code}) is asked for no audits of standard "
            f"{standard}{why}; {extra}"
        )
    asked = "1 audit" if quota == 1 else f"{quota} audits"
    return (
        f"{auditor.email} already has the {asked} of standard {standard} their role "
        f"({auditor.role_code}) is asked for in {month}; nobody is asked for more ({extra})"
    )


def _staff_candidate(person: Staff) -> StaffCandidate:
    assert person.id is not None
    return StaffCandidate(
        person.id, person.role_code, person.team, person.supervisor_id, person.active
    )


async def request_audit(
    *,
    session: AsyncSession,
    framework: Framework,
    auditor_email: str,
    standard_number: int,
    month: str,
    today: date,
    kind: AuditKind | None = None,
    case_reference: str | None = None,
    subject_email: str | None = None,
    rng: random.Random | None = None,
) -> RequestedAudit:
    """Create an audit request for the auditor and queue its request card."""
    rng = rng or random.Random()  # noqa: S311 - a fair draw, not a secret
    auditor = await roster.staff_by_email(session=session, email=auditor_email)
    if auditor is None:
        raise RequestError(f"{auditor_email} is not on the roster (import the staff file first)")
    if not auditor.active:
        raise RequestError(f"{auditor.email} is marked inactive on the roster")
    standard = framework.standard(standard_number)
    if standard is None:
        raise RequestError(
            f"there is no standard {standard_number}; "
            f"the framework has standards 1 to {len(framework.standards)}"
        )
    requested_month = Month.parse(month)
    kind = kind or default_kind(framework, auditor, requested_month.number)
    since = str(requested_month.plus(-12))

    case: CaseRecord | None = None
    subject: Staff | None = None
    if subject_email:
        subject = await roster.staff_by_email(session=session, email=subject_email)
        if subject is None:
            raise RequestError(f"{subject_email} is not on the roster")
        if subject.id == auditor.id and kind is not AuditKind.SELF:
            raise RequestError("the auditor cannot audit their own work except in a self-audit")
    if kind is AuditKind.SELF:
        if subject is not None and subject.id != auditor.id:
            raise RequestError("a self-audit is of the auditor's own work; leave out --subject")
        subject = auditor
    elif kind is AuditKind.PEER and subject is None:
        everyone = await roster.all_staff(session=session)
        peer = choose(
            eligible_peers([_staff_candidate(s) for s in everyone], _staff_candidate(auditor)), rng
        )
        if peer is None:
            raise RequestError(
                f"nobody else with role {auditor.role_code} in another team is on the roster "
                "to peer-audit"
            )
        subject = next(s for s in everyone if s.id == peer.id)
    elif kind is AuditKind.SAMPLED and standard.subject == "supervision" and subject is None:
        everyone = await roster.all_staff(session=session)
        audited = await audit_store.recently_audited_worker_ids(
            session=session, since_month=since, standard=standard.number
        )
        picked = choose(
            eligible_supervisees(
                [_staff_candidate(s) for s in everyone], _staff_candidate(auditor), audited
            ),
            rng,
        )
        if picked is None:
            raise RequestError("no supervision records are eligible for this audit")
        subject = next(s for s in everyone if s.id == picked.id)

    if kind is AuditKind.SAMPLED and standard.subject == "case":
        if case_reference:
            case = await roster.case_by_reference(session=session, reference=case_reference)
            if case is None:
                raise RequestError(f"case {case_reference} is not on the case list")
            if case.allocated_worker_id == auditor.id:
                raise RequestError("a case audit must not be of the auditor's own case")
        else:
            cases = await roster.all_cases(session=session)
            audited = await audit_store.recently_audited_case_ids(
                session=session, since_month=since
            )
            candidates = eligible_cases(
                [
                    CaseCandidate(
                        c.id,
                        c.team,
                        c.allocated_worker_id,
                        c.status == CaseStatus.OPEN,
                        c.closed_on,
                    )
                    for c in cases
                    if c.id is not None
                ],
                auditor_id=auditor.id or 0,
                today=today,
                recently_closed_days=framework.recently_closed_days,
                audited_recently=audited,
            )
            picked_case = choose(candidates, rng)
            if picked_case is None:
                raise RequestError(
                    "no case on the case list is open or recently closed, outside the auditor's "
                    "own caseload and unaudited in the last 12 months"
                )
            case = next(c for c in cases if c.id == picked_case.id)
        if case.allocated_worker_id is not None:
            subject = await roster.staff_by_id(session=session, staff_id=case.allocated_worker_id)
    elif case_reference:
        raise RequestError(
            "--case is only for case audits by managers; practitioners choose the case themselves"
        )

    assert auditor.id is not None
    quota = monthly_quota(
        framework,
        auditor.role_code,
        standard.number,
        audits_in_month(framework, requested_month.year, requested_month.number),
    )
    already = await audit_store.requested_count(
        session=session, auditor_id=auditor.id, standard=standard.number, month=month
    )
    if already >= quota:
        raise RequestError(_quota_reached(framework, auditor, standard.number, month, quota))
    audit = await audit_store.create_audit_request(
        session=session,
        auditor=auditor,
        standard=standard,
        kind=kind,
        month=month,
        due_on=last_working_day(requested_month.year, requested_month.number),
        framework_version=framework.version,
        case=case,
        subject=subject,
        additional=is_additional(framework, requested_month, standard.number),
    )
    message = await queue_request_card(
        session=session, audit=audit, standard=standard, case=case, subject=subject,
        auditor=auditor,
    )  # fmt: skip
    return RequestedAudit(audit=audit, auditor=auditor, message=message)
