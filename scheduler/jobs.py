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
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from cards.cycle_cards import DigestRow, SampleEntry
from cards.views import list_entry
from messages.notices import queue_digest, queue_moderation_sample, queue_reminder
from messages.request_cards import unrendered_request_card
from practice.calendar import (
    AuditMonth,
    audits_in_month,
    days_before_due,
    is_additional,
    moderation_until,
)
from practice.dispatch import DispatchPlan, PlannedRequest, plan_month
from practice.framework import Framework
from practice.moderation import CompletedAudit, draw_sample
from practice.month import Month, month_label
from storage import audits as audit_store
from storage import cycle as cycle_store
from storage import moderation as moderation_store
from storage import roster
from storage.audits import audited_team
from storage.database import Database
from storage.directory_sync import HeldRetention
from storage.dispatch import (
    Person,
    cases_by_ids,
    dispatch_inputs,
    dispatched_ids,
    new_audit_requests,
    new_outbox_messages,
    record_requested,
)
from storage.jobs import RunOutcome, run_once
from storage.models import (
    AuditRequest,
    AuditStatus,
    CaseRecord,
    OutboxStatus,
    Staff,
    utc_now,
)
from storage.progress import Progress, no_progress
from storage.retention import purge
from storage.roster import Reach

log = logging.getLogger(__name__)

CREATE_BATCH = 500


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
    # How long the roster sync's held records stay (PQF_GRAPH_HELD_DAYS, and whether Graph
    # sync is configured); None: the purge leaves them alone.
    held: HeldRetention | None = None


@dataclass
class DispatchReport:
    """What a dispatch asked for, or (in a dry run) would ask for."""

    month: str
    seed: str
    ran: bool
    plan: DispatchPlan | None = None
    summary: dict[str, Any] = field(default_factory=dict)


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
            inputs, _ = await dispatch_inputs(
                session=session, framework=cycle.framework, audits=audits
            )
        seed = seed or f"{month}/dry-run"
        plan = plan_month(cycle.framework, inputs, seed)
        return DispatchReport(month, seed, False, plan, _plan_summary(plan))

    planned: list[DispatchPlan] = []

    async def work(session: AsyncSession, run_seed: str | None) -> dict[str, Any]:
        inputs, people = await dispatch_inputs(
            session=session, framework=cycle.framework, audits=audits
        )
        plan = plan_month(cycle.framework, inputs, run_seed or "")
        planned.append(plan)
        drawn = {r.case_id for r in plan.requests if r.case_id}
        cases = await cases_by_ids(session=session, ids=drawn)
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
    # A whole workforce at once: the rows are written in bulk (`storage.dispatch`) rather
    # than as ORM objects (whose construction and flush cost about as much again as
    # everything else), a batch at a time so that a workforce's rows are never all in
    # memory, and the request cards are built without an AuditRequest object each. The
    # audits are new, so their request cards cannot be in the outbox yet: no checked
    # insert one at a time either.
    due_on = audits[0].due_on
    total = len(plan.requests)
    now = utc_now()
    requests = new_audit_requests(now)
    month = Month.parse(plan.month)
    for start in range(0, total, CREATE_BATCH):
        batch: list[dict[str, Any]] = []
        for request in plan.requests[start : start + CREATE_BATCH]:
            case = cases.get(request.case_id) if request.case_id else None
            subject_id = _subject_of(request, case)
            subject = people.get(subject_id) if subject_id else None
            batch.append(
                dict(
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
                    additional=is_additional(framework, month, request.standard),
                    team=audited_team(case, subject, people.get(request.auditor_id)),
                )
            )
        await requests.insert(session=session, rows=batch)
        progress("creating audit requests", min(start + CREATE_BATCH, total), total)
    await record_requested(session=session, month=plan.month, now=now)
    ids = await dispatched_ids(session=session, month=plan.month)
    outbox = new_outbox_messages(now)
    messages: list[dict[str, Any]] = []
    for queued, request in enumerate(plan.requests, 1):
        progress("queuing request cards", queued, total)
        audit_id = ids[request.key]
        # The sender makes the card when it sends it (messages.request_cards.outbox_activity).
        messages.append(
            unrendered_request_card(
                audit_id=audit_id, auditor_id=request.auditor_id, month=plan.month
            )
            | {"status": OutboxStatus.PENDING}
        )
        if len(messages) == CREATE_BATCH or queued == total:
            await outbox.insert(session=session, rows=messages)
            messages = []


