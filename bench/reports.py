"""Benchmark 3: the Board's reports over ten years of history, on SQLite and PostgreSQL.

The history is made up, deterministically (a seeded draw per month), in the shape the bot
makes it: 2,000 staff in 60 teams with the framework's role mix; each audit month of the
timetable every auditor completes their quota (practitioners 1, managers 2, Practice
Development Advanced Practitioners 6), a few late or not done; ratings for every criterion
of the month's standard; feedback calls; the worker's involvement in case audits; a 10%
moderation sample, moderated; and the Board's learning actions. It is written straight into
a migrated database in bulk (COPY on PostgreSQL, one executemany transaction on SQLite),
then each report is made end to end in-process, as `pqf-bot report` and the Teams `report`
command make it: queries, figures, then JSON, HTML or the summary card.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import io
import json
import logging
import multiprocessing
import os
import random
import shutil
import sqlite3
import statistics
import time as clock
import zipfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

import psycopg
from sqlalchemy.engine import make_url

from bench.common import Result, Stopwatch, arguments, database, peak_rss_mb, scratch
from cards.report_cards import report_summary_card
from practice.calendar import AuditMonth, audit_year
from practice.framework import Framework, Standard, load_framework
from practice.report import Report, ReportScope
from reports.html import render_report_html
from reports.service import (
    completion_text,
    latest_reported_month,
    most_often_below,
    scoped_report,
)
from reports.tabular import render_report_csv, render_report_xlsx, report_to_json
from storage import report_tally
from storage.database import Database
from storage.migrate import upgrade

log = logging.getLogger("bench.reports")

SEED = "pqf-bench-reports-1"
ZONE = ZoneInfo("Europe/London")
STAFF = 2000
LAST_AUDIT_YEAR = 2025  # the audit year September 2025 to July 2026
FULL_YEARS = 10  # audit years 2016-17 to 2025-26: months 2016-09 to 2026-07
QUICK_YEARS = 1
# The day the reports are made: after July 2026's moderation, so every audit is past due.
AS_OF = date(2026, 8, 20)
RETENTION_MONTHS = 24  # PQF_RETENTION_MONTHS' default: older audits have their words erased
PURGED_AT = datetime(AS_OF.year, AS_OF.month, 1, 2, tzinfo=UTC)  # the last monthly purge
BOARD_MONTH = "2026-06"  # the Board's monthly report: standard 9, self-audits
TREND = ("2025-09", "2026-07")  # the whole audit year
REPEATS = 3  # warm runs timed after the first
TITLE = "Practice quality audits: report to the Practice Quality Board"
GOAL_SECONDS = {"json": 1.0, "html": 2.0}
# The whole history, in every format: under 2 s, and under 250 MB at the process's peak.
WHOLE_FORMS = ("json", "html", "csv", "xlsx")
WHOLE_REPEATS = 2
WHOLE_SECONDS = 2.0
WHOLE_PEAK_MB = 250
# The year trend's median before reports were counted by the database (docs/PERFORMANCE.md
# at commit 836aaae), which it must not exceed; NOISE allows for this shared machine.
YEAR_BEFORE = {("sqlite", "json"): 0.617, ("sqlite", "html"): 0.657,
               ("postgresql", "json"): 0.642, ("postgresql", "html"): 0.674}  # fmt: skip
NOISE = 1.1

AREAS = (
    "Mendip", "Sedgemoor", "Taunton", "South Somerset", "West Somerset", "Frome", "Yeovil",
    "Bridgwater", "Glastonbury", "Minehead", "Chard", "Wellington",
)  # fmt: skip
SERVICES = (
    "Adult Social Care Team", "Occupational Therapy Team", "Hospital Discharge Team",
    "Learning Disabilities Team", "Mental Health Team",
)  # fmt: skip
# Managers and specialists by role; the rest of the 2,000 are practitioners.
ROLE_COUNTS = (("DIR", 3), ("SM", 20), ("SVM", 60), ("AP", 90), ("PDAP", 20), ("MOD", 10))
PRACTITIONER_SHARES = (("SW", 0.42), ("OT", 0.20), ("ASCP", 0.18), ("OTA", 0.20))
CASES_PER_WORKER = 15
VOLUNTARY_PER_MONTH = 20
ON_TIME, LATE = 0.90, 0.07  # the rest are not done
RATING_CODES = ("below", "meets", "exceeds", "not_applicable")
BLANK_CRITERION = 0.002  # earlier forms let a criterion be left blank
MODERATION_SHARE = 0.10
MODERATOR_AGREES = 0.85
ACTIONS_PER_MONTH = 2

EVIDENCE = (
    "Case notes show the worker explained the options clearly and recorded the person's "
    "wishes in their own words.",
    "The assessment records the person's strengths and their network of support, with the "
    "outcomes they want.",
    "Records are up to date; two visits were written up more than 48 hours after contact.",
    "The plan was shared with the person and their daughter, with consent recorded.",
    "Risk was discussed with the person and recorded with the reasons for the decision.",
)
QUOTES = (
    "She always explained what she was doing, was always on time, and put mum at ease.",
    "Everything was put in place in a timely way to support me.",
    "I felt listened to for the first time in a long while.",
    "They rang back when they said they would, which made a real difference.",
)
NO_CONTACT = "The person did not wish to be contacted."

STAFF_COLUMNS = (
    "id", "email", "aad_object_id", "name", "role_code", "team", "supervisor_id", "active",
    "on_leave_until", "created_at", "updated_at",
)  # fmt: skip
CASE_COLUMNS = (
    "id", "reference", "team", "allocated_worker_id", "status", "closed_on",
    "added_by_auditor", "updated_at",
)  # fmt: skip
AUDIT_COLUMNS = (
    "id", "month", "standard", "kind", "framework_version", "auditor_id", "case_id",
    "subject_worker_id", "status", "due_on", "dispatch_key", "voluntary", "team", "source",
    "requested_at", "started_at", "submitted_at", "overdue_at", "purged_at",
    "case_confirmed_at", "current_step", "card_seq", "live_card_activity_id", "updated_at",
    "additional",
)  # fmt: skip
RATING_COLUMNS = ("id", "audit_id", "criterion_id", "rating", "evidence", "updated_at")
FEEDBACK_COLUMNS = (
    "audit_id", "contacted", "what_they_said", "no_contact_reason", "suitable_for_report",
    "complete", "updated_at",
)  # fmt: skip
INVOLVEMENT_COLUMNS = ("audit_id", "how", "feedback_on", "reason", "complete", "updated_at")
SAMPLE_COLUMNS = ("audit_id", "month", "sampled_at")
MODERATION_COLUMNS = (
    "audit_id", "moderator_id", "claimed_at", "overall_comment", "submitted_at", "card_seq",
)  # fmt: skip
MODERATION_RATING_COLUMNS = ("id", "audit_id", "criterion_id", "agrees", "rating", "reason")
ACTION_COLUMNS = (
    "id", "theme", "action", "owner", "due_on", "status", "logged_on", "closed_on", "updated_at",
)  # fmt: skip
# Tables whose id the loader sets, so PostgreSQL's sequences must be moved past them.
SERIAL_TABLES = (
    "staff", "case_record", "audit_request", "criterion_rating", "moderation_rating",
    "learning_action",
)  # fmt: skip

Row = tuple[object, ...]


@dataclass(frozen=True)
class Person:
    """One member of staff on the made-up roster."""

    id: int
    role: str
    team: str
    supervisor_id: int | None


@dataclass
class Batch:
    """The rows of one audit month, table by table, in the order they can be loaded."""

    tables: dict[str, tuple[tuple[str, ...], list[Row]]] = field(default_factory=dict)

    def add(self, table: str, columns: tuple[str, ...], row: Row) -> None:
        """Append a row to a table of the batch."""
        self.tables.setdefault(table, (columns, []))[1].append(row)


class Sink(Protocol):
    """Where generated rows go: a database, in bulk."""

    def write(self, table: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
        """Write rows to a table."""

    def finish(self) -> None:
        """Make the rows durable and ready to be read."""

    def close(self) -> None:
        """Let go of the database."""


@dataclass(frozen=True)
class Encoding:
    """How a database takes datetimes, dates and booleans in bulk."""

    moment: Callable[[datetime], object]
    day: Callable[[date], object]
    flag: Callable[[bool], object]


def _sqlite_moment(moment: datetime) -> str:
    # What SQLAlchemy's SQLite DateTime writes: naive UTC with microseconds.
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


SQLITE_ENCODING = Encoding(_sqlite_moment, date.isoformat, int)
POSTGRES_ENCODING = Encoding(lambda moment: moment, lambda day: day, lambda flag: flag)


@dataclass
class Counts:
    """Rows made, by table, and the requested audits completed per month (to check reports)."""

    rows: dict[str, int] = field(default_factory=dict)
    completed: dict[str, int] = field(default_factory=dict)

    def add(self, batch: Batch) -> None:
        """Count a batch's rows."""
        for table, (_, rows) in batch.tables.items():
            self.rows[table] = self.rows.get(table, 0) + len(rows)


