"""The monthly cycle's jobs: dispatch, reminders, managers' digests, month end, moderation.

Each job looks at the calendar for `today` and does what is due, if anything. Each is
idempotent: it records its run per period (`storage.jobs.run_once`) and every message it
queues has its own key, so it may run many times a day, on several instances at once, or
late after the bot was down, and still asks and tells everyone once.
"""

from __future__ import annotations

import logging
import secrets
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import Boolean, Select, literal, type_coerce, update
from sqlalchemy import exists as sa_exists
from sqlalchemy import insert as sa_insert
from sqlalchemy import select as sa_select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cards.cycle_cards import DigestRow, SampleEntry
from cards.views import list_entry
from messages.notices import queue_digest, queue_moderation_sample, queue_reminder
from messages.request_cards import unrendered_request_card
from practice.audit_steps import AuditKind
from practice.calendar import (
    AuditMonth,
    audits_in_month,
    days_before_due,
    moderation_until,
    previous_month,
)
from practice.dispatch import (
    DispatchInputs,
    DispatchPlan,
    PlannedRequest,
    RosterEntry,
    plan_month,
    recent_pairs,
)
from practice.framework import Framework
from practice.moderation import CompletedAudit, draw_sample
from practice.month import Month, month_label
from practice.sampling import CaseColumns
from storage import audits as audit_store
from storage import roster
from storage.audits import audited_team
from storage.database import Database
from storage.jobs import RunOutcome, run_once
from storage.models import (
    AuditRequest,
    AuditStatus,
    AuditStatusChange,
    CaseRecord,
    CaseStatus,
    Moderation,
    ModerationSample,
    OutboxMessage,
    OutboxStatus,
    Staff,
    utc_now,
)
from storage.progress import Progress, no_progress
from storage.retention import purge
from storage.roster import Reach

log = logging.getLogger(__name__)

CREATE_BATCH = 500
CASE_SLICE = 5_000
READ_SLICE = 5_000


class CycleError(ValueError):
    """A job was asked for something the calendar does not have."""


@dataclass(frozen=True)
class Cycle:
    """What the jobs need: the database, the framework, the council's time zone."""

    database: Database
    framework: Framework
    zone: ZoneInfo
    instance: str = "cli"
    # How long audits keep their words (PQF_RETENTION_MONTHS); None: the purge job is off.
    retention_months: int | None = None


@dataclass
class DispatchReport:
    """What a dispatch asked for, or (in a dry run) would ask for."""

    month: str
    seed: str
    ran: bool
    plan: DispatchPlan | None = None
    summary: dict[str, Any] = field(default_factory=dict)


class Person(NamedTuple):
    """What a request card and an audit's team need of a member of staff."""

    name: str
    team: str


