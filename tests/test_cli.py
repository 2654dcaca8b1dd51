"""The `pqf-bot` command line, run in-process as an administrator would run it."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from sqlmodel import select

from admin.cli import main
from storage import roster
from storage.database import Database
from storage.models import AuditRequest, OutboxMessage, OutboxStatus
from tests.conftest import ROOT
from tests.fake_connector import FakeConnector

COMMANDS = ["serve", "migrate", "import-staff", "import-cases", "framework", "request", "demo-data"]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty folder (no .env) with a fresh SQLite database."""
    monkeypatch.chdir(tmp_path)
    for name in ("PQF_ENVIRONMENT", "PQF_FRAMEWORK_FILE", "MICROSOFT_APP_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/pqf.db")
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_explains_itself(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert f"pqf-bot {command}" in out
    assert len(out) > 150


def test_help_lists_every_command_in_its_order(capsys: pytest.CaptureFixture[str]) -> None:
    # The commands come from several modules (admin/*.py); the listing keeps its order.
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    listed = re.findall(r"^    ([a-z-]+)", capsys.readouterr().out, flags=re.MULTILINE)
    assert listed == [
        "serve", "migrate", "import-staff", "import-cases", "roster", "reach", "framework", "request",
        "calendar", "dispatch", "run-jobs", "outbox", "report", "actions", "import-audits",
        "audit-export", "board-pack", "purge", "access-log", "export-person", "check-config", "backup", "package", "demo-data",
    ]  # fmt: skip


def test_unknown_command_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["delete-everything"])
    assert exited.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_migrate_import_and_framework(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "migrate")[1].startswith("Migrated the database from empty")
    assert "up to date" in run(capsys, "migrate")[1]
    status, out, _ = run(capsys, "import-staff", str(ROOT / "examples" / "staff.csv"))
    assert status == 0
    assert "6 people added, 0 updated, 0 unchanged" in out
    status, out, _ = run(capsys, "import-staff", str(ROOT / "examples" / "staff.csv"))
    assert "0 people added, 0 updated, 6 unchanged" in out
    status, out, _ = run(capsys, "import-cases", str(ROOT / "examples" / "cases.csv"))
    assert status == 0
    assert "4 cases added" in out

    status, out, _ = run(capsys, "framework", "--json")
    data = json.loads(out)
    assert [len(s["criteria"]) for s in data["standards"]] == [5, 7, 8, 5, 7, 6, 8, 7, 7, 6]
    assert data["timetable"][0] == {
        "month": 9,
        "month_name": "September",
        "standard": 1,
        "practitioner_kind": "self",
    }
    assert {"code": "PDAP", "monthly_audits": 6}.items() <= data["roles"][4].items()
    status, out, _ = run(capsys, "framework")
    assert "Standard 3: Strengths-based assessments" in out
    assert "PDAP  6" in out


def test_a_bad_file_imports_nothing_and_says_why(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "migrate")
    bad = workdir / "staff.csv"
    bad.write_text("email,name,role,team\nok@example.com,Ok,SW,T\nnope,No,XX,T\n", encoding="utf-8")
    status, _, err = run(capsys, "import-staff", str(bad))
    assert status == 1
    assert "nothing imported" in err
    assert "line 3: email 'nope' is not an email address" in err
    assert "line 3: role 'XX' is not one of" in err
    status, _, err = run(capsys, "import-cases", str(workdir / "missing.csv"))
    assert status == 1
    assert "cannot read the file" in err
    status, _, err = run(capsys, "import-cases", str(ROOT / "examples" / "staff.csv"))
    assert status == 1
    assert "missing required columns: case_reference, status" in err


def test_demo_data_is_idempotent_and_writes_the_playground_config(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "migrate")
    status, out, _ = run(
        capsys, "demo-data", "--playground-config", "pg.yml", "--as", "meganb@example.com"
    )
    assert status == 0
    assert "Demo roster: 15 added" in out
    config = yaml.safe_load((workdir / "pg.yml").read_text())
    assert config["currentUser"]["email"] == "meganb@example.com"
    assert len(config["users"]) == 5
    status, out, _ = run(capsys, "demo-data")
    assert "Audit requests created: 0" in out
    status, _, err = run(
        capsys, "demo-data", "--playground-config", "x.yml", "--as", "stranger@example.com"
    )
    assert status == 1
    assert "not a playground user" in err


