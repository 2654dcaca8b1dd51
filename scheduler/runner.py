"""Run the monthly cycle's jobs every working morning with APScheduler.

The jobs are defined here in code with cron triggers in the council's time zone, in an
in-memory job store: nothing is pickled, and every instance of the bot defines the same
jobs. What makes each run happen once is the database (`storage.jobs.run_once` and the
outbox keys), not the scheduler, so several instances may run it side by side.

A bot that was down at the job time catches up when it starts: each job also runs once at
start-up if that is after the day's job time (misfires within the day are run too, with
coalescing, rather than APScheduler's default of dropping them after one second).

With the roster synced from Microsoft Graph (`roster_sync`), that runs every night at
`ROSTER_SYNC_TIME`, and likewise once a day however many instances try
(`directory.sync.nightly_roster_sync`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import date, datetime, time, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from practice.calendar import audits_in_month
from practice.working_days import is_working_day
from scheduler.jobs import (
    Cycle,
    close_moderation,
    close_months,
    dispatch_month,
    purge_old_words,
    sample_for_moderation,
    send_digests,
    send_reminders,
)

log = logging.getLogger(__name__)

# Late enough in the day that a bot restarted in the afternoon still sends the day's work.
MISFIRE_GRACE = timedelta(hours=10)
# Before anyone's working day, so that the morning's jobs see last night's roster.
ROSTER_SYNC_TIME = time(2, 0)
ROSTER_SYNC = "roster-sync"


async def _dispatch(cycle: Cycle, today: date) -> Any:
    for audit in audits_in_month(cycle.framework, today.year, today.month):
        if audit.requests_on <= today <= audit.due_on and not audit.additional:
            return await dispatch_month(cycle, audit.month)
    return None


JOBS: dict[str, Callable[[Cycle, date], Awaitable[Any]]] = {
    "dispatch": _dispatch,
    "reminders": send_reminders,
    "digests": send_digests,
    "month-end": close_months,
    "moderation-sample": sample_for_moderation,
    "moderation-close": close_moderation,
    "retention": purge_old_words,
}


class CycleScheduler:
    """APScheduler running each job on weekdays at the job time (London time by default)."""

    def __init__(
        self,
        cycle: Cycle,
        *,
        job_time: time,
        clock: Callable[[], datetime],
        on_run: Callable[[str, str], None] | None = None,
        roster_sync: Callable[[date], Awaitable[Any]] | None = None,
    ) -> None:
        self._on_run = on_run or (lambda job, outcome: None)
        self._roster_sync = roster_sync
        self._cycle = cycle
        self._job_time = job_time
        self._clock = clock
        self._scheduler = AsyncIOScheduler(timezone=cycle.zone)

    def triggers(self) -> dict[str, CronTrigger]:
        """Return each job's trigger (a minute apart, in the order the cycle needs)."""
        start = datetime.combine(date(2000, 1, 1), self._job_time)
        triggers = {
            name: CronTrigger(
                day_of_week="mon-fri",
                hour=(start + timedelta(minutes=offset)).hour,
                minute=(start + timedelta(minutes=offset)).minute,
                timezone=self._cycle.zone,
            )
            for offset, name in enumerate(JOBS)
        }
        if self._roster_sync is not None:
            triggers[ROSTER_SYNC] = CronTrigger(
                hour=ROSTER_SYNC_TIME.hour,
                minute=ROSTER_SYNC_TIME.minute,
                timezone=self._cycle.zone,
            )
        return triggers

    def start(self) -> None:
        """Add the jobs and start; jobs whose time today has passed run now, to catch up."""
        now = self._clock().astimezone(self._cycle.zone)
        catch_up = now.time() >= self._job_time and is_working_day(now.date())
        for name, trigger in self.triggers().items():
            late = now.time() >= ROSTER_SYNC_TIME if name == ROSTER_SYNC else catch_up
            # APScheduler reads next_run_time=None as "paused": only pass it to run now.
            extra: dict[str, Any] = {"next_run_time": now} if late else {}
            self._scheduler.add_job(
                self._sync_roster if name == ROSTER_SYNC else self._run,
                trigger,
                args=[] if name == ROSTER_SYNC else [name],
                id=name,
                name=name,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=int(MISFIRE_GRACE.total_seconds()),
                **extra,
            )
        self._scheduler.start()
        log.info("scheduler started: jobs at %s on working days", self._job_time.strftime("%H:%M"))

    def shutdown(self) -> None:
        """Stop without waiting for running jobs (their transactions roll back)."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    async def _run(self, name: str) -> None:
        today = self._clock().astimezone(self._cycle.zone).date()
        if not is_working_day(today):
            return
        try:
            result = await JOBS[name](self._cycle, today)
        except Exception:
            log.exception("job %s failed for %s; it will be tried again", name, today)
            self._on_run(name, "failed")
            return
        self._on_run(name, "done" if result else "nothing_due")
        log.info("job %s for %s: %s", name, today, "done" if result else "nothing due")

    async def _sync_roster(self) -> None:
        assert self._roster_sync is not None
        today = self._clock().astimezone(self._cycle.zone).date()
        try:
            result = await self._roster_sync(today)
        except Exception:
            log.exception("job %s failed for %s; it will be tried again", ROSTER_SYNC, today)
            self._on_run(ROSTER_SYNC, "failed")
            return
        self._on_run(ROSTER_SYNC, "done" if result else "nothing_due")
        log.info("job %s for %s: %s", ROSTER_SYNC, today, "done" if result else "nothing due")