async def _dispatch_inputs(
    session: AsyncSession, framework: Framework, audits: list[AuditMonth]
) -> tuple[DispatchInputs, dict[int, Person]]:
    # A whole workforce: the roster, the case list and a year of audits are read as plain
    # rows of the columns the plan needs (an ORM object each would cost more than all the
    # rest), and what can be left out in SQL is: cases the draw may not take, and earlier
    # months' audits beyond the ids and pairs the draw must avoid.
    month = audits[0].month
    since = str(Month.parse(month).plus(-12))
    connection = await session.connection()
    staff_table = Staff.__table__  # type: ignore[attr-defined]
    roster: list[RosterEntry] = []
    people: dict[int, Person] = {}
    for staff_id, name, role, team, supervisor_id, active, leave in await connection.execute(
        sa_select(
            staff_table.c.id,
            staff_table.c.name,
            staff_table.c.role_code,
            staff_table.c.team,
            staff_table.c.supervisor_id,
            staff_table.c.active,
            staff_table.c.on_leave_until,
        ).order_by(staff_table.c.id)
    ):
        roster.append(RosterEntry(staff_id, role, team, supervisor_id, active, leave))
        people[staff_id] = Person(name, team)

    audit_table = AuditRequest.__table__  # type: ignore[attr-defined]
    earlier = (audit_table.c.month > since) & (audit_table.c.month < month)
    cases = await _case_candidates(
        connection,
        not_before=audits[0].requests_on - timedelta(days=framework.recently_closed_days),
        audited=sa_select(audit_table.c.case_id).where(earlier, audit_table.c.case_id.is_not(None)),
    )
    peer_pairs = await connection.execute(
        sa_select(audit_table.c.auditor_id, audit_table.c.subject_worker_id).where(
            earlier, audit_table.c.kind == AuditKind.PEER
        )
    )
    supervision = [
        a.standard
        for a in audits
        if (s := framework.standard(a.standard)) and s.subject == "supervision"
    ]
    workers_audited: set[int] = set()
    if supervision:
        workers_audited.update(
            await connection.scalars(
                sa_select(audit_table.c.subject_worker_id)
                .where(
                    earlier,
                    audit_table.c.standard.in_(supervision),
                    audit_table.c.kind == AuditKind.SAMPLED,
                    audit_table.c.subject_worker_id.is_not(None),
                )
                .distinct()
            )
        )
    existing_keys: set[str] = set()
    cases_taken: set[int] = set()
    workers_taken: set[int] = set()
    peer_subjects: set[int] = set()
    requested: Counter[tuple[int, int]] = Counter()
    for auditor_id, standard, kind, case_id, subject_id, key, voluntary in await connection.execute(
        sa_select(
            audit_table.c.auditor_id,
            audit_table.c.standard,
            audit_table.c.kind,
            audit_table.c.case_id,
            audit_table.c.subject_worker_id,
            audit_table.c.dispatch_key,
            audit_table.c.voluntary,
        ).where(audit_table.c.month == month)
    ):
        if key:
            existing_keys.add(key)
        if not voluntary:
            requested[(auditor_id, standard)] += 1
        if case_id is not None:
            cases_taken.add(case_id)
        if standard in supervision and kind == AuditKind.SAMPLED and subject_id:
            workers_taken.add(subject_id)
        if kind == AuditKind.PEER and subject_id:
            peer_subjects.add(subject_id)
    inputs = DispatchInputs(
        audits=audits,
        staff=roster,
        cases=cases,
        # Left out of `cases` by the query already.
        cases_audited_recently=(),
        workers_audited_recently=workers_audited,
        recent_peer_pairs=recent_pairs(peer_pairs),
        existing_keys=existing_keys,
        cases_taken_this_month=cases_taken,
        workers_taken_this_month=workers_taken,
        peer_subjects_this_month=peer_subjects,
        requested_this_month=requested,
    )
    return inputs, people


async def _case_candidates(
    connection: AsyncConnection, not_before: date, audited: Select[Any]
) -> CaseColumns:
    """Return the cases a draw may take: open or closed since `not_before`, not `audited`."""
    # The plan applies the same rules (`practice.dispatch`); saying them here too spares
    # reading the years of closed cases a case list holds. In the order of their ids, so a
    # seed draws the same cases on every database. Kept as columns of numbers: an object
    # for each of 100,000 cases would cost more memory than the rest of the dispatch.
    table = CaseRecord.__table__  # type: ignore[attr-defined]
    query = (
        sa_select(
            table.c.id,
            table.c.allocated_worker_id,
            type_coerce(table.c.status == CaseStatus.OPEN, Boolean),
            table.c.closed_on,
        )
        .where(
            (table.c.status == CaseStatus.OPEN) | (table.c.closed_on >= not_before),
            table.c.id.not_in(audited),
        )
        .order_by(table.c.id)
    )
    cases = CaseColumns()
    async for part in (await connection.stream(query)).partitions(READ_SLICE):
        for case_id, worker_id, is_open, closed_on in part:
            cases.append(case_id, worker_id, is_open, closed_on)
    return cases


async def _cases_by_ids(session: AsyncSession, ids: set[int]) -> dict[int, CaseRecord]:
    """Return the cases a plan drew, by id."""
    wanted = sorted(ids)
    found: dict[int, CaseRecord] = {}
    # In slices, to stay well under SQLite's limit on bound parameters.
    for start in range(0, len(wanted), CASE_SLICE):
        rows = await session.exec(
            select(CaseRecord).where(col(CaseRecord.id).in_(wanted[start : start + CASE_SLICE]))
        )
        found.update((c.id, c) for c in rows if c.id is not None)
    return found


