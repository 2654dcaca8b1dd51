"""Operations and data protection: logs without personal data, retention (purge), the access
log, subject access exports, check-config, backups and progress on a terminal."""

from __future__ import annotations

import io
import itertools
import json
import logging
import os
import sqlite3
import stat
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from admin.cli import main
from admin.demo_data import cases_csv, staff_csv
from admin.progress import TerminalProgress
from bot.logs import configure_logging
from messages.requests import request_audit
from practice.framework import Framework
from practice.report import ReportScope
from reports.service import scoped_report
from scheduler.jobs import Cycle, purge_old_words
from storage import access_log, outbox
from storage import audits as audit_store
from storage import moderation as moderation_store
from storage.csv_import import import_cases, import_staff
from storage.database import Database
from storage.models import (
    CriterionRating,
    Moderation,
    ModerationSample,
    OutboxMessage,
    OutboxStatus,
    Staff,
)
from storage.retention import purge
from tests.conftest import NOW, ROOT, TODAY
from tests.harness import BotHarness, User, inputs
from tests.test_monthly_cycle import LONDON

ALEX = User("00000000-0000-0000-0000-0000000000020", "user-id-0", "Alex Wilber")
SECRET_EVIDENCE = "Mrs Jennifer Example told me about her fall on the stairs"
SECRET_FEEDBACK = "Her daughter Rosalind said the plan was never explained"


async def seed(database: Database, framework: Framework) -> None:
    async with database.session() as session:
        assert (await import_staff(session=session, framework=framework, text=staff_csv())).ok
        assert (await import_cases(session=session, text=cases_csv(TODAY))).ok


# -- logs -----------------------------------------------------------------------------------


async def test_a_whole_audit_logs_ids_never_names_or_words(
    sqlite_database: Database, framework: Framework, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed(sqlite_database, framework)
    harness = BotHarness(database=sqlite_database, framework=framework, clock=lambda: NOW)
    async with sqlite_database.session() as session:
        requested = await request_audit(
            session=session, framework=framework, auditor_email="alexw@example.com",
            standard_number=3, month="2026-11", today=TODAY,
        )  # fmt: skip
    capsys.readouterr()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    # Logging as the bot configures it, at its most talkative (PQF_LOG_LEVEL=DEBUG).
    configure_logging(level="DEBUG", json_lines=True)
    try:
        turn = await harness.install(ALEX)
        turn = await harness.submit(
            ALEX, None, {"pqf": "audit.open", "audit_id": requested.audit.id}
        )
        choice = inputs(turn.card)["case_choice"]["choices"][0]["value"]
        turn = await harness.press(ALEX, turn, "Use this case", case_choice=choice)
        for index in range(8):
            turn = await harness.press(ALEX, turn, "Next", rating="below",
                                       evidence=f"{SECRET_EVIDENCE} ({index})")  # fmt: skip
        turn = await harness.press(ALEX, turn, "Next", contacted="carer",
                                   what_they_said=SECRET_FEEDBACK)  # fmt: skip
        turn = await harness.press(ALEX, turn, "Submit audit")
        assert "is submitted" in turn.text
        await harness.say(ALEX, "my audits")
        await harness.say(ALEX, "report")
        await harness.submit(ALEX, None, {"pqf": "audit.criterion", "audit_id": "forged"})
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)

    lines = capsys.readouterr().err.splitlines()
    messages = [json.loads(line)["message"] for line in lines]  # every line is JSON
    assert len(messages) >= 5, messages
    assert any(f"audit {requested.audit.id}" in m for m in messages), messages
    for forbidden in ("Jennifer", "fall on the stairs", "Rosalind", "Alex", "Wilber",
                      "alexw@example.com", "Megan", choice):  # fmt: skip
        offending = [line for line in lines if forbidden in line]
        assert not offending, (forbidden, offending[:3])


