"""Importing completed audits from the earlier forms, and the report they give."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import func, select

from admin.cli import main
from practice.framework import Framework
from practice.report import build_report
from storage.audit_import import import_audits
from storage.csv_import import import_staff, read_csv_file
from storage.database import Database
from storage.models import AuditRequest, CaseRecord, CriterionRating, FeedbackCall
from storage.reporting import report_facts
from tests.conftest import ROOT

HEADER = "month,standard,kind,auditor_email,audited_worker_email,team,case_reference,feedback,feedback_for_report,1.1,1.2,2.1\n"
STAFF = "email,name,role,team\na@example.com,A,SVM,Mendip\nw@example.com,W,SW,Mendip\n"


async def seeded(database: Database, framework: Framework) -> None:
    async with database.session() as session:
        assert (await import_staff(session=session, framework=framework, text=STAFF)).ok


async def count(database: Database, model: type) -> int:
    async with database.session() as session:
        return int((await session.exec(select(func.count()).select_from(model))).one())


async def test_good_file_imports_and_reimport_replaces(
    database: Database, framework: Framework
) -> None:
    await seeded(database, framework)
    text = HEADER + (
        "2023-09,1,sampled,a@example.com,w@example.com,Mendip,1000001,Very kind,yes,Meets,Below,\n"
        "2023-09,1,self,w@example.com,w@example.com,Mendip,1000002,,,N/A,,\n"
        "2023-10,2,peer,a@example.com,,Mendip,,,,,,exceeds\n"
    )
    async with database.session() as session:
        result = await import_audits(session=session, framework=framework, text=text)
    assert result.errors == []
    assert (result.created, result.updated) == (3, 0)
    assert await count(database, AuditRequest) == 3
    assert await count(database, CriterionRating) == 4
    changed = text.replace("Meets,Below", "Exceeds,Below")
    async with database.session() as session:
        again = await import_audits(session=session, framework=framework, text=changed)
    assert (again.created, again.updated) == (0, 3)
    assert await count(database, AuditRequest) == 3
    async with database.session() as session:
        ratings = {
            (r.audit_id, r.criterion_id): r.rating
            for r in await session.exec(select(CriterionRating))
        }
        assert sorted(ratings.values(), key=str) == [
            "below",
            "exceeds",
            "exceeds",
            "not_applicable",
        ]
        audit = (
            await session.exec(select(AuditRequest).where(AuditRequest.case_id.is_not(None)))
        ).first()  # type: ignore[union-attr]
        assert audit is not None
        assert audit.source == "import"
        assert audit.status == "submitted"
        case = await session.get(CaseRecord, audit.case_id)
        assert case is not None
        assert case.status == "closed"  # never drawn for a new audit
        feedback = (await session.exec(select(FeedbackCall))).one()
        assert feedback.suitable_for_report is True
        assert feedback.what_they_said == "Very kind"


async def test_every_bad_row_is_reported_and_nothing_imported(
    database: Database, framework: Framework
) -> None:
    await seeded(database, framework)
    text = HEADER + (
        "2023-09,1,sampled,a@example.com,,Mendip,1000001,,,Meets,,\n"  # line 2 fine
        "2023-13,1,sampled,a@example.com,,Mendip,,,,Meets,,\n"  # 3 bad month
        "2023-09,11,sampled,a@example.com,,Mendip,,,,Meets,,\n"  # 4 bad standard
        "2023-09,1,sampled,nobody@example.com,,Mendip,,,,Meets,,\n"  # 5 unknown auditor
        "2023-09,1,casual,a@example.com,,Mendip,,,,Meets,,\n"  # 6 bad kind
        "2023-09,1,sampled,a@example.com,,Mendip,,,,Great,,\n"  # 7 bad rating
        "2023-09,1,sampled,a@example.com,,Mendip,,,,,,Meets\n"  # 8 another standard's criterion
        "2023-09,1,sampled,a@example.com,,Mendip,,,,,,\n"  # 9 no ratings
        "2023-09,1,sampled,a@example.com,,Mendip,1000001,,,Below,,\n"  # 10 same audit as line 2
        "2023-09,1,sampled,a@example.com,,,John Smith,,maybe,Meets,,\n"  # 11 no team, a name, maybe
    )
    async with database.session() as session:
        result = await import_audits(session=session, framework=framework, text=text)
        await session.rollback()
    errors = "\n".join(result.errors)
    for expected in (
        "line 3: month '2023-13' is not a month like 2023-09",
        "line 4: standard '11' is not 1 to 10",
        "line 5: auditor_email 'nobody@example.com' is not on the roster",
        "line 6: kind 'casual' must be sampled, self or peer",
        "line 7: 1.1: 'Great' is not Below, Meets, Exceeds or N/A",
        "line 8: 2.1 is not a criterion of standard 1",
        "line 9: no ratings",
        "line 10: the same audit as line 2",
        "line 11: team is empty",
        "line 11: case_reference 'JOHN SMITH' is not a case reference",
        "line 11: feedback_for_report 'maybe' must be yes or no",
    ):
        assert expected in errors
    assert await count(database, AuditRequest) == 0
    async with database.session() as session:
        wrong = await import_audits(session=session, framework=framework, text="email,name\nx,y\n")
    assert "missing required columns: month, standard, auditor_email, team" in wrong.errors[0]


def test_the_example_reproduces_the_boards_september_2023_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/pqf.db")
    assert main(["migrate"]) == 0
    assert main(["import-staff", str(ROOT / "examples" / "history" / "staff.csv")]) == 0
    assert main(["import-audits", str(ROOT / "examples" / "history" / "audits-2023-09.csv")]) == 0
    assert main(["report", "--month", "2023-09", "--format", "json", "--out", "r.json"]) == 0
    assert main(["report", "--month", "2023-09", "--format", "html", "--out", "r.html"]) == 0
    assert "180 audits completed" in capsys.readouterr().out
    import json

    report = json.loads((tmp_path / "r.json").read_text())
    assert report["completed"]["total"] == 180
    published = {  # the Board's report for September 2023: Below, Meets, Exceeds, N/A
        "1.1": (4.5, 67.6, 25.1, 2.8), "1.2": (5.6, 67.2, 26.1, 1.1), "1.3": (4.4, 79.4, 14.4, 1.7),
        "1.4": (8.9, 67.8, 18.3, 5.0), "1.5": (7.2, 67.2, 22.2, 3.3),
    }  # fmt: skip
    for criterion in report["outcomes"][0]["criteria"]:
        p = criterion["percents"]
        assert (p["below"], p["meets"], p["exceeds"], p["not_applicable"]) == published[
            criterion["criterion_id"]
        ]
    page = (tmp_path / "r.html").read_text()
    assert "PQF Standard 1 – Working with people (Sept 2023)" in page
    assert "67.6%" in page
    assert "5%" in page


def test_read_errors_are_plain(tmp_path: Path) -> None:
    assert read_csv_file(tmp_path / "none.csv")[0] is None


async def _additional_flags(database: Database, framework: Framework) -> dict[int, bool]:
    async with database.session() as session:
        facts = await report_facts(
            session=session, framework=framework, zone=ZoneInfo("Europe/London"),
            first_month="2024-01", last_month="2024-01",
        )  # fmt: skip
    return {audit.standard: audit.additional for audit in facts.audits}


async def test_a_changed_timetable_does_not_relabel_past_months(
    database: Database, framework: Framework
) -> None:
    await seeded(database, framework)
    header = "month,standard,auditor_email,team,4.1,8.1\n"
    text = header + "2024-01,4,a@example.com,Mendip,Meets,\n2024-01,8,a@example.com,Mendip,,Below\n"
    async with database.session() as session:
        assert (await import_audits(session=session, framework=framework, text=text)).ok
    # January's timetabled standard is 4, so the imported standard 8 audit is additional...
    assert await _additional_flags(database, framework) == {4: False, 8: True}
    # ...and stays so after the timetable puts standard 8 in January.
    changed = framework.model_copy(
        update={
            "timetable": tuple(
                entry.model_copy(update={"standard": 8}) if entry.month == 1 else entry
                for entry in framework.timetable
            )
        }
    )
    assert await _additional_flags(database, changed) == {4: False, 8: True}


async def test_an_audit_whose_ratings_were_lost_counts_as_completed_only(
    database: Database, framework: Framework
) -> None:
    await seeded(database, framework)
    header = "month,standard,auditor_email,team,case_reference,ratings_lost,4.1,4.2\n"
    rows = [
        "2024-01,4,a@example.com,Mendip,1000001,,Meets,Below",
        "2024-01,4,a@example.com,Mendip,1000002,no,Exceeds,",
        "2024-01,4,a@example.com,Mendip,1000003,yes,,",  # counted, ratings lost
    ]
    async with database.session() as session:
        result = await import_audits(
            session=session, framework=framework, text=header + "\n".join(rows) + "\n"
        )
        assert result.errors == []
        facts = await report_facts(
            session=session, framework=framework, zone=ZoneInfo("Europe/London"),
            first_month="2024-01", last_month="2024-01",
        )  # fmt: skip
    report = build_report(
        framework, first_month="2024-01", last_month="2024-01", audits=facts.audits
    )
    # As the Board's January 2024 report: counted 3 in "audits completed", tables from 2.
    assert [(row.standard, row.completed) for row in report.completed] == [(4, 3)]
    assert report.tables[0].audits == 2
    by_id = {row.criterion_id: row for row in report.tables[0].criteria}
    assert (by_id["4.1"].answered, by_id["4.2"].answered) == (2, 1)
    assert report.completion_by_team == []  # imported: completion is not known


async def test_ratings_lost_must_be_said_and_must_mean_no_ratings(
    database: Database, framework: Framework
) -> None:
    await seeded(database, framework)
    header = "month,standard,auditor_email,team,case_reference,ratings_lost,4.1\n"
    text = header + (
        "2024-01,4,a@example.com,Mendip,1000001,,\n"
        "2024-01,4,a@example.com,Mendip,1000002,yes,Meets\n"
        "2024-01,4,a@example.com,Mendip,1000003,perhaps,\n"
    )
    async with database.session() as session:
        result = await import_audits(session=session, framework=framework, text=text)
    assert result.errors == [
        "line 2: no ratings: give at least one criterion's rating (or ratings_lost yes)",
        "line 3: ratings_lost is yes, so every rating column must be blank",
        "line 4: ratings_lost 'perhaps' must be yes or no",
    ]
    assert await count(database, AuditRequest) == 0


def test_an_unknown_team_is_an_error_not_an_empty_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/pqf.db")
    assert main(["migrate"]) == 0
    assert main(["import-staff", str(ROOT / "examples" / "history" / "staff.csv")]) == 0
    assert main(["import-audits", str(ROOT / "examples" / "history" / "audits-2023-09.csv")]) == 0
    capsys.readouterr()
    month = ["report", "--month", "2023-09", "--format", "json", "--out", "r.json"]
    assert main([*month, "--team", "Mendip Adult Social Care"]) == 2
    assert "team 'Mendip Adult Social Care' is not a team" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()
    assert main([*month, "--team", "Mendip Adult Social Care Team"]) == 0