def _subject_of(request: PlannedRequest, case: CaseRecord | None) -> int | None:
    """Return whose work a planned audit looks at: the colleague, or the case's worker."""
    if request.subject_id is None and case is not None:
        return case.allocated_worker_id
    return request.subject_id


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
        unfinished = await cycle_store.unfinished_requests(session=session, month=month)
        by_auditor: dict[int, list[AuditRequest]] = defaultdict(list)
        for audit in unfinished:
            by_auditor[audit.auditor_id].append(audit)
        reminded = 0
        for auditor_id, audits_of in sorted(by_auditor.items()):
            auditor = await roster.staff_by_id(session=session, staff_id=auditor_id)
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
    team = await cycle_store.team_of(session=session, manager_id=manager.id)
    reach = await roster.reach_of(session=session, people=team)
    refusals = await roster.install_refusals(session=session, people=team)
    rows: list[DigestRow] = []
    for person in team:
        assert person.id is not None
        audits = await cycle_store.requests_of(session=session, auditor_id=person.id, month=month)
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
            if reached is Reach.INSTALL_REFUSED:
                detail = refusals.get(person.id, "") or detail
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
        sent = 0
        for manager_id in await cycle_store.supervisor_ids(session=session):
            manager = await roster.staff_by_id(session=session, staff_id=manager_id)
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
    month = Month.of(today)
    for _ in range(3):
        for audit in audits_in_month(framework, month.year, month.number):
            passed = audit.due_on if condition == "due" else audit.moderation_until
            if today > passed and not audit.additional:
                months.append(audit)
        month = month.plus(-1)
    return months


async def close_months(cycle: Cycle, today: date) -> dict[str, RunOutcome]:
    """After a month's due date, mark its unfinished audits overdue (they can still be done)."""
    outcomes: dict[str, RunOutcome] = {}
    for audit_month in _finished_months(cycle.framework, today, "due"):
        month = audit_month.month

        async def work(
            session: AsyncSession, _seed: str | None, month: str = month
        ) -> dict[str, Any]:
            late = await cycle_store.mark_overdue(session=session, month=month, now=utc_now())
            return {"overdue": late}

        outcomes[month] = await run_once(
            cycle.database, job="close", period=month, instance=cycle.instance, work=work
        )
    return outcomes


async def sample_entries(
    session: AsyncSession, cycle: Cycle, month: str, moderator: Staff, *, only_open: bool = False
) -> list[SampleEntry]:
    """Return the month's moderation sample as a moderator sees it."""
    sampled = await cycle_store.sample_of_month(session=session, month=month)
    entries = []
    for sample in sampled:
        detail = await audit_store.audit_detail(session=session, audit_id=sample.audit_id)
        standard = cycle.framework.standard(detail.audit.standard) if detail else None
        if detail is None or standard is None:
            continue
        claim = await moderation_store.moderation_of(session=session, audit_id=sample.audit_id)
        if only_open and claim is not None and claim.submitted_at is not None:
            continue
        claimer = (
            await roster.staff_by_id(session=session, staff_id=claim.moderator_id)
            if claim
            else None
        )
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
    months = await cycle_store.sampled_months(session=session)
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
    return await cycle_store.active_staff_in_roles(session=session, role_codes=codes)


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
            for audit in await cycle_store.submitted_requests(session=session, month=month):
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
            await cycle_store.add_to_sample(session=session, month=month, audit_ids=chosen)
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
                             dry_run=False, held=cycle.held)  # fmt: skip
        # Counts only: the log line below names no one.
        return {
            "audits": report.audits,
            "evidence": report.evidence,
            "feedback": report.feedback,
            "moderations": report.moderations,
            "messages": report.messages,
            "held_records": report.held,
        }

    outcome = await run_once(
        cycle.database, job="retention", period=today.isoformat(), instance=cycle.instance,
        work=work,
    )  # fmt: skip
    if outcome.ran:
        log.info("retention %s: %s", today, outcome.summary)
        await cycle.database.forget_erased()
    return outcome