def test_request_without_the_app_installed_is_kept_for_later(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "migrate")
    run(capsys, "demo-data")
    status, out, _ = run(capsys, "request", "--staff", "sam.green@example.com", "--standard", "2")
    assert status == 0
    assert "Created audit request" in out
    assert "self-audit" in out
    assert "has not installed the bot" in out
    for args, message in [
        (["--staff", "nobody@example.com", "--standard", "2"], "is not on the roster"),
        (["--staff", "sam.green@example.com", "--standard", "12"], "there is no standard 12"),
        (
            [
                "--staff",
                "sam.green@example.com",
                "--standard",
                "2",
                "--kind",
                "self",
                "--subject",
                "alexw@example.com",
            ],
            "a self-audit is of the auditor's own work",
        ),
        (
            ["--staff", "meganb@example.com", "--standard", "3", "--case", "NOPE1"],
            "case NOPE1 is not on the case list",
        ),
    ]:
        status, _, err = run(capsys, "request", *args)
        assert status == 1
        assert message in err
    with pytest.raises(SystemExit):
        main(["request", "--staff", "x@example.com", "--standard", "zero"])


@pytest.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    fake = await FakeConnector().start()
    yield fake
    await fake.close()


async def test_request_is_sent_to_an_installed_persons_chat(
    workdir: Path, capsys: pytest.CaptureFixture[str], connector: FakeConnector
) -> None:
    assert await asyncio.to_thread(main, ["migrate"]) == 0
    assert await asyncio.to_thread(main, ["demo-data"]) == 0
    database = Database(f"sqlite:///{workdir}/pqf.db")
    async with database.session() as session:
        await roster.remember_conversation(
            session=session,
            aad_object_id="00000000-0000-0000-0000-0000000000021",
            reference=roster.ChatReference(
                channel_id="msteams", service_url=connector.url,
                conversation_id="a:megan", tenant_id="t",
                teams_user_id="29:megan", bot_id="28:bot",
            ),
        )  # fmt: skip
    capsys.readouterr()
    status = await asyncio.to_thread(
        main, ["request", "--staff", "meganb@example.com", "--standard", "4", "--month", "2027-01"]
    )
    out = capsys.readouterr().out
    assert status == 0
    assert "Sent the request card to meganb@example.com" in out
    assert "due 2027-01-29" in out
    card = connector.cards()[-1]
    assert "Your case audit: Standard 4: Working with risk" in json.dumps(card)
    assert connector.calls[-1].conversation_id == "a:megan"
    async with database.session() as session:
        audit = (await session.exec(select(AuditRequest).where(AuditRequest.standard == 4))).one()
        message = (
            await session.exec(select(OutboxMessage).where(OutboxMessage.audit_id == audit.id))
        ).one()
    await database.dispose()
    assert message.status == OutboxStatus.SENT
    assert message.sent_activity_id is not None