class History:
    """Ten years (or fewer) of audits, made up the same way every time."""

    def __init__(self, framework: Framework, *, years: int, encoding: Encoding) -> None:
        self.framework = framework
        self.encoding = encoding
        self.months = [
            month
            for year in range(LAST_AUDIT_YEAR - years + 1, LAST_AUDIT_YEAR + 1)
            for month in audit_year(framework, year)
        ]
        self.teams = [f"{area} {service}" for area in AREAS for service in SERVICES]
        self.staff = self._roster()
        self.practitioners = [p for p in self.staff if p.role in dict(PRACTITIONER_SHARES)]
        self.by_team: dict[str, list[Person]] = {}
        for person in self.practitioners:
            self.by_team.setdefault(person.team, []).append(person)
        self.moderators = [p.id for p in self.staff if p.role == "MOD"]
        self.purge_before = datetime(AS_OF.year - RETENTION_MONTHS // 12, AS_OF.month, 1,
                                     tzinfo=UTC)  # fmt: skip
        self.counts = Counts()
        self._audit_id = self._rating_id = self._moderation_rating_id = self._action_id = 0
        # The month's ratings by audit, so the moderation draw can pair them.
        self._last_ratings: dict[int, list[tuple[str, str]]] = {}

    def _roster(self) -> list[Person]:
        people: list[Person] = []
        rng = random.Random(f"{SEED}/roster")

        def add(role: str, team: str, supervisor_id: int | None) -> Person:
            person = Person(len(people) + 1, role, team, supervisor_id)
            people.append(person)
            return person

        directors = [add("DIR", self.teams[0], None) for _ in range(dict(ROLE_COUNTS)["DIR"])]
        strategic = [
            add("SM", self.teams[i % len(self.teams)], directors[i % len(directors)].id)
            for i in range(dict(ROLE_COUNTS)["SM"])
        ]
        service = {
            team: add("SVM", team, strategic[i % len(strategic)].id)
            for i, team in enumerate(self.teams)
        }
        for role, count in ROLE_COUNTS:
            if role in ("DIR", "SM", "SVM"):
                continue
            for i in range(count):
                team = self.teams[i % len(self.teams)]
                boss = service[team].id if role == "AP" else strategic[i % len(strategic)].id
                add(role, team, boss)
        supervisors = [p for p in people if p.role in ("SVM", "AP")]
        remaining = STAFF - len(people)
        roles = [role for role, share in PRACTITIONER_SHARES for _ in range(round(share * 100))]
        for i in range(remaining):
            team = self.teams[i % len(self.teams)]
            in_team = [p for p in supervisors if p.team == team] or [service[team]]
            add(rng.choice(roles), team, rng.choice(in_team).id)
        return people

    def staff_rows(self) -> list[Row]:
        """Return the roster's rows."""
        joined = self.encoding.moment(datetime(2016, 8, 1, 9, tzinfo=UTC))
        return [
            (p.id, f"staff{p.id:04d}@somerset.example", f"aad-{p.id:04d}", f"Staff {p.id:04d}",
             p.role, p.team, p.supervisor_id, self.encoding.flag(True), None, joined, joined)
            for p in self.staff
        ]  # fmt: skip

    def case_rows(self) -> list[Row]:
        """Return each practitioner's cases."""
        stamp = self.encoding.moment(datetime(2026, 8, 1, 9, tzinfo=UTC))
        return [
            (self._case_id(worker.id, k), f"C{worker.id:04d}{k:03d}", worker.team, worker.id,
             "open", None, self.encoding.flag(False), stamp)
            for worker in self.practitioners
            for k in range(CASES_PER_WORKER)
        ]  # fmt: skip

    def _case_id(self, worker_id: int, k: int) -> int:
        return worker_id * CASES_PER_WORKER + k

    def batches(self) -> Iterator[Batch]:
        """Yield each audit month's rows, oldest first."""
        for index, month in enumerate(self.months):
            batch = Batch()
            self._month(batch, month, index)
            self.counts.add(batch)
            yield batch
        yield self._actions()

    def _month(self, batch: Batch, month: AuditMonth, index: int) -> None:
        rng = random.Random(f"{SEED}/{month.month}/{month.standard}/{month.additional}")
        standard = self.framework.standard(month.standard)
        assert standard is not None
        # Ratings drift a little better year by year, and differ between criteria.
        year = index / 10
        weights: list[list[float]] = []
        for j, _ in enumerate(standard.criteria):
            below = max(1.0, 9.0 - 0.4 * year + (j % 3) - (month.standard % 2))
            exceeds = 14.0 + 1.0 * year + (j % 2) * 3
            na = 2.0 + (j % 4)
            weights.append(list(_cumulative((below, 100 - below - exceeds - na, exceeds, na))))
        submitted: list[int] = []  # the requested audits completed
        for auditor, kind, voluntary, slot in self._requests(month, rng):
            self._audit_id += 1
            audit_id = self._audit_id
            subject, case_id, team = self._subject(auditor, kind, standard.subject, rng)
            outcome = rng.random()
            requested = datetime.combine(month.requests_on, time(8), UTC)
            due_end = datetime.combine(month.due_on, time(), UTC)
            if voluntary or outcome < ON_TIME:
                span = max(1, (month.due_on - month.requests_on).days)
                done: datetime | None = requested + timedelta(
                    days=rng.randrange(span), hours=rng.randrange(1, 9), minutes=rng.randrange(60)
                )
            elif outcome < ON_TIME + LATE:
                done = due_end + timedelta(days=rng.randrange(1, 12), hours=rng.randrange(9, 17))
            else:
                done = None
            overdue = due_end + timedelta(days=1, minutes=5) if done is None or (
                done.date() > month.due_on) else None  # fmt: skip
            purged = done is not None and done < self.purge_before
            # Half of the audits not done were at least started.
            status = "submitted" if done else "in_progress" if outcome > 0.985 else "requested"
            started = (done or due_end) - timedelta(hours=rng.randrange(1, 48))
            last = done or started
            moment = self.encoding.moment
            batch.add("audit_request", AUDIT_COLUMNS, (
                audit_id, month.month, month.standard, kind, self.framework.version, auditor.id,
                case_id, subject.id, status, self.encoding.day(month.due_on),
                None if voluntary else f"{month.month}/s{month.standard}/a{auditor.id}/{slot}",
                self.encoding.flag(voluntary), team, "bot", moment(requested),
                moment(started) if status != "requested" else None,
                moment(done) if done else None, moment(overdue) if overdue else None,
                moment(PURGED_AT) if purged else None,
                moment(started) if case_id is not None else None,
                "summary" if done else "case", rng.randrange(8, 20), None, moment(last),
                self.encoding.flag(month.additional and not voluntary),
            ))  # fmt: skip
            if done is None:
                continue
            if not voluntary:
                submitted.append(audit_id)
            stamp = moment(done)
            self._last_ratings[audit_id] = self._ratings(
                batch, audit_id, standard, weights, purged=purged, stamp=stamp, rng=rng
            )
            self._feedback(batch, audit_id, standard.subject, purged, stamp, rng)
            if case_id is not None and kind != "self":
                self._involvement(batch, audit_id, done, purged=purged, stamp=stamp, rng=rng)
        completed = self.counts.completed
        completed[month.month] = completed.get(month.month, 0) + len(submitted)
        self._moderate(batch, month, submitted, rng)
        self._last_ratings.clear()

    def _ratings(
        self,
        batch: Batch,
        audit_id: int,
        standard: Standard,
        weights: list[list[float]],
        *,
        purged: bool,
        stamp: object,
        rng: random.Random,
    ) -> list[tuple[str, str]]:
        """Add an audit's ratings, and return them as (criterion id, rating)."""
        ratings = []
        for criterion, cumulative in zip(standard.criteria, weights, strict=True):
            if rng.random() < BLANK_CRITERION:
                continue
            rating = RATING_CODES[bisect.bisect(cumulative, rng.random() * cumulative[-1])]
            evidence = "" if purged or rating == "not_applicable" else rng.choice(EVIDENCE)
            self._rating_id += 1
            row = (self._rating_id, audit_id, criterion.id, rating, evidence, stamp)
            batch.add("criterion_rating", RATING_COLUMNS, row)
            ratings.append((criterion.id, rating))
        return ratings

    def _involvement(
        self,
        batch: Batch,
        audit_id: int,
        done: datetime,
        *,
        purged: bool,
        stamp: object,
        rng: random.Random,
    ) -> None:
        """Add how the worker was involved in an audit of their case."""
        how = rng.choice(("joint_in_person", "joint_teams", "feedback_arranged", "not_involved"))
        feedback_on = (
            self.encoding.day(done.date() + timedelta(days=rng.randrange(3, 20)))
            if how == "feedback_arranged"
            else None
        )
        reason = "The worker was on leave." if how == "not_involved" and not purged else ""
        row = (audit_id, how, feedback_on, reason, self.encoding.flag(True), stamp)
        batch.add("worker_involvement", INVOLVEMENT_COLUMNS, row)

    def _requests(
        self, month: AuditMonth, rng: random.Random
    ) -> Iterator[tuple[Person, str, bool, int]]:
        """Yield (auditor, kind, voluntary, slot) for every audit asked for in the month."""
        roles = {role.code: role for role in self.framework.roles}
        for person in self.staff:
            role = roles[person.role]
            if month.additional:
                if person.role in month.roles:
                    yield person, "sampled", False, 1
                continue
            if role.audit_kind == "sampled":
                for slot in range(1, role.monthly_audits + 1):
                    yield person, "sampled", False, slot
            elif role.audit_kind == "practitioner":
                yield person, month.practitioner_kind or "self", False, 1
        if not month.additional:
            for _ in range(VOLUNTARY_PER_MONTH):
                yield rng.choice(self.practitioners), "self", True, 0

    def _subject(
        self, auditor: Person, kind: str, subject: str, rng: random.Random
    ) -> tuple[Person, int | None, str]:
        """Return whose work is audited, the case (None for supervision) and the team."""
        if kind == "self":
            worker = auditor
        elif kind == "peer":
            team = rng.choice(self.teams)
            while team == auditor.team:
                team = rng.choice(self.teams)
            worker = rng.choice(self.by_team[team])
        else:
            worker = rng.choice(self.practitioners)
        if subject == "supervision":
            return worker, None, worker.team
        return worker, self._case_id(worker.id, rng.randrange(CASES_PER_WORKER)), worker.team

    def _feedback(
        self,
        batch: Batch,
        audit_id: int,
        subject: str,
        purged: bool,
        stamp: object,
        rng: random.Random,
    ) -> None:
        if subject == "supervision":
            contacted = "supervisee" if rng.random() < 0.8 else ""
        else:
            contacted = rng.choice(("person", "person,carer", "carer", "representative", ""))
        said = rng.choice(QUOTES) if contacted and rng.random() < 0.35 else ""
        suitable = bool(said) and rng.random() < 0.08
        batch.add("feedback_call", FEEDBACK_COLUMNS, (
            audit_id, contacted, "" if purged else said,
            "" if contacted or purged else NO_CONTACT,
            self.encoding.flag(suitable), self.encoding.flag(True), stamp,
        ))  # fmt: skip

    def _moderate(
        self,
        batch: Batch,
        month: AuditMonth,
        submitted: list[int],
        rng: random.Random,
    ) -> None:
        if not submitted or not self.moderators:
            return
        chosen = rng.sample(submitted, max(1, round(MODERATION_SHARE * len(submitted))))
        next_month = month.due_on + timedelta(days=7)
        sampled_at = datetime.combine(next_month, time(), UTC) + timedelta(hours=7)
        purged = sampled_at < self.purge_before
        moment = self.encoding.moment
        for audit_id in sorted(chosen):
            sample = (audit_id, month.month, moment(sampled_at))
            batch.add("moderation_sample", SAMPLE_COLUMNS, sample)
            claimed = sampled_at + timedelta(hours=rng.randrange(1, 72))
            finished = claimed + timedelta(hours=rng.randrange(1, 96))
            done = rng.random() < 0.95
            batch.add("moderation", MODERATION_COLUMNS, (
                audit_id, rng.choice(self.moderators), moment(claimed),
                "" if purged else "A careful audit; the evidence supports most ratings.",
                moment(finished) if done else None, rng.randrange(3, 12),
            ))  # fmt: skip
            if not done:
                continue
            for criterion_id, rating in self._last_ratings.get(audit_id, []):
                self._moderation_rating_id += 1
                if rng.random() < MODERATOR_AGREES:
                    row: Row = (self._moderation_rating_id, audit_id, criterion_id,
                                self.encoding.flag(True), None, "")  # fmt: skip
                else:
                    other = rng.choice([r for r in RATING_CODES if r != rating])
                    reason = "" if purged else "The record does not show this consistently."
                    row = (self._moderation_rating_id, audit_id, criterion_id,
                           self.encoding.flag(False), other, reason)  # fmt: skip
                batch.add("moderation_rating", MODERATION_RATING_COLUMNS, row)

    def _actions(self) -> Batch:
        """Return the Board's learning actions: two a month, most of them closed since."""
        batch = Batch()
        rng = random.Random(f"{SEED}/actions")
        moment = self.encoding.moment
        for month in self.months:
            if month.additional:
                continue
            for _ in range(ACTIONS_PER_MONTH):
                self._action_id += 1
                logged = month.moderation_until + timedelta(days=7)
                due = logged + timedelta(days=90)
                closed = due + timedelta(days=rng.randrange(-30, 60))
                is_closed = closed < AS_OF
                batch.add("learning_action", ACTION_COLUMNS, (
                    self._action_id, str(month.standard),
                    f"CPD session on standard {month.standard} for every team",
                    "PDAP team", self.encoding.day(due),
                    "closed" if is_closed else rng.choice(("open", "in_progress")),
                    self.encoding.day(logged),
                    self.encoding.day(closed) if is_closed else None,
                    moment(datetime.combine(min(closed, AS_OF), time(), UTC)),
                ))  # fmt: skip
        self.counts.add(batch)
        return batch


