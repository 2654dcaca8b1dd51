"""Importing completed audits from the earlier forms, and the report they give."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import func, select

from admin.cli import main
from practice.framework import Framework
from storage.audit_import import import_audits
from storage.csv_import import import_staff, read_csv_file
from storage.database import Database
from storage.models import AuditRequest, CaseRecord, CriterionRating, FeedbackCall
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