def test_dispatch_names_people_and_cases_and_the_outbox_who_cannot_be_reached(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "migrate")
    assert run(capsys, "import-staff", str(ROOT / "examples" / "staff.csv"))[0] == 0
    assert run(capsys, "import-cases", str(ROOT / "examples" / "cases.csv"))[0] == 0
    status, out, _ = run(capsys, "dispatch", "--month", "2026-11", "--dry-run", "--seed", "s")
    assert status == 0
    first, *planned, totals = out.splitlines()
    assert first == "Dry run for 2026-11 (seed s); nothing was changed."
    assert totals.startswith("Requests: ")
    person = r"[^<>]+ <[^<>\s]+@somerset\.example>"
    what = rf"standard \d+ \w+ audit of (case \d+|work of {person}|own case)"
    for line in planned:
        assert re.fullmatch(rf"  {person}: ({what}|skipped \(.+\))", line), line
    assert any(re.search(r" audit of case \d+$", line) for line in planned)
    assert run(capsys, "outbox")[1] == (
        "Outbox in all: 0 sent, 0 pending, 0 retrying, 0 undeliverable.\n"
    )

    assert run(capsys, "dispatch", "--month", "2026-11", "--seed", "s")[0] == 0
    with sqlite3.connect(workdir / "pqf.db") as db:
        message_id, recipient_id = db.execute(
            "SELECT id, recipient_id FROM outbox_message ORDER BY id"
        ).fetchone()
        db.execute(
            "UPDATE outbox_message SET status = ?, last_error = ? WHERE id = ?",
            (OutboxStatus.UNDELIVERABLE.value, "Teams refused it (403)", message_id),
        )
        (email,) = db.execute("SELECT email FROM staff WHERE id = ?", (recipient_id,)).fetchone()
    db.close()
    report = json.loads(run(capsys, "outbox", "--month", "2026-11", "--json")[1])
    assert report["purposes"] == ["audit_request"]
    assert report["undeliverable"] == 1
    assert report["unreachable"] == [{"email": email, "reason": "Teams refused it (403)"}]
    out = run(capsys, "outbox", "--month", "2026-11")[1]
    assert out.endswith(f"undeliverable.\n  cannot reach {email}: Teams refused it (403)\n")
    assert json.loads(run(capsys, "outbox", "--month", "2026-10", "--json")[1])["purposes"] == []


def test_learning_actions_are_logged_listed_and_closed(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "migrate")
    assert run(
        capsys, "actions", "add", "--theme", "3", "--action", "Refresh MCA training",
        "--owner", "Jo Morgan", "--due", "2027-01-29", "--logged", "2026-11-02",
    )[:2] == (0, "Logged action 1.\n")  # fmt: skip
    assert run(capsys, "actions", "list")[1] == (
        "   1  [open] 3: Refresh MCA training (Jo Morgan, due 2027-01-29)\n"
    )
    assert run(capsys, "actions", "update", "1", "--status", "closed")[1] == (
        "Updated action 1: closed.\n"
    )
    assert run(capsys, "actions", "list")[1] == "No learning actions.\n"
    listed = json.loads(run(capsys, "actions", "list", "--all", "--json")[1])
    # The fields in the table's order, whatever order the database driver set them in.
    assert list(listed[0]) == [
        "id", "theme", "action", "owner", "due_on", "status", "logged_on", "closed_on",
        "updated_at",
    ]  # fmt: skip
    assert (listed[0]["status"], listed[0]["due_on"]) == ("closed", "2027-01-29")
    status, _, err = run(capsys, "actions", "update", "7", "--status", "done")
    assert status == 1
    assert err == "pqf-bot: there is no learning action 7\n"


def test_serve_refuses_an_unmigrated_database(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(capsys, "serve")
    assert status == 2
    assert "run `pqf-bot migrate` first" in err


def test_bad_settings_and_framework_stop_every_command(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PQF_ENVIRONMENT", "production")
    status, _, err = run(capsys, "migrate")
    assert status == 2
    assert "MICROSOFT_APP_ID" in err
    monkeypatch.setenv("PQF_ENVIRONMENT", "development")
    broken = workdir / "framework.yaml"
    shutil.copy(ROOT / "practice" / "framework.yaml", broken)
    broken.write_text(broken.read_text().replace('id: "3.2"', 'id: "3.1"'))
    monkeypatch.setenv("PQF_FRAMEWORK_FILE", str(broken))
    status, _, err = run(capsys, "framework")
    assert status == 2
    assert str(broken) in err
    assert "standards[2]: criteria[1].id '3.1' is used twice" in err


def test_an_unreachable_database_is_named_without_its_password(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://pqf:hunter2@127.0.0.1:1/pqf")
    status, _, err = run(capsys, "migrate")
    assert status == 2
    assert "cannot use the database at postgresql://pqf:***@127.0.0.1:1/pqf" in err
    assert "hunter2" not in err


def test_migrate_creates_the_sqlite_folder(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "sqlite:///nested/folder/pqf.db")
    status, _, _ = run(capsys, "migrate")
    assert status == 0
    assert (workdir / "nested" / "folder" / "pqf.db").exists()