def _cumulative(weights: Sequence[float]) -> Iterator[float]:
    total = 0.0
    for weight in weights:
        total += weight
        yield total


class SqliteSink:
    """Rows into SQLite: one transaction, no fsync while loading (the file is scratch)."""

    def __init__(self, path: Path) -> None:
        self.connection = sqlite3.connect(path, isolation_level=None)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=OFF")
        self.connection.execute("BEGIN")

    def write(self, table: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
        """Insert rows with one executemany."""
        marks = ", ".join("?" for _ in columns)
        self.connection.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows
        )

    def finish(self) -> None:
        """Commit, and fold the write-ahead log into the file so reads start from a clean one."""
        self.connection.execute("COMMIT")
        self.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()


class PostgresSink:
    """Rows into PostgreSQL with COPY, in one transaction."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.connection = psycopg.connect(url)
        # The rows are consistent by construction; checking each foreign key row by row
        # would slow the load and is not what is being measured. Only a superuser may.
        try:
            self.connection.execute("SET session_replication_role = replica")
        except psycopg.errors.InsufficientPrivilege:
            self.connection.rollback()

    def write(self, table: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
        """Copy rows in."""
        statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        with self.connection.cursor() as cursor, cursor.copy(statement.encode()) as copy:
            for row in rows:
                copy.write_row(row)

    def finish(self) -> None:
        """Move the id sequences past the loaded rows, commit, and gather statistics."""
        for table in SERIAL_TABLES:
            self.connection.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))".encode()
            )
        self.connection.commit()
        # What autovacuum would have done by the time anyone asks for a report.
        self.connection.autocommit = True
        self.connection.execute(b"VACUUM ANALYZE")

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()


@dataclass(frozen=True)
class Loaded:
    """A loaded history and how long each part of loading it took."""

    history: History
    migrate_s: float
    generate_s: float
    write_s: float
    finish_s: float
    tally_s: float  # counting the loaded audits into the reports' tallies

    @property
    def load_s(self) -> float:
        return self.migrate_s + self.generate_s + self.write_s + self.finish_s + self.tally_s


def load(kind: str, url: str, framework: Framework, years: int) -> Loaded:
    """Migrate the database and write the history into it."""
    with Stopwatch() as migrating:
        upgrade(url)
    if kind == "sqlite":
        path = make_url(url).database
        assert path is not None
        sink: Sink = SqliteSink(Path(path))
        history = History(framework, years=years, encoding=SQLITE_ENCODING)
    else:
        sink = PostgresSink(url)
        history = History(framework, years=years, encoding=POSTGRES_ENCODING)
    generate = write = 0.0
    try:
        started = clock.perf_counter()
        fixed = {"staff": (STAFF_COLUMNS, history.staff_rows()),
                 "case_record": (CASE_COLUMNS, history.case_rows())}  # fmt: skip
        batches = history.batches()
        generate += clock.perf_counter() - started
        for table, (columns, rows) in fixed.items():
            history.counts.rows[table] = len(rows)
            with Stopwatch() as writing:
                sink.write(table, columns, rows)
            write += writing.seconds
        while True:
            started = clock.perf_counter()
            batch = next(batches, None)
            generate += clock.perf_counter() - started
            if batch is None:
                break
            with Stopwatch() as writing:
                for table, (columns, rows) in batch.tables.items():
                    sink.write(table, columns, rows)
            write += writing.seconds
        with Stopwatch() as finishing:
            sink.finish()
    finally:
        sink.close()
    # Rows loaded in bulk bypass the writes that keep the reports' tallies: count them afresh.
    with Stopwatch() as tallying:
        asyncio.run(_rebuild_tallies(url))
    return Loaded(history, migrating.seconds, generate, write, finishing.seconds, tallying.seconds)


async def _rebuild_tallies(url: str) -> None:
    store = Database(url)
    try:
        async with store.session() as session:
            await report_tally.rebuild(session=session)
            await session.commit()
    finally:
        await store.dispose()


@dataclass(frozen=True)
class Variant:
    """One report as someone asks for it: which months and teams, and in what form."""

    report: str
    form: str  # json, html, csv, xlsx or card
    first_month: str
    last_month: str
    scope: ReportScope = field(default_factory=ReportScope)
    repeats: int = REPEATS  # warm runs after the first
    # Made in a process of its own, so that its peak memory is its own (as a report worker's).
    alone: bool = False


@dataclass(frozen=True)
class Timing:
    """A report's first run, its warm runs, and what it produced."""

    first_s: float
    runs: list[float]
    content: bytes  # the document (for a workbook: its sheets and strings, not its zip)
    size: int  # the document's bytes
    report: Report
    peak_rss_mb: float  # the process's high-water mark once this report was made

    @property
    def median_s(self) -> float:
        return statistics.median(self.runs)


