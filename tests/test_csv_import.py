"""Importing the roster and the case list: every bad row reported, all or nothing, no duplicates."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import func, select

from admin.demo_data import cases_csv, staff_csv
from practice.framework import Framework
from storage.csv_import import import_cases, import_staff, read_csv_file
from storage.database import Database
from storage.models import CaseRecord, Staff
from tests.conftest import ROOT, TODAY

STAFF_HEADER = "email,name,role,team,supervisor_email,aad_object_id,active\n"
CASE_HEADER = "case_reference,team,allocated_worker_email,status,closed_on\n"


async def _count(database: Database, model: type) -> int:
    async with database.session() as session:
        return (await session.exec(select(func.count()).select_from(model))).one()


async def test_example_files_import(database: Database, framework: Framework) -> None:
    staff_text, _ = read_csv_file(ROOT / "examples" / "staff.csv")
    cases_text, _ = read_csv_file(ROOT / "examples" / "cases.csv")
    assert staff_text is not None
    assert cases_text is not None
    async with database.session() as session:
        staff = await import_staff(session=session, framework=framework, text=staff_text)
        assert staff.errors == []
        cases = await import_cases(session=session, text=cases_text)
        assert cases.errors == []
    assert (staff.created, cases.created) == (6, 4)
    async with database.session() as session:
        amira = (
            await session.exec(select(Staff).where(Staff.email == "amira.khan@somerset.example"))
        ).one()
        chris = (
            await session.exec(select(Staff).where(Staff.email == "chris.hall@somerset.example"))
        ).one()
        assert amira.supervisor_id == chris.id
        assert amira.aad_object_id == "6f0c2a4e-1b7d-4c39-9e55-0a8a9c1d2e03"
        ravi = (
            await session.exec(select(Staff).where(Staff.email == "ravi.nair@somerset.example"))
        ).one()
        assert ravi.active is False
        assert ravi.aad_object_id is None
        unallocated = (
            await session.exec(select(CaseRecord).where(CaseRecord.reference == "2035990"))
        ).one()
        assert unallocated.allocated_worker_id is None


async def test_reimport_updates_and_never_duplicates(
    database: Database, framework: Framework
) -> None:
    async with database.session() as session:
        await import_staff(session=session, framework=framework, text=staff_csv())
        await import_cases(session=session, text=cases_csv(TODAY))
    people, cases = await _count(database, Staff), await _count(database, CaseRecord)
    changed = staff_csv().replace("Alex Wilber,SW", "Alex Wilber-Jones,SW")
    async with database.session() as session:
        again = await import_staff(session=session, framework=framework, text=changed)
        case_again = await import_cases(session=session, text=cases_csv(TODAY))
    assert (again.created, again.updated, again.unchanged) == (0, 1, people - 1)
    assert (case_again.created, case_again.updated) == (0, 0)
    assert await _count(database, Staff) == people
    assert await _count(database, CaseRecord) == cases
    async with database.session() as session:
        alex = (await session.exec(select(Staff).where(Staff.email == "alexw@example.com"))).one()
    assert alex.name == "Alex Wilber-Jones"


async def test_every_bad_staff_row_is_reported_and_nothing_imported(
    database: Database, framework: Framework
) -> None:
    text = STAFF_HEADER + (
        "good@example.com,Good Person,SW,Team A,,,yes\n"  # line 2: fine
        "not-an-email,Bad Email,SW,Team A,,,\n"  # line 3
        "x@example.com,,CHEF,,,,\n"  # line 4: no name, unknown role, no team
        "y@example.com,Y,SW,Team A,nobody@example.com,not-a-guid,perhaps\n"  # line 5
        "good@example.com,Again,SW,Team A,,,\n"  # line 6: repeats line 2
        "z@example.com,Z,SW,Team A,z@example.com,,\n"  # line 7: own supervisor
        "w@example.com,W,SW\n"  # line 8: too few values
    )
    async with database.session() as session:
        result = await import_staff(session=session, framework=framework, text=text)
        await session.rollback()
    lines = "\n".join(result.errors)
    assert not result.ok
    for expected in (
        "line 3: email 'not-an-email' is not an email address",
        "line 4: name is empty",
        "line 4: role 'CHEF' is not one of",
        "line 4: team is empty",
        "line 5: supervisor_email 'nobody@example.com' is not in this file or the roster",
        "line 5: aad_object_id 'not-a-guid' is not an object id",
        "line 5: active 'perhaps' must be yes or no",
        "line 6: email 'good@example.com' repeats line 2",
        "line 7: a person cannot be their own supervisor",
        "line 8: expected 7 values, found 3",
    ):
        assert expected in lines
    assert await _count(database, Staff) == 0


async def test_bad_headers_are_explained(database: Database, framework: Framework) -> None:
    async with database.session() as session:
        wrong = await import_staff(
            session=session, framework=framework, text="mail,name,colour\na,b,c\n"
        )
        empty = await import_staff(session=session, framework=framework, text="")
        only_header = await import_cases(session=session, text=CASE_HEADER)
        cases_as_staff = await import_staff(
            session=session, framework=framework, text=cases_csv(TODAY)
        )
    assert "missing required columns: email, role, team" in wrong.errors[0]
    assert "unknown columns: mail, colour" in wrong.errors[1]
    assert "the file is empty" in empty.errors[0]
    assert "no rows" in only_header.errors[0]
    assert "missing required columns" in cases_as_staff.errors[0]


async def test_every_bad_case_row_is_reported(database: Database, framework: Framework) -> None:
    async with database.session() as session:
        await import_staff(session=session, framework=framework, text=staff_csv())
    text = CASE_HEADER + (
        "1001,Team A,alexw@example.com,open,\n"
        "John Smith,Team A,,open,\n"  # a name, not a reference
        "1002,Team A,stranger@example.com,open,\n"
        "1003,Team A,,pending,\n"
        "1004,Team A,,closed,\n"
        "1005,Team A,,open,2024-01-01\n"
        "1006,Team A,,closed,31/01/2024\n"
        "1001,Team B,,open,\n"
    )
    async with database.session() as session:
        result = await import_cases(session=session, text=text)
        await session.rollback()
    lines = "\n".join(result.errors)
    for expected in (
        "line 3: case_reference 'John Smith' must be 1-40 letters",
        "line 4: allocated_worker_email 'stranger@example.com' is not on the roster",
        "line 5: status 'pending' must be open or closed",
        "line 6: a closed case needs its closed_on date",
        "line 7: an open case cannot have a closed_on date",
        "line 8: closed_on '31/01/2024' is not a date like 2024-03-31",
        "line 9: case_reference '1001' repeats line 2",
    ):
        assert expected in lines
    assert await _count(database, CaseRecord) == 0


async def test_object_ids_can_move_between_people(database: Database, framework: Framework) -> None:
    first = STAFF_HEADER + (
        "a@example.com,A,SW,T,,11111111-1111-1111-1111-111111111111,\n"
        "b@example.com,B,SW,T,,22222222-2222-2222-2222-222222222222,\n"
    )
    swapped = STAFF_HEADER + (
        "a@example.com,A,SW,T,,22222222-2222-2222-2222-222222222222,\n"
        "b@example.com,B,SW,T,,11111111-1111-1111-1111-111111111111,\n"
    )
    async with database.session() as session:
        assert (await import_staff(session=session, framework=framework, text=first)).ok
    async with database.session() as session:
        result = await import_staff(session=session, framework=framework, text=swapped)
    assert result.errors == []
    assert result.updated == 2
    clash = STAFF_HEADER + "c@example.com,C,SW,T,,22222222-2222-2222-2222-222222222222,\n"
    async with database.session() as session:
        refused = await import_staff(session=session, framework=framework, text=clash)
    assert "already belongs to a@example.com" in refused.errors[0]


def test_read_csv_file_problems(tmp_path: Path) -> None:
    missing, problem = read_csv_file(tmp_path / "nope.csv")
    assert missing is None
    assert problem is not None
    assert "cannot read" in problem
    latin = tmp_path / "latin.csv"
    latin.write_bytes("email\ncaf\xe9@example.com\n".encode("latin-1"))
    assert "not UTF-8" in (read_csv_file(latin)[1] or "")
    excel = tmp_path / "excel.csv"
    excel.write_bytes(b"\xef\xbb\xbfemail,name\n")
    assert read_csv_file(excel)[0] == "email,name\n"


async def test_leave_is_imported_and_checked(database: Database, framework: Framework) -> None:
    text = STAFF_HEADER.replace("active\n", "active,on_leave_until\n") + (
        "a@example.com,A,SW,T,,,yes,2026-12-04\n"
        "b@example.com,B,SW,T,,,yes,\n"
        "c@example.com,C,SW,T,,,yes,next week\n"
    )
    async with database.session() as session:
        bad = await import_staff(session=session, framework=framework, text=text)
        await session.rollback()
    assert bad.errors == ["line 4: on_leave_until 'next week' is not a date like 2024-03-31"]
    async with database.session() as session:
        good = await import_staff(
            session=session, framework=framework, text=text.rsplit("c@", 1)[0]
        )
    assert good.ok
    async with database.session() as session:
        a = (await session.exec(select(Staff).where(Staff.email == "a@example.com"))).one()
    assert str(a.on_leave_until) == "2026-12-04"


async def test_control_characters_odd_emails_and_supervisor_circles_import_nothing(
    database: Database, framework: Framework
) -> None:
    rows = [
        "ann@somerset.example,Ann\x00 Lee,SW,Mendip,,,",  # 2: NUL (PostgreSQL cannot store it)
        "ben@somerset.example,Ben Cole,SW,Mendip\x1b[31m,,,",  # 3: an escape sequence
        "cat\u200b@somerset.example,Cat Day,SW,Mendip,,,",  # 4: a zero-width space
        '"dan"@somerset.example,Dan Eve,SW,Mendip,,,',  # 5: quotes (read as dan@…: fine)
        '"""dan elm""@somerset.example",Dan Elm,SW,Mendip,,,',  # 6: a quoted local part
        "eve@somerset.example,Eve \u202eyaP,SW,Mendip,,,",  # 7: a right-to-left override
        "fay@somerset..example,Fay Gee,SW,Mendip,,,",  # 8: an empty domain label
        "gus@somerset.example,Gus Hay,SVM,Mendip,hal@somerset.example,,",  # 9: a circle
        "hal@somerset.example,Hal Ive,SM,Mendip,ivy@somerset.example,,",  # 10
        "ivy@somerset.example,Ivy Joy,DIR,Mendip,gus@somerset.example,,",  # 11
        "o'neill@somerset.example,Jo O'Neill,SW,Mendip,ivy@somerset.example,,",  # 12: fine
    ]
    text = STAFF_HEADER + "\n".join(rows) + "\n"
    async with database.session() as session:
        result = await import_staff(session=session, framework=framework, text=text)
    assert not result.ok
    assert await _count(database, Staff) == 0
    errors = "\n".join(result.errors)
    assert "line 2: name contains a control character (U+0000); remove it" in errors
    assert "line 3: team contains a control character (U+001B)" in errors
    assert (
        "line 4: email contains an invisible character or line break (U+200B ZERO WIDTH" in errors
    )
    assert "line 5:" not in errors
    assert "line 6: email '\"dan elm\"@somerset.example' is not an email address" in errors
    assert "line 7: name contains an invisible character or line break (U+202E" in errors
    assert "line 8: email 'fay@somerset..example' is not an email address" in errors
    for line in (9, 10, 11):
        assert f"line {line}: supervisors would go round in a circle" in errors
    assert (
        "gus@somerset.example → hal@somerset.example → ivy@somerset.example → gus@somerset.example"
    ) in errors
    assert "line 12" not in errors

    # A circle closed through people already on the roster is found too.
    first = STAFF_HEADER + "gus@somerset.example,Gus Hay,SVM,Mendip,,,\n"
    first += "hal@somerset.example,Hal Ive,SM,Mendip,gus@somerset.example,,\n"
    async with database.session() as session:
        assert (await import_staff(session=session, framework=framework, text=first)).ok
    closing = STAFF_HEADER + "gus@somerset.example,Gus Hay,SVM,Mendip,hal@somerset.example,,\n"
    async with database.session() as session:
        refused = await import_staff(session=session, framework=framework, text=closing)
    assert refused.errors == [
        "line 2: supervisors would go round in a circle: gus@somerset.example → "
        "hal@somerset.example → gus@somerset.example"
    ]


async def test_control_characters_in_the_case_list_name_their_line(database: Database) -> None:
    text = CASE_HEADER + "C-1,Mendip\x00,,open,\nC-2,Mendip,,open,\nC-3,Men\x7fdip,,open,\n"
    async with database.session() as session:
        result = await import_cases(session=session, text=text)
    assert result.errors == [
        "line 2: team contains a control character (U+0000); remove it and import again",
        "line 4: team contains a control character (U+007F); remove it and import again",
    ]
    assert await _count(database, CaseRecord) == 0