def test_production_logs_are_json_lines_with_emails_masked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging(level="INFO", json_lines=True)
        log = logging.getLogger("pqf.test")
        log.info("staff %s opened audit %s", 7, 42)
        log.warning("someone wrote %s into a message", "jo.bloggs@somerset.gov.uk")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("a job failed")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["message"] for line in lines] == [
        "staff 7 opened audit 42",
        "someone wrote <email> into a message",
        "a job failed",
    ]
    assert {line["level"] for line in lines} == {"INFO", "WARNING", "ERROR"}
    assert all(line["logger"] == "pqf.test" and line["time"].endswith("+00:00") for line in lines)
    assert "ValueError: boom" in lines[2]["exception"]


# -- retention ---------------------------------------------------------------------------------


async def audit_with_words(
    database: Database, framework: Framework, email: str, *, submitted: datetime | None,
    month: str = "2026-11",
) -> int:  # fmt: skip
    """Create an audit with evidence, feedback and a moderation; submit it at a time, or not."""
    async with database.session() as session:
        requested = await request_audit(
            session=session, framework=framework, auditor_email=email, standard_number=3,
            month=month, today=TODAY,
        )  # fmt: skip
        audit = requested.audit
        assert audit.id is not None
        standard = framework.standard(3)
        assert standard is not None
        for criterion in standard.criteria:
            await audit_store.save_rating(
                session=session, audit_id=audit.id, criterion_id=criterion.id, rating="meets",
                evidence=f"{SECRET_EVIDENCE} {criterion.id}",
            )  # fmt: skip
        await audit_store.save_feedback_call(
            session=session, audit_id=audit.id, contacted=["carer"],
            what_they_said=SECRET_FEEDBACK, no_contact_reason="", suitable_for_report=True,
            complete=True,
        )  # fmt: skip
        if submitted is not None:
            await audit_store.submit(session=session, audit=audit, actor_id=audit.auditor_id)
            audit.submitted_at = submitted
            session.add(audit)
            moderator = (
                await session.exec(select(Staff).where(Staff.email == "pattif@example.com"))
            ).one()
            assert moderator.id is not None
            session.add(ModerationSample(audit_id=audit.id, month="2026-11"))
            await session.flush()
            assert await moderation_store.claim(
                session=session, audit_id=audit.id, moderator_id=moderator.id
            )
            moderation = await moderation_store.moderation_of(session=session, audit_id=audit.id)
            assert moderation is not None
            await moderation_store.save(
                session=session, moderation=moderation,
                views={standard.criteria[0].id: (False, "below", "Moderator's reason")},
                comment="Moderator's comment", submit=True,
            )  # fmt: skip
        return audit.id


async def words_of(database: Database, audit_id: int) -> dict[str, Any]:
    async with database.session() as session:
        detail = await audit_store.audit_detail(session=session, audit_id=audit_id)
        moderation = await session.get(Moderation, audit_id)
        views = await moderation_store.ratings_of(session=session, audit_id=audit_id)
    assert detail is not None
    return {
        "evidence": sorted(r.evidence for r in detail.ratings.values()),
        "ratings": sorted((r.criterion_id, r.rating) for r in detail.ratings.values()),
        "feedback": detail.feedback.what_they_said if detail.feedback else None,
        "contacted": detail.feedback.contacted if detail.feedback else None,
        "comment": moderation.overall_comment if moderation else None,
        "reasons": sorted(v.reason for v in views.values()),
        "moderated_ratings": sorted((v.criterion_id, v.rating) for v in views.values()),
        "purged": detail.audit.purged_at is not None,
    }