def variants(history: History) -> list[Variant]:
    """Return the reports to time."""
    team = history.teams[0]
    one_team = ReportScope(team, teams=frozenset({team}))
    return [
        Variant("Board's month", "json", BOARD_MONTH, BOARD_MONTH),
        Variant("Board's month", "html", BOARD_MONTH, BOARD_MONTH),
        Variant("year trend", "json", *TREND),
        Variant("year trend", "html", *TREND),
        Variant("month, one team", "json", BOARD_MONTH, BOARD_MONTH, one_team),
        Variant("month, one team", "html", BOARD_MONTH, BOARD_MONTH, one_team),
        Variant("Teams card", "card", "", ""),
    ] + (
        # Every audit of the history, in every format, each in a process of its own.
        [Variant("whole history", form, history.months[0].month, history.months[-1].month,
                 repeats=WHOLE_REPEATS, alone=True)
         for form in WHOLE_FORMS]
        if len(history.months) > len(audit_year(history.framework, LAST_AUDIT_YEAR))
        else []
    )  # fmt: skip


async def make(store: Database, framework: Framework, variant: Variant) -> tuple[bytes, Report]:
    """Make one report end to end: the queries, the figures, then the document."""
    async with store.session() as session:
        first, last = variant.first_month, variant.last_month
        if variant.form == "card":
            first = last = await latest_reported_month(session, AS_OF)
        report, names = await scoped_report(
            session=session, framework=framework, zone=ZONE, first_month=first,
            last_month=last, scope=variant.scope, as_of=AS_OF,
        )  # fmt: skip
    if variant.form == "json":
        return json.dumps(report_to_json(report, names=names), indent=2).encode(), report
    if variant.form == "html":
        page = render_report_html(report, title=TITLE, generated_on=AS_OF, names=names)
        return page.encode(), report
    if variant.form == "csv":
        return render_report_csv(report, names=names), report
    if variant.form == "xlsx":
        return render_report_xlsx(report, names=names), report
    card = report_summary_card(
        period=report.period_label, scope=report.scope, completed=report.total_completed,
        completion=completion_text(report), below=most_often_below(report), own=None,
        report_url="https://pqf.example/report", minutes=60,
    )  # fmt: skip
    return json.dumps(card).encode(), report


