"""Run each scheduled job once per period, however many bot instances try at the same time.

A run holds a lock for its (job, period) for the length of its transaction — a PostgreSQL
transaction-level advisory lock; on SQLite the database's single writer — checks the
`job_run` table, does its work and records itself as done in the same transaction. So the
work and the record of it commit together or not at all, a second instance waits and then
finds the run done, and a run that failed leaves nothing behind and is tried again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.database import Database
from storage.models import JobRun, utc_now


@dataclass(frozen=True)
class RunOutcome:
    """Whether this call did the work, and what the work reported."""

    ran: bool
    summary: dict[str, Any]
    seed: str | None = None


def _lock_key(job: str, period: str) -> int:
    digest = hashlib.blake2b(f"{job}/{period}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def _hold_lock(session: AsyncSession, job: str, period: str) -> None:
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        await connection.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(job, period)}
        )
    else:
        # Take SQLite's write lock now, so a second run waits here rather than failing later.
        await connection.execute(
            text("UPDATE job_run SET status = status WHERE job = :job AND period = :period"),
            {"job": job, "period": period},
        )


async def run_once(
    database: Database,
    *,
    job: str,
    period: str,
    instance: str,
    work: Callable[[AsyncSession, str | None], Awaitable[dict[str, Any]]],
    seed: str | None = None,
) -> RunOutcome:
    """Do `work` for (job, period) unless it was done; the work gets the session and seed."""
    async with database.session() as session:
        await _hold_lock(session, job, period)
        existing = (
            await session.exec(select(JobRun).where(JobRun.job == job, JobRun.period == period))
        ).first()
        if existing is not None and existing.status == "done":
            return RunOutcome(False, json.loads(existing.summary or "{}"), existing.seed)
        run = existing or JobRun(job=job, period=period, status="running", seed=seed)
        run.seed = run.seed or seed
        run.instance = instance
        run.started_at = utc_now()
        summary = await work(session, run.seed)
        run.status = "done"
        run.summary = json.dumps(summary, sort_keys=True)
        run.finished_at = utc_now()
        session.add(run)
        return RunOutcome(True, summary, run.seed)


async def last_run(database: Database, *, job: str, period: str) -> JobRun | None:
    """Return the record of a job's run for a period, if there was one."""
    async with database.session() as session:
        return (
            await session.exec(select(JobRun).where(JobRun.job == job, JobRun.period == period))
        ).first()