async def test_purge_erases_old_words_keeps_ratings_and_never_touches_open_audits(
    database: Database, framework: Framework
) -> None:
    await seed(database, framework)
    old = await audit_with_words(database, framework, "alexw@example.com",
                                 submitted=NOW - timedelta(days=800))  # fmt: skip
    recent = await audit_with_words(database, framework, "adelev@example.com",
                                    submitted=NOW - timedelta(days=30))  # fmt: skip
    unfinished = await audit_with_words(database, framework, "meganb@example.com", submitted=None)
    async with database.session() as session:  # an unfinished audit started long ago
        await session.exec(
            update(CriterionRating)
            .where(col(CriterionRating.audit_id) == unfinished)
            .values(updated_at=NOW - timedelta(days=900))
        )
        sent, _ = await outbox.enqueue(
            session=session, key="old-outcome", recipient_id=1, purpose="outcome",
            period="2024-07", activity={"text": SECRET_FEEDBACK}, audit_id=old,
        )  # fmt: skip
        sent.status = OutboxStatus.SENT
        sent.created_at = NOW - timedelta(days=60)
        fresh, _ = await outbox.enqueue(
            session=session, key="new-outcome", recipient_id=1, purpose="outcome",
            period="2026-11", activity={"text": SECRET_FEEDBACK}, audit_id=recent,
        )  # fmt: skip
        fresh.status = OutboxStatus.SENT
    before = {a: await words_of(database, a) for a in (old, recent, unfinished)}

    async with database.session() as session:
        report_before, _ = await scoped_report(
            session=session, framework=framework, zone=LONDON, first_month="2026-11",
            last_month="2026-11", scope=ReportScope("All teams"), as_of=NOW.date(),
        )  # fmt: skip
        dry = await purge(session=session, now=NOW, retention_months=24, dry_run=True)
    assert (dry.audits, dry.evidence, dry.feedback, dry.moderations, dry.messages) == (
        1,
        8,
        1,
        1,
        1,
    )
    assert {a: await words_of(database, a) for a in before} == before  # a dry run changes nothing

    async with database.session() as session:
        done = await purge(session=session, now=NOW, retention_months=24, dry_run=False)
    assert (done.audits, done.evidence, done.messages) == (1, 8, 1)
    erased = await words_of(database, old)
    assert erased["evidence"] == [""] * 8
    assert erased["feedback"] == ""
    assert erased["comment"] == ""
    assert erased["reasons"] == [""]
    assert erased["purged"] is True
    # What the statistics need stays.
    assert erased["ratings"] == before[old]["ratings"]
    assert erased["contacted"] == "carer"
    assert erased["moderated_ratings"] == before[old]["moderated_ratings"]
    assert await words_of(database, recent) == before[recent]
    assert await words_of(database, unfinished) == before[unfinished]
    async with database.session() as session:
        messages = {
            m.idempotency_key: m.activity for m in await session.exec(select(OutboxMessage))
        }
        report_after, _ = await scoped_report(
            session=session, framework=framework, zone=LONDON, first_month="2026-11",
            last_month="2026-11", scope=ReportScope("All teams"), as_of=NOW.date(),
        )  # fmt: skip
        again = await purge(session=session, now=NOW, retention_months=24, dry_run=False)
    assert SECRET_FEEDBACK not in messages["old-outcome"]
    assert SECRET_FEEDBACK in messages["new-outcome"]
    # The Board's figures are the same; only the erased words are gone from its quotes.
    assert report_after.completed == report_before.completed
    assert report_after.tables == report_before.tables
    assert report_after.moderation == report_before.moderation
    assert len(report_after.feedback) == len(report_before.feedback) - 1
    assert all(quote.text for quote in report_after.feedback)
    assert (again.audits, again.messages) == (0, 0)  # nothing left to erase


async def test_the_retention_job_runs_once_a_day(
    sqlite_database: Database, framework: Framework
) -> None:
    await seed(sqlite_database, framework)
    old = await audit_with_words(sqlite_database, framework, "alexw@example.com",
                                 submitted=datetime.now(UTC) - timedelta(days=800))  # fmt: skip
    off = Cycle(database=sqlite_database, framework=framework, zone=LONDON)
    assert await purge_old_words(off, date(2026, 11, 23)) is None
    cycle = Cycle(database=sqlite_database, framework=framework, zone=LONDON, retention_months=24)
    first = await purge_old_words(cycle, date(2026, 11, 23))
    assert first is not None
    assert first.ran
    assert first.summary["audits"] == 1
    second = await purge_old_words(cycle, date(2026, 11, 23))
    assert second is not None
    assert not second.ran
    assert (await words_of(sqlite_database, old))["purged"] is True