def _content(form: str, document: bytes) -> bytes:
    """Return what a document says: a workbook's sheets and strings (its zip holds a time)."""
    if form != "xlsx":
        return document
    with zipfile.ZipFile(io.BytesIO(document)) as workbook:
        names = sorted(n for n in workbook.namelist() if n.startswith("xl/"))
        return b"".join(name.encode() + workbook.read(name) for name in names)


async def time_reports(url: str, framework: Framework, todo: Sequence[Variant]) -> list[Timing]:
    """Time each report: once cold-ish, then its repeats warm."""
    source = Database(url)
    timings = []
    try:
        for variant in todo:
            runs = []
            for _ in range(variant.repeats + 1):
                started = clock.perf_counter()
                document, report = await make(source, framework, variant)
                runs.append(clock.perf_counter() - started)
            peak = peak_rss_mb(os.getpid())
            content = _content(variant.form, document)
            timings.append(Timing(runs[0], runs[1:] or runs, content, len(document), report, peak))
    finally:
        await source.dispose()
    return timings


def _time_alone(url: str, framework: Framework, variant: Variant) -> Timing:
    return asyncio.run(time_reports(url, framework, [variant]))[0]


def time_all(url: str, framework: Framework, todo: Sequence[Variant]) -> list[Timing]:
    """Time the reports: in this process, or each in a new process of its own."""
    together = asyncio.run(time_reports(url, framework, [v for v in todo if not v.alone]))
    timings = iter(together)
    found = []
    for variant in todo:
        if not variant.alone:
            found.append(next(timings))
            continue
        # "spawn", as the bot's report workers start: a fresh interpreter, nothing inherited.
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            found.append(pool.submit(_time_alone, url, framework, variant).result())
    return found