def _plan_summary(plan: DispatchPlan) -> dict[str, Any]:
    return {
        "requests": len(plan.requests),
        "by_kind": dict(Counter(r.kind for r in plan.requests)),
        "by_standard": {str(k): v for k, v in Counter(r.standard for r in plan.requests).items()},
        "skipped": dict(Counter(s.reason for s in plan.skipped)),
        "short": sum(s.missing for s in plan.skipped),
    }


async def dispatch_month(
    cycle: Cycle,
    month: str,
    *,
    dry_run: bool = False,
    seed: str | None = None,
    progress: Progress = no_progress,
) -> DispatchReport:
    """Ask everyone for the month's audits (or, in a dry run, say what would be asked)."""
    audit_month = Month.parse(month)
    audits = audits_in_month(cycle.framework, audit_month.year, audit_month.number)
    if not audits:
        raise CycleError(f"no audits are timetabled in {month_label(month)}")

    if dry_run:
        async with cycle.database.session() as session:
            inputs, _ = await _dispatch_inputs(session, cycle.framework, audits)
        seed = seed or f"{month}/dry-run"
        plan = plan_month(cycle.framework, inputs, seed)
        return DispatchReport(month, seed, False, plan, _plan_summary(plan))

    planned: list[DispatchPlan] = []

    async def work(session: AsyncSession, run_seed: str | None) -> dict[str, Any]:
        inputs, people = await _dispatch_inputs(session, cycle.framework, audits)
        plan = plan_month(cycle.framework, inputs, run_seed or "")
        planned.append(plan)
        cases = await _cases_by_ids(session, {r.case_id for r in plan.requests if r.case_id})
        await _create_requests(session, cycle.framework, plan, audits, people, cases, progress)
        return _plan_summary(plan)

    outcome = await run_once(
        cycle.database,
        job="dispatch",
        period=month,
        instance=cycle.instance,
        work=work,
        seed=seed or f"{month}/{secrets.token_hex(6)}",
    )
    log.info("dispatch %s: %s", month, "done" if outcome.ran else "already done")
    return DispatchReport(
        month, outcome.seed or "", outcome.ran, planned[0] if planned else None, outcome.summary
    )


async def _create_requests(
    session: AsyncSession,
    framework: Framework,
    plan: DispatchPlan,
    audits: list[AuditMonth],
    people: dict[int, Person],
    cases: dict[int, CaseRecord],
    progress: Progress = no_progress,
) -> None:
    # A whole workforce at once: the rows are written with bulk INSERTs rather than as ORM
    # objects (whose construction and flush cost about as much again as everything else),
    # each with the defaults its model gives, a batch at a time so that a workforce's rows
    # are never all in memory, and the request cards are built without an AuditRequest
    # object each. The audits are new, so their request cards cannot be in the outbox yet:
    # no checked insert one at a time either.
    due_on = audits[0].due_on
    total = len(plan.requests)
    now = utc_now()
    new_request = _defaults(AuditRequest, now)
    new_message = _defaults(OutboxMessage, now)
    connection = await session.connection()
    table = AuditRequest.__table__  # type: ignore[attr-defined]
    for start in range(0, total, CREATE_BATCH):
        batch: list[dict[str, Any]] = []
        for request in plan.requests[start : start + CREATE_BATCH]:
            case = cases.get(request.case_id) if request.case_id else None
            subject_id = _subject_of(request, case)
            subject = people.get(subject_id) if subject_id else None
            batch.append(
                new_request
                | dict(
                    month=plan.month,
                    standard=request.standard,
                    kind=request.kind,
                    framework_version=framework.version,
                    auditor_id=request.auditor_id,
                    case_id=request.case_id,
                    subject_worker_id=subject_id,
                    status=AuditStatus.REQUESTED,
                    due_on=due_on,
                    dispatch_key=request.key,
                    team=audited_team(case, subject, people.get(request.auditor_id)),
                )
            )
        await connection.execute(sa_insert(table), batch)
        progress("creating audit requests", min(start + CREATE_BATCH, total), total)
    await _record_requested(connection, plan.month, now)
    ids = {
        key: audit_id
        for audit_id, key in await connection.execute(
            sa_select(table.c.id, table.c.dispatch_key).where(table.c.month == plan.month)
        )
    }
    outbox_table = OutboxMessage.__table__  # type: ignore[attr-defined]
    messages: list[dict[str, Any]] = []
    for queued, request in enumerate(plan.requests, 1):
        progress("queuing request cards", queued, total)
        audit_id = ids[request.key]
        # The sender makes the card when it sends it (messages.request_cards.outbox_activity).
        messages.append(
            new_message
            | unrendered_request_card(
                audit_id=audit_id, auditor_id=request.auditor_id, month=plan.month
            )
            | {"status": OutboxStatus.PENDING}
        )
        if len(messages) == CREATE_BATCH or queued == total:
            await connection.execute(sa_insert(outbox_table), messages)
            messages = []


