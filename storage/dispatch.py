"""A month's dispatch in bulk: what the plan reads of a whole workforce, and the rows it writes.

A whole workforce at once: the roster, the case list and a year of audits are read as plain
rows of the columns the plan needs (an ORM object each would cost more than all the rest),
and the month's audit requests, their status history and their request cards are written
with bulk INSERTs, each row with the defaults its model gives.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Boolean, Select, insert, literal, text, type_coerce
from sqlalchemy import exists as sa_exists
from sqlalchemy import select as sa_select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from practice.audit_steps import AuditKind
from practice.calendar import AuditMonth
from practice.dispatch import DispatchInputs, RosterEntry, recent_pairs
from practice.framework import Framework
from practice.month import Month
from practice.sampling import CaseColumns
from storage.models import (
    AuditRequest,
    AuditStatus,
    AuditStatusChange,
    CaseRecord,
    CaseStatus,
    OutboxMessage,
    Staff,
    utc_now,
)

CASE_SLICE = 5_000
READ_SLICE = 5_000


class Person(NamedTuple):
    """What a request card and an audit's team need of a member of staff."""

    name: str
    team: str


async def dispatch_inputs(
    *, session: AsyncSession, framework: Framework, audits: list[AuditMonth]
) -> tuple[DispatchInputs, dict[int, Person]]:
    """Return what the month's plan needs from the database, and each member of staff."""
    # What can be left out in SQL is: cases the draw may not take, and earlier months'
    # audits beyond the ids and pairs the draw must avoid.
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


async def cases_by_ids(*, session: AsyncSession, ids: set[int]) -> dict[int, CaseRecord]:
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


# Bulk inserts of at least this many rows have PostgreSQL count the table afresh.
ANALYZE_AFTER = 1000


class NewRows:
    """Writes new rows of one table in bulk, each with the defaults its model gives."""

    def __init__(self, model: type[SQLModel], now: datetime) -> None:
        self._table = model.__table__  # type: ignore[attr-defined]
        self._defaults = _defaults(model, now)

    async def insert(self, *, session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
        """Insert the rows, each over the model's defaults, in one statement."""
        defaults = self._defaults
        connection = await session.connection()
        await connection.execute(insert(self._table), [defaults | row for row in rows])
        if len(rows) >= ANALYZE_AFTER and connection.dialect.name == "postgresql":
            # Plans made with the statistics from before would not know the rows are there
            # (`storage.outbox.refresh_statistics`).
            await connection.execute(text(f"ANALYZE {self._table.name}"))


def new_audit_requests(now: datetime) -> NewRows:
    """Return a bulk writer of audit requests created at `now`."""
    return NewRows(AuditRequest, now)


def new_outbox_messages(now: datetime) -> NewRows:
    """Return a bulk writer of outbox messages queued at `now`."""
    return NewRows(OutboxMessage, now)


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


async def record_requested(*, session: AsyncSession, month: str, now: datetime) -> None:
    """Start the status history of the month's dispatched audits that have none yet."""
    audit_table = AuditRequest.__table__  # type: ignore[attr-defined]
    history = AuditStatusChange.__table__  # type: ignore[attr-defined]
    connection = await session.connection()
    await connection.execute(
        insert(history).from_select(
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


async def dispatched_ids(*, session: AsyncSession, month: str) -> dict[str, int]:
    """Return the month's dispatched audits' ids by their dispatch keys."""
    table = AuditRequest.__table__  # type: ignore[attr-defined]
    connection = await session.connection()
    return {
        key: audit_id
        for audit_id, key in await connection.execute(
            sa_select(table.c.id, table.c.dispatch_key).where(table.c.month == month)
        )
    }