def _check(history: History, variant: Variant, report: Report) -> None:
    """Fail if a whole-council report does not count the audits the history completed."""
    if variant.scope.teams is not None or variant.form == "card":
        return
    expected = sum(
        count
        for month, count in history.counts.completed.items()
        if variant.first_month <= month <= variant.last_month
    )
    if report.total_completed != expected:
        raise RuntimeError(
            f"{variant.report}: {report.total_completed} audits completed, expected {expected}"
        )


def run_database(
    kind: str, folder: Path, framework: Framework, years: int, result: Result,
    digests: dict[tuple[str, str], dict[str, str]],
) -> None:  # fmt: skip
    """Load the history into one database and time every report on it."""
    with database(kind, folder, "reports") as url:
        try:
            log.info("%s: generating and loading %d audit years", kind, years)
            loaded = load(kind, url, framework, years)
            rows = loaded.history.counts.rows
            result.table("Data", {
                "database": kind,
                "staff": rows.get("staff", 0),
                "teams": len(loaded.history.teams),
                "months": f"{loaded.history.months[0].month} to {loaded.history.months[-1].month}",
                "audits": rows.get("audit_request", 0),
                "ratings": rows.get("criterion_rating", 0),
                "feedback_calls": rows.get("feedback_call", 0),
                "moderations": rows.get("moderation", 0),
                "moderation_ratings": rows.get("moderation_rating", 0),
                "generate_s": round(loaded.generate_s, 1),
                "write_s": round(loaded.write_s, 1),
                "finish_s": round(loaded.finish_s, 1),
                "tally_s": round(loaded.tally_s, 1),
                "load_s": round(loaded.load_s, 1),
            })  # fmt: skip
            todo = variants(loaded.history)
            timings = time_all(url, framework, todo)
            for variant, timing in zip(todo, timings, strict=True):
                _check(loaded.history, variant, timing.report)
                digest = hashlib.sha256(timing.content).hexdigest()
                digests.setdefault((variant.report, variant.form), {})[kind] = digest
                result.table("Report times", {
                    "database": kind,
                    "report": variant.report,
                    "period": timing.report.period_label,
                    "scope": timing.report.scope,
                    "format": variant.form,
                    "audits": timing.report.total_completed,
                    "kb": round(timing.size / 1024),
                    "sha256": digest[:12],
                    "first_s": round(timing.first_s, 3),
                    "median_s": round(timing.median_s, 3),
                    "peak_rss_mb": round(timing.peak_rss_mb),
                })  # fmt: skip
                _goals(result, kind, variant, timing)
        finally:
            if kind == "sqlite":
                for leftover in folder.glob("reports.db*"):
                    leftover.unlink()