def _subject_of(request: PlannedRequest, case: CaseRecord | None) -> int | None:
    """Return whose work a planned audit looks at: the colleague, or the case's worker."""
    if request.subject_id is None and case is not None:
        return case.allocated_worker_id
    return request.subject_id


async def _record_requested(connection: AsyncConnection, month: str, now: datetime) -> None:
    """Start the status history of the month's dispatched audits that have none yet."""
    audit_table = AuditRequest.__table__  # type: ignore[attr-defined]
    history = AuditStatusChange.__table__  # type: ignore[attr-defined]
    await connection.execute(
        sa_insert(history).from_select(
            ["audit_id", "status", "changed_at", "note"],
            sa_select(
                audit_table.c.id,
                literal(AuditStatus.REQUESTED.value, history.c.status.type),
                literal(now, history.c.changed_at.type),
                literal("dispatch", history.c.note.type),
            ).where(
                audit_table.c.month == month,
                audit_table.c.dispatch_key.is_not(None),
                ~sa_exists().where(history.c.audit_id == audit_table.c.id),
            ),
        )
    )


def _defaults(model: type[SQLModel], now: datetime) -> dict[str, Any]:
    """Return the values a new row of the model gets unless told otherwise."""
    # Columns whose default is NULL (the id among them) are left out, to be NULL all the
    # same: none has a server default, and it spares converting a dozen NULLs a row.
    defaults = {
        name: now
        if info.default_factory is utc_now
        else info.get_default(call_default_factory=True)
        for name, info in model.model_fields.items()
    }
    return {name: value for name, value in defaults.items() if value is not None}


# -- reminders and digests ---------------------------------------------------------------


def _current_audits(framework: Framework, today: date) -> list[AuditMonth]:
    return audits_in_month(framework, today.year, today.month)


async def send_reminders(cycle: Cycle, today: date) -> RunOutcome | None:
    """On a reminder day, remind each auditor with unfinished audits, once."""
    audits = _current_audits(cycle.framework, today)
    if not audits or today not in days_before_due(
        audits[0].due_on, cycle.framework.cycle.reminder_working_days_before_due
    ):
        return None
    month, due_on = audits[0].month, audits[0].due_on

    async def work(session: AsyncSession, _seed: str | None) -> dict[str, Any]:
        unfinished = list(
            await session.exec(
                select(AuditRequest).where(
                    AuditRequest.month == month,
                    AuditRequest.status != AuditStatus.SUBMITTED,
                    col(AuditRequest.voluntary).is_(False),
                )
            )
        )
        by_auditor: dict[int, list[AuditRequest]] = defaultdict(list)
        for audit in unfinished:
            by_auditor[audit.auditor_id].append(audit)
        reminded = 0
        for auditor_id, audits_of in sorted(by_auditor.items()):
            auditor = await session.get(Staff, auditor_id)
            if auditor is None or not auditor.active:
                continue
            entries = []
            for audit in audits_of:
                detail = await audit_store.audit_detail(session=session, audit_id=audit.id or 0)
                standard = cycle.framework.standard(audit.standard)
                if detail is not None and standard is not None:
                    entries.append(list_entry(detail, standard, cycle.framework, cycle.zone))
            await queue_reminder(
                session=session, auditor=auditor, entries=entries, due_on=due_on, today=today
            )
            reminded += 1
        return {"reminded": reminded}

    return await run_once(
        cycle.database,
        job="reminders",
        period=today.isoformat(),
        instance=cycle.instance,
        work=work,
    )