# -- the command line: purge, access log, export-person, check-config, backup -----------------


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("PQF_ENVIRONMENT", "PQF_FRAMEWORK_FILE", "MICROSOFT_APP_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/pqf.db")
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def test_purge_access_log_and_export_person_at_the_command_line(
    workdir: Path, framework: Framework, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "migrate")[0] == 0
    database_url = f"sqlite:///{workdir}/pqf.db"

    async def prepare() -> tuple[int, int]:
        database = Database(database_url)
        try:
            await seed(database, framework)
            # Two months: nobody is asked for two audits of a standard in one.
            old = await audit_with_words(database, framework, "alexw@example.com",
                                         submitted=datetime.now(UTC) - timedelta(days=800),
                                         month="2024-09")  # fmt: skip
            recent = await audit_with_words(database, framework, "alexw@example.com",
                                            submitted=datetime.now(UTC) - timedelta(days=3))  # fmt: skip
            async with database.session() as session:
                megan = (
                    await session.exec(select(Staff).where(Staff.email == "meganb@example.com"))
                ).one()
                await access_log.record(session=session, staff_id=megan.id, action="audit_pdf",
                                        target=f"audit {recent}", via="link")  # fmt: skip
        finally:
            await database.dispose()
        return old, recent

    import asyncio

    old, recent = asyncio.run(prepare())
    status, out, _ = run(capsys, "purge", "--dry-run")
    assert status == 0
    assert out.startswith("Would erase the words of 1 audits submitted over 24 months ago: 8 "
                          "pieces of evidence, 1 feedback calls, 1 moderations")  # fmt: skip
    status, out, _ = run(capsys, "purge")
    assert out.startswith("Erased the words of 1 audits")

    out_file = workdir / "sar" / "alex.json"
    status, out, _ = run(capsys, "export-person", "alexw@example.com", "--out", str(out_file))
    assert status == 0
    assert "2 audits they did" in out
    record = json.loads(out_file.read_text(encoding="utf-8"))
    assert record["staff"]["email"] == "alexw@example.com"
    by_id = {a["audit"]["id"]: a for a in record["audits_they_did"]}
    assert set(by_id) == {old, recent}
    assert any(SECRET_EVIDENCE in r["evidence"] for r in by_id[recent]["ratings"])
    assert all(r["evidence"] == "" for r in by_id[old]["ratings"])  # purged before the request
    assert by_id[recent]["feedback_call"]["what_they_said"] == SECRET_FEEDBACK
    assert run(capsys, "export-person", "nobody@example.com", "--out", str(out_file))[0] == 1

    status, out, _ = run(capsys, "access-log", "--json")
    entries = json.loads(out)
    assert [(e["who"], e["action"], e["what"]) for e in entries] == [
        ("administrator (command line)", "cli_export_person", entries[0]["what"]),
        ("meganb@example.com", "audit_pdf", f"audit {recent}"),
    ]
    status, out, _ = run(capsys, "access-log", "--staff", "meganb@example.com")
    assert "audit_pdf" in out
    assert "cli_export_person" not in out