def _goals(result: Result, kind: str, variant: Variant, timing: Timing) -> None:
    """Record the goals a report has: its time, and for the whole history its memory too."""
    if not variant.repeats or variant.scope.teams is not None:
        return
    name = (
        f"{kind}: {variant.report} ({timing.report.period_label}, all teams) "
        f"as {variant.form.upper()}"
    )
    runs = f"median of {variant.repeats} warm runs; first run {timing.first_s:.2f} s"
    if variant.report == "whole history":
        result.goal(name, f"< {WHOLE_SECONDS:g} s", f"{timing.median_s:.2f} s",
                    timing.median_s < WHOLE_SECONDS, runs)  # fmt: skip
        result.goal(f"{name}: peak memory", f"< {WHOLE_PEAK_MB} MB",
                    f"{timing.peak_rss_mb:.0f} MB", timing.peak_rss_mb < WHOLE_PEAK_MB,
                    "peak resident memory of the process that made it (VmHWM)")  # fmt: skip
        return
    if variant.form not in GOAL_SECONDS:
        return
    target = GOAL_SECONDS[variant.form]
    before = YEAR_BEFORE.get((kind, variant.form)) if variant.report == "year trend" else None
    if before is not None:
        # The goal: the year trend no slower than it was (the figure below, measured
        # with the code before reports were counted by the database).
        target = min(target, before * NOISE)
        runs += f"; before: {before:.2f} s"
    result.goal(name, f"< {target:.2f} s", f"{timing.median_s:.2f} s",
                timing.median_s < target, runs)  # fmt: skip


def main() -> None:
    """Run the benchmark."""
    args = arguments("Time the Board's reports over ten years of history.")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    result = Result(name="reports", title="Reports at scale")
    framework = load_framework()
    years = QUICK_YEARS if args.quick else FULL_YEARS
    kinds = [kind.strip() for kind in args.databases.split(",") if kind.strip()]
    folder = scratch("reports")
    digests: dict[tuple[str, str], dict[str, str]] = {}
    started = clock.perf_counter()
    try:
        for kind in kinds:
            run_database(kind, folder, framework, years, result, digests)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    result.seconds = round(clock.perf_counter() - started, 1)
    differing = [f"{report} {form}" for (report, form), by_kind in digests.items()
                 if len(set(by_kind.values())) > 1]  # fmt: skip
    if len(kinds) > 1:
        result.notes.append(
            "Every report was byte for byte the same on both databases."
            if not differing
            else "Reports that differed between the databases: " + ", ".join(differing)
        )
    result.notes.extend(METHOD)
    result.notes.extend(CHANGES)
    whole = [row for row in result.tables.get("Report times", [])
             if row["report"] == "whole history"]  # fmt: skip
    if whole:
        result.notes.append(_design_limit(whole))
    for note in result.notes:
        log.info("note: %s", note)
    if args.out:
        result.write(args.out)
    log.info("done in %.1f s", result.seconds)


METHOD = [
    f"History: {STAFF:,} staff in 60 teams with the framework's role mix; every audit month of "
    f"the timetable from September {LAST_AUDIT_YEAR - FULL_YEARS + 1} to July "
    f"{LAST_AUDIT_YEAR + 1} (--quick: the last audit year only), each auditor completing their "
    "quota (practitioners 1, managers 2, PDAPs 6), 90% on time, 7% late, 3% not done, plus 20 "
    "voluntary audits a month and January 2024's additional audits; ratings drawn per criterion "
    "(about 6% Below, 72% Meets, 18% Exceeds, 4% N/A); a feedback call for each audit; the "
    "worker's involvement in sampled and peer case audits; 10% of each month's audits "
    "moderated (85% agreement); 2 learning actions a month. Evidence and quotes older than 24 "
    "months are erased, as the retention rule does. Seeded: every run makes the same data.",
    "Loading: the schema by the project's migrations; rows by COPY on PostgreSQL (foreign key "
    "triggers off while loading, then VACUUM ANALYZE, as autovacuum would) and by executemany "
    "in one transaction on SQLite (synchronous=OFF while loading; no ANALYZE, as the bot never "
    "runs one). Not loaded, as no report reads them: status history, outbox, bot state.",
    "Times are end to end, as `pqf-bot report` makes them: scoped_report (the queries and the "
    "figures), then report_to_json + json.dumps(indent=2), render_report_html, "
    "render_report_csv or render_report_xlsx; the Teams card is latest_reported_month + "
    "scoped_report + report_summary_card. Each report is run once (first_s), then "
    f"{REPEATS} times (median_s). The whole history is made in every format, each in a new "
    f"process of its own (spawned, as the bot's report workers are), run once and then "
    f"{WHOLE_REPEATS} times, and peak_rss_mb is that process's peak (VmHWM); the other reports "
    "share one process, whose peak is shown as it stood after each. "
    f"Reports are made as of {AS_OF.isoformat()}. The whole-council reports are checked "
    "against the number of audits the history completed; sha256 is the start of the hash of "
    "the document made, so runs (and databases, and versions of the code) can be compared "
    "byte for byte. The year trend's goal is also to be no slower than before counting moved "
    "to the database (its median then, within 10%).",
]