async def team_digest_rows(
    session: AsyncSession, cycle: Cycle, manager: Staff, month: str, today: date
) -> list[DigestRow]:
    """Return each of a manager's team with where their audits for the month stand."""
    team = list(
        await session.exec(
            select(Staff).where(Staff.supervisor_id == manager.id).order_by(col(Staff.name))
        )
    )
    reach = await roster.reach_of(session=session, people=team)
    rows: list[DigestRow] = []
    for person in team:
        audits = list(
            await session.exec(
                select(AuditRequest).where(
                    AuditRequest.auditor_id == person.id,
                    AuditRequest.month == month,
                    col(AuditRequest.voluntary).is_(False),
                )
            )
        )
        done = sum(1 for a in audits if a.status == AuditStatus.SUBMITTED)
        started = sum(1 for a in audits if a.status == AuditStatus.IN_PROGRESS)
        detail = f"{done} of {len(audits)} done" if audits else ""
        if not person.active:
            state, detail = "inactive", "not given audits"
        elif person.on_leave_until is not None and person.on_leave_until >= today:
            state, detail = "on_leave", f"until {person.on_leave_until:%d %B}"
        elif not audits:
            state = "none"
        elif done == len(audits):
            state = "done"
        elif (reached := reach.get(person.id or 0, Reach.REACHABLE)) is not Reach.REACHABLE:
            # Say why the bot cannot reach them, as far as it knows (a key of DIGEST_STATES).
            state = reached.value
        elif started or done:
            state = "in_progress"
        else:
            state = "not_started"
        rows.append(DigestRow(person.name, state, detail))
    return rows


async def send_digests(cycle: Cycle, today: date) -> RunOutcome | None:
    """On a digest day, send each manager a digest of their team's audits, once."""
    audits = _current_audits(cycle.framework, today)
    if not audits or today not in days_before_due(
        audits[0].due_on, cycle.framework.cycle.digest_working_days_before_due
    ):
        return None
    month, due_on = audits[0].month, audits[0].due_on

    async def work(session: AsyncSession, _seed: str | None) -> dict[str, Any]:
        supervisor_ids = set(
            await session.exec(
                select(Staff.supervisor_id).where(
                    col(Staff.supervisor_id).is_not(None), col(Staff.active).is_(True)
                )
            )
        )
        sent = 0
        for manager_id in sorted(i for i in supervisor_ids if i is not None):
            manager = await session.get(Staff, manager_id)
            if manager is None or not manager.active:
                continue
            rows = await team_digest_rows(session, cycle, manager, month, today)
            await queue_digest(
                session=session,
                manager=manager,
                month=month,
                month_label=month_label(month),
                rows=rows,
                due_on=due_on,
                today=today,
            )
            sent += 1
        return {"digests": sent}

    return await run_once(
        cycle.database, job="digests", period=today.isoformat(), instance=cycle.instance, work=work
    )


# -- month end and moderation --------------------------------------------------------------


def _finished_months(framework: Framework, today: date, condition: str) -> list[AuditMonth]:
    """Return recent audited months past their due date (or past moderation, for closing)."""
    months: list[AuditMonth] = []
    year, number = today.year, today.month
    for _ in range(3):
        for audit in audits_in_month(framework, year, number):
            passed = audit.due_on if condition == "due" else audit.moderation_until
            if today > passed and not audit.additional:
                months.append(audit)
        year, number = previous_month(year, number)
    return months