def test_purged_words_are_gone_from_the_sqlite_files(
    workdir: Path,
    framework: Framework,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As on a SQLite built without SECURE_DELETE on by default (Debian's has it; many don't).
    connect = sqlite3.connect

    def without_secure_delete(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection = connect(*args, **kwargs)
        connection.execute("PRAGMA secure_delete=OFF")
        return connection

    monkeypatch.setattr(sqlite3, "connect", without_secure_delete)
    assert run(capsys, "migrate")[0] == 0
    path = workdir / "pqf.db"
    database_url = f"sqlite:///{path}"

    async def prepare() -> None:
        database = Database(database_url)
        try:
            await seed(database, framework)
            await audit_with_words(database, framework, "alexw@example.com",
                                   submitted=datetime.now(UTC) - timedelta(days=800))  # fmt: skip
            await database.forget_erased()  # the words now sit in the database file itself
        finally:
            await database.dispose()

    import asyncio

    asyncio.run(prepare())
    secrets = (SECRET_EVIDENCE.encode(), SECRET_FEEDBACK.encode())
    assert all(secret in path.read_bytes() for secret in secrets)
    # The bot is running (a connection stays open), as it would be for the daily job.
    reader = sqlite3.connect(path)
    reader.execute("SELECT count(*) FROM staff").fetchone()
    try:
        status, out, _ = run(capsys, "purge")
        assert status == 0, out
        assert out.startswith("Erased the words of 1 audits")
        files = [p for p in workdir.iterdir() if p.name.startswith("pqf.db")]
        assert path in files
        for file in files:
            data = file.read_bytes()
            for secret in secrets:
                assert secret not in data, (file.name, secret)
            assert b"Mrs Jennifer Example" not in data
    finally:
        reader.close()


def test_check_config_says_what_is_wrong(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    status, out, err = run(capsys, "check-config")
    assert status == 2
    assert "run `pqf-bot migrate`" in err
    assert run(capsys, "migrate")[0] == 0
    status, out, err = run(capsys, "check-config")
    assert status == 0, err
    assert "Framework: 2023-09.1, 10 standards." in out
    assert "schema current" in out
    assert out.rstrip().endswith("All checks passed.")

    monkeypatch.setenv("DATABASE_URL", "postgresql://pqf:hunter2@127.0.0.1:1/pqf")
    status, out, err = run(capsys, "check-config")
    assert status == 2
    assert "cannot reach postgresql://pqf:***@127.0.0.1:1/pqf" in err
    assert "hunter2" not in out + err

    monkeypatch.setenv("PQF_ENVIRONMENT", "production")
    status, out, err = run(capsys, "check-config")
    assert status == 2
    assert "MICROSOFT_APP_ID" in err
    assert "Traceback" not in err


def test_backup_copies_a_consistent_sqlite_database(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(capsys, "migrate")[0] == 0
    assert run(capsys, "import-staff", str(ROOT / "examples" / "staff.csv"))[0] == 0
    copy = workdir / "backups" / "pqf-copy.db"
    status, out, _ = run(capsys, "backup", str(copy))
    assert status == 0
    assert "integrity check: ok" in out
    with sqlite3.connect(copy) as connection:
        assert connection.execute("SELECT count(*) FROM staff").fetchone()[0] == 6
    status, _, err = run(capsys, "backup", str(copy))
    assert status == 1
    assert "exists" in err
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{workdir}/missing/pqf.db")
    status, _, err = run(capsys, "backup", str(workdir / "other.db"))
    assert status == 1
    assert "there is no database" in err
    monkeypatch.setenv("DATABASE_URL", "postgresql://pqf@127.0.0.1/pqf")
    status, _, err = run(capsys, "backup", str(workdir / "other.db"))
    assert status == 1
    assert "pg_dump --format=custom" in err


@pytest.fixture
def open_umask() -> Any:
    """Run the test under a umask that would let every local user read new files."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_exports_and_backups_are_private_whatever_the_umask(
    workdir: Path,
    framework: Framework,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    open_umask: None,
) -> None:
    data = workdir / "var" / "data"
    database_url = f"sqlite:///{data}/pqf.db"
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert run(capsys, "migrate")[0] == 0

    async def prepare() -> int:
        database = Database(database_url)
        try:
            await seed(database, framework)
            return await audit_with_words(
                database, framework, "alexw@example.com", submitted=datetime.now(UTC)
            )
        finally:
            await database.dispose()

    import asyncio

    audit_id = asyncio.run(prepare())
    month = datetime.now(UTC).strftime("%Y-%m")
    out = workdir / "out" / "nested"
    shared = workdir / "shared"
    shared.mkdir(mode=0o755)
    commands = [
        ("report", "--month", "2026-11", "--to", month, "--format", "xlsx", "--out",
         str(out / "report.xlsx")),
        ("report", "--month", "2026-11", "--format", "csv", "--out", str(out / "report.csv")),
        ("report", "--month", "2026-11", "--format", "html", "--out", str(out / "report.html")),
        ("report", "--month", "2026-11", "--format", "json", "--out", str(out / "report.json")),
        ("audit-export", str(audit_id), "--format", "pdf", "--out", str(out / "audit.pdf")),
        ("audit-export", str(audit_id), "--format", "html", "--out", str(out / "audit.html")),
        ("export-person", "alexw@example.com", "--out", str(out / "alex.json")),
        ("backup", str(shared / "copy.db")),
    ]  # fmt: skip
    for command in commands:
        status, _, err = run(capsys, *command)
        assert status == 0, (command, err)
    written = [Path(c[-1]) for c in commands]
    assert all(path.stat().st_size > 0 for path in written)
    for path in [*written, data / "pqf.db", data / "pqf.db-wal", data / "pqf.db-shm"]:
        assert mode(path) == 0o600, (path, oct(mode(path)))
    for folder in (data, data.parent, out, out.parent):
        assert mode(folder) == 0o700, (folder, oct(mode(folder)))
    assert mode(shared) == 0o755  # folders already there are left as they were
    assert not list(out.glob(".*partial"))
    # An export written again replaces the file, still private.
    (out / "report.csv").chmod(0o644)
    assert run(capsys, *commands[1])[0] == 0
    assert mode(out / "report.csv") == 0o600

    # Files left readable by an older release are made private when the database is opened.
    (data / "pqf.db").chmod(0o644)
    (data / "pqf.db-wal").write_bytes(b"")
    (data / "pqf.db-wal").chmod(0o644)
    asyncio.run(Database(database_url).dispose())
    assert mode(data / "pqf.db") == 0o600
    assert mode(data / "pqf.db-wal") == 0o600


# -- progress on a terminal, quiet in scripts -------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_drawn_on_a_terminal_and_silent_elsewhere() -> None:
    ticks = itertools.count()  # a row every millisecond: four seconds for the file
    screen = Terminal()
    progress = TerminalProgress(screen, clock=lambda: next(ticks) / 1000)
    for done in range(1, 4001):
        progress("saving staff", done, 4000)
    progress("erasing", 1, 2)
    progress.close()
    drawn = screen.getvalue()
    assert "\rsaving staff: 4,000/4,000 (100%)" in drawn
    assert "saving staff: 1/4,000 (0%)" in drawn
    assert drawn.count("\r") < 60  # redrawn at most ten times a second, not per row
    assert drawn.endswith("erasing: 1/2 (50%)\n")

    piped = io.StringIO()
    quiet = TerminalProgress(piped)
    for done in range(1, 11):
        quiet("saving staff", done, 10)
    quiet.close()
    assert piped.getvalue() == ""
    assert not quiet.shown


def test_a_script_sees_only_the_result_of_a_long_import(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "DATABASE_URL": f"sqlite:///{tmp_path}/pqf.db"}  # fmt: skip
    for command in (["migrate"], ["import-staff", str(ROOT / "examples" / "staff.csv")]):
        done = subprocess.run(
            [sys.executable, "-m", "admin", *command], cwd=ROOT, env=env, capture_output=True,
            text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "\r" not in done.stdout + done.stderr
    assert done.stdout.strip() == (
        f"Imported {ROOT / 'examples' / 'staff.csv'}: 6 people added, 0 updated, 0 unchanged."
    )
    assert done.stderr == ""


async def test_request_log_lines_never_carry_a_links_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from bot.logs import RequestLogger

    async def page(_request: web.Request) -> web.Response:
        return web.Response(text="report")

    app = web.Application()
    app.router.add_get("/reports", page)
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    server = TestServer(app)
    await server.start_server(access_log_class=RequestLogger)  # as `pqf-bot serve` runs it
    client = TestClient(server)
    await client.start_server()
    try:
        assert (await client.get("/reports?t=SIGNED.TOKEN.secret")).status == 200
    finally:
        await client.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert len(lines) == 1
    assert lines[0].startswith("GET /reports 200 ")
    assert "SIGNED" not in caplog.text