# Measured while making the changes, on the same ten-year SQLite database, the code before
# (commit 836aaae) and after run alternately (this shared machine was loaded throughout, so
# CPU seconds of the process are compared as well as wall time).
CHANGES = [
    "Before and after, report tallies (storage/report_tally.py, migration 0011): the counts a "
    "whole-council or team report needs are kept as audits are written, in the same "
    "transaction (submission, the audit import and re-import, a moderation saved or "
    "submitted; the retention purge erases words only and leaves them as they are): ratings "
    "per month, standard, additional, criterion and rating (and by team), completed audits per "
    "month, standard, kind, team and whether rated, and moderated pairs per month and team by "
    "criterion and by auditor with the two ratings (all the report shows of them). Such a "
    "report reads those (2,668 rows of ratings for the ten years) instead of counting 1.46 "
    "million ratings and 137,109 moderated ratings; a person's or a moderator's scope is still "
    "counted live, and so is timeliness (by the auditor's role today). On SQLite the due "
    "date's end is compared as text, not worked out by datetime() per audit. This benchmark "
    "loads rows in bulk and so counts them afresh (tally_s). Same machine and day, loaded by "
    "other work (load average 1.5-4): the whole history went from 8.95-21.1 s to 1.0-2.0 s on "
    "SQLite and from 6.6-8.5 s to 0.94-1.7 s on PostgreSQL in the four formats, peaking at "
    "111-124 MB (before 154-171 MB); the year trend from 1.50-2.60 s to 0.16-0.25 s on SQLite "
    "and 0.57-0.82 s to 0.16-0.21 s on PostgreSQL. Every report byte for byte as before.",
    "Before and after, counting in the database (storage/report_counts.py, practice/report.py, "
    "practice/agreement.py; no migration): a report no longer reads every audit of its period "
    "with its ratings and counts them in Python. The database counts them (GROUP BY month, "
    "standard, additional, criterion and rating; by kind; by role, team and timeliness; "
    "moderated pairs by auditor, criterion and the two ratings), with the report's scope "
    "(teams, auditor, audited worker, people, the moderation sample) as WHERE clauses, and "
    "only the counts, the quotes (few: older words are erased) and the learning actions reach "
    "Python. The whole ten-year history's report now peaks at 153-162 MB in every format "
    "(before: 593-605 MB as JSON), and its memory no longer grows with the period. "
    "build_report (the figures from AuditFacts, as the tests give them) now counts into the "
    "same ReportCounts and shares counted_report, and tests/test_report_counts.py checks on "
    "SQLite and PostgreSQL that the database's counts make the very report Python's do, for "
    "every kind of scope. Same database, code before and after run alternately, two rounds "
    "(the machine loaded by other work, so wall times vary more than CPU): the whole history "
    "as JSON on SQLite took 9.2-9.6 s of CPU (10.7-13.1 s wall) before and 6.6-6.8 s (11.9-12.3 "
    "s wall) after; the year trend 0.91-1.25 s of CPU (1.29-1.78 s wall) before and 0.53-0.68 s "
    "(0.90-0.91 s wall) after. Every report is byte for byte the same as before (the sha256 "
    "column; a workbook by its sheets and strings, as its zip holds the time it was written).",
    "Before and after, writing the workbook (reports/tabular.py): openpyxl's sheet.max_row and "
    "sheet[row], asked for each row written, walk every cell of the sheet (quadratic), and "
    "setting a cell's style looks it up among the workbook's styles by value. Cells are now "
    "found by number and their style copied from one made per number format: the ten-year "
    "workbook's writing went from 6-12 s to about 1 s (loaded machine), its contents unchanged.",
    "Earlier (commit 13d197a): the year trend went from 0.85-1.10 s to 0.50-0.54 s by folding "
    "each audit's ratings into its row (string_agg / group_concat) and counting per month and "
    "standard once; that path (storage/reporting.py report_facts) is kept for the audit import's "
    "checks and as the tests' reference.",
]


def _design_limit(rows: Sequence[dict[str, object]]) -> str:
    times = ", ".join(
        f"{row['format']} {row['median_s']} s on {row['database']} ({row['peak_rss_mb']} MB)"
        for row in rows
    )
    return (
        f"Where the time goes now: the whole history ({rows[0]['audits']:,} audits completed, "
        f"1.46 million ratings) took {times}. The counts of ratings, audits and moderated pairs "
        "come from the tallies (a few thousand rows), so what grows with the period is the "
        "completion table's count by role, team and timeliness, still made from every "
        "requested audit (0.9-2.0 s on SQLite before its due-date ends became text, loaded "
        "machine), and writing the document (the workbook about 1 s). Timeliness is not "
        "tallied because its role is the auditor's role today and its still-open column "
        "depends on the day the report is made; tallying it would mean keeping it through "
        "every roster change as well."
    )


if __name__ == "__main__":
    main()