async def close_months(cycle: Cycle, today: date) -> dict[str, RunOutcome]:
    """After a month's due date, mark its unfinished audits overdue (they can still be done)."""
    outcomes: dict[str, RunOutcome] = {}
    for audit_month in _finished_months(cycle.framework, today, "due"):
        month = audit_month.month

        async def work(
            session: AsyncSession, _seed: str | None, month: str = month
        ) -> dict[str, Any]:
            late = list(
                await session.exec(
                    select(AuditRequest).where(
                        AuditRequest.month == month,
                        AuditRequest.status != AuditStatus.SUBMITTED,
                        col(AuditRequest.overdue_at).is_(None),
                        col(AuditRequest.voluntary).is_(False),
                    )
                )
            )
            now = utc_now()
            for audit in late:
                assert audit.id is not None
                session.add(
                    AuditStatusChange(
                        audit_id=audit.id, status=AuditStatus.OVERDUE, note="month end"
                    )
                )
            if late:
                await session.exec(
                    update(AuditRequest)
                    .where(col(AuditRequest.id).in_([a.id for a in late]))
                    .values(overdue_at=now)
                )
            return {"overdue": len(late)}

        outcomes[month] = await run_once(
            cycle.database, job="close", period=month, instance=cycle.instance, work=work
        )
    return outcomes


async def sample_entries(
    session: AsyncSession, cycle: Cycle, month: str, moderator: Staff, *, only_open: bool = False
) -> list[SampleEntry]:
    """Return the month's moderation sample as a moderator sees it."""
    sampled = list(
        await session.exec(select(ModerationSample).where(ModerationSample.month == month))
    )
    entries = []
    for sample in sampled:
        detail = await audit_store.audit_detail(session=session, audit_id=sample.audit_id)
        standard = cycle.framework.standard(detail.audit.standard) if detail else None
        if detail is None or standard is None:
            continue
        claim = await session.get(Moderation, sample.audit_id)
        if only_open and claim is not None and claim.submitted_at is not None:
            continue
        claimer = await session.get(Staff, claim.moderator_id) if claim else None
        team = _team_of(detail)
        entry = list_entry(detail, standard, cycle.framework, cycle.zone)
        entries.append(
            SampleEntry(
                audit_id=sample.audit_id,
                title=entry.title,
                about=entry.about,
                team=team,
                kind=entry.kind,
                claimed_by=claimer.name if claimer else None,
                mine=claimer is not None and claimer.id == moderator.id,
                moderated=claim is not None and claim.submitted_at is not None,
            )
        )
    return entries


def _team_of(detail: audit_store.AuditDetail) -> str:
    if detail.case is not None:
        return detail.case.team
    if detail.subject is not None:
        return detail.subject.team
    return detail.auditor.team


async def open_sample_months(session: AsyncSession, today: date) -> list[str]:
    """Return the months whose moderation samples are still open for claims, oldest first."""
    months = sorted(set(await session.exec(select(ModerationSample.month))))
    open_months = []
    for month in months:
        if today <= moderation_until_of(month):
            open_months.append(month)
    return open_months


def moderation_until_of(month: str) -> date:
    """Return the end of the moderation window for a month's audits ('YYYY-MM')."""
    audit_month = Month.parse(month)
    return moderation_until(audit_month.year, audit_month.number)


async def _moderators(session: AsyncSession, framework: Framework) -> list[Staff]:
    codes = [r.code for r in framework.roles if r.audit_kind == "moderation"]
    return list(
        await session.exec(
            select(Staff)
            .where(col(Staff.role_code).in_(codes), col(Staff.active).is_(True))
            .order_by(col(Staff.id))
        )
    )


async def sample_for_moderation(cycle: Cycle, today: date) -> dict[str, RunOutcome]:
    """After a month's due date, draw its moderation sample and send it to the moderators."""
    outcomes: dict[str, RunOutcome] = {}
    for audit_month in _finished_months(cycle.framework, today, "due"):
        month = audit_month.month
        if today > audit_month.moderation_until:
            continue

        async def work(
            session: AsyncSession, seed: str | None, audit_month: AuditMonth = audit_month
        ) -> dict[str, Any]:
            month = audit_month.month
            completed = []
            for audit in await session.exec(
                select(AuditRequest).where(
                    AuditRequest.month == month,
                    AuditRequest.status == AuditStatus.SUBMITTED,
                    col(AuditRequest.voluntary).is_(False),
                )
            ):
                detail = await audit_store.audit_detail(session=session, audit_id=audit.id or 0)
                if detail is not None and audit.id is not None:
                    completed.append(CompletedAudit(audit.id, _team_of(detail)))
            moderators = await _moderators(session, cycle.framework)
            quota = {r.code: r.monthly_audits for r in cycle.framework.roles}
            minimum = sum(quota.get(m.role_code, 0) for m in moderators)
            chosen = draw_sample(
                completed,
                percent=cycle.framework.cycle.moderation_sample_percent,
                minimum=minimum,
                seed=seed or month,
            )
            for audit_id in chosen:
                session.add(ModerationSample(audit_id=audit_id, month=month))
            await session.flush()
            for moderator in moderators if chosen else []:
                entries = await sample_entries(session, cycle, month, moderator)
                await queue_moderation_sample(
                    session=session,
                    moderator=moderator,
                    month=month,
                    month_label=month_label(month),
                    entries=entries,
                    until=audit_month.moderation_until,
                )
            return {
                "completed": len(completed),
                "sampled": len(chosen),
                "moderators": len(moderators),
            }

        outcomes[month] = await run_once(
            cycle.database,
            job="moderation-sample",
            period=month,
            instance=cycle.instance,
            work=work,
            seed=f"{month}/{secrets.token_hex(6)}",
        )
    return outcomes


async def close_moderation(cycle: Cycle, today: date) -> dict[str, RunOutcome]:
    """After the moderation window, tell the moderators which sampled audits were left."""
    outcomes: dict[str, RunOutcome] = {}
    for audit_month in _finished_months(cycle.framework, today, "moderation"):
        month = audit_month.month

        async def work(
            session: AsyncSession, _seed: str | None, audit_month: AuditMonth = audit_month
        ) -> dict[str, Any]:
            month = audit_month.month
            moderators = await _moderators(session, cycle.framework)
            left = 0
            for moderator in moderators:
                entries = await sample_entries(session, cycle, month, moderator, only_open=True)
                left = len(entries)
                if entries:
                    await queue_moderation_sample(
                        session=session,
                        moderator=moderator,
                        month=month,
                        month_label=month_label(month),
                        entries=entries,
                        until=audit_month.moderation_until,
                        purpose="moderation_closed",
                    )
            return {"not_moderated": left}

        outcomes[month] = await run_once(
            cycle.database,
            job="moderation-close",
            period=month,
            instance=cycle.instance,
            work=work,
        )
    return outcomes


async def run_day(cycle: Cycle, today: date) -> dict[str, Any]:
    """Run every job for a day (what the scheduler does each working morning)."""
    done: dict[str, Any] = {}
    for audit in _current_audits(cycle.framework, today):
        if audit.requests_on <= today <= audit.due_on and not audit.additional:
            report = await dispatch_month(cycle, audit.month)
            done["dispatch"] = {"month": audit.month, "ran": report.ran, **report.summary}
    reminders = await send_reminders(cycle, today)
    if reminders is not None:
        done["reminders"] = {"ran": reminders.ran, **reminders.summary}
    digests = await send_digests(cycle, today)
    if digests is not None:
        done["digests"] = {"ran": digests.ran, **digests.summary}
    for name, job in (
        ("close", close_months),
        ("moderation_sample", sample_for_moderation),
        ("moderation_close", close_moderation),
    ):
        ran = {month: o.summary for month, o in (await job(cycle, today)).items() if o.ran}
        if ran:
            done[name] = ran
    retention = await purge_old_words(cycle, today)
    if retention is not None and retention.ran:
        done["retention"] = retention.summary
    return done


async def purge_old_words(cycle: Cycle, today: date) -> RunOutcome | None:
    """Once a day, erase the words of audits older than the retention period."""
    if cycle.retention_months is None:
        return None
    months = cycle.retention_months

    async def work(session: AsyncSession, seed: str | None) -> dict[str, Any]:
        report = await purge(session=session, now=utc_now(), retention_months=months,
                             dry_run=False)  # fmt: skip
        return {
            "audits": report.audits,
            "evidence": report.evidence,
            "feedback": report.feedback,
            "moderations": report.moderations,
            "messages": report.messages,
        }

    outcome = await run_once(
        cycle.database, job="retention", period=today.isoformat(), instance=cycle.instance,
        work=work,
    )  # fmt: skip
    if outcome.ran:
        log.info("retention %s: %s", today, outcome.summary)
        await cycle.database.forget_erased()
    return outcome
