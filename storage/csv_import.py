"""Import the staff roster and the case list from CSV files.

Every row is checked before anything is written. A file with any bad row imports nothing,
and the result lists every bad row with its line number. Importing the same file again
updates the existing people and cases (matched by email address and case reference); it
never creates duplicates.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from practice.answers import is_case_reference
from practice.framework import Framework
from practice.text import EMAIL, unwanted_character
from storage.models import CaseRecord, CaseStatus, Staff, utc_now
from storage.progress import Progress, no_progress

STAFF_COLUMNS = (
    "email", "name", "role", "team", "supervisor_email", "aad_object_id", "active",
    "on_leave_until",
)  # fmt: skip
STAFF_REQUIRED = ("email", "name", "role", "team")
CASE_COLUMNS = ("case_reference", "team", "allocated_worker_email", "status", "closed_on")
CASE_REQUIRED = ("case_reference", "team", "status")

GUID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12,13}$"
)
YES = {"yes", "y", "true", "1"}
NO = {"no", "n", "false", "0"}
MAX_FILE_BYTES = 20 * 1024 * 1024


@dataclass
class ImportResult:
    """What an import did, or why it did nothing."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Return whether the file was imported."""
        return not self.errors

    def sort_errors(self) -> ImportResult:
        """Put the problems in line order."""
        self.errors.sort(key=_line_number)
        return self


def _line_number(error: str) -> int:
    match = re.match(r"line (\d+):", error)
    return int(match.group(1)) if match else 0


@dataclass(frozen=True)
class _Row:
    line: int
    values: dict[str, str]
    # Where a row came from, in problems about it: its line in a file, unless named otherwise.
    label: str = ""

    @property
    def where(self) -> str:
        return self.label or f"line {self.line}"


def _unwanted_characters(row: _Row, free_text: tuple[str, ...] = ()) -> list[str]:
    """Return a problem for each value holding a character a roster or case list must not have."""
    return [
        f"{row.where}: {name} contains {problem}; remove it and import again"
        for name, value in row.values.items()
        if (problem := unwanted_character(value, one_line=name not in free_text))
    ]


def _read_rows(
    text: str,
    columns: tuple[str, ...],
    required: tuple[str, ...],
    errors: list[str],
    *,
    free_text: tuple[str, ...] = (),
) -> list[_Row]:
    """Return the file's rows, or none with the problems in `errors`.

    A value holding a control character is a problem on its line (PostgreSQL cannot store
    NUL at all); so are invisible characters and line breaks, except in `free_text` columns.
    """
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        errors.append("the file is empty: expected a header line naming the columns")
        return []
    except csv.Error as error:
        errors.append(f"line 1: not readable as CSV ({error})")
        return []
    names = [h.strip().lower() for h in header]
    missing = [c for c in required if c not in names]
    unknown = [h for h in names if h not in columns]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if missing:
        errors.append(f"line 1: missing required columns: {', '.join(missing)}")
    if unknown:
        errors.append(
            f"line 1: unknown columns: {', '.join(unknown)} (expected: {', '.join(columns)})"
        )
    if duplicated:
        errors.append(f"line 1: columns named twice: {', '.join(duplicated)}")
    if errors:
        return []
    rows: list[_Row] = []
    try:
        for record in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            if len(record) != len(names):
                errors.append(f"line {line}: expected {len(names)} values, found {len(record)}")
                continue
            row = _Row(line, {n: v.strip() for n, v in zip(names, record, strict=True)})
            unwanted = _unwanted_characters(row, free_text)
            if unwanted:
                errors.extend(unwanted)
                continue
            rows.append(row)
    except csv.Error as error:
        errors.append(f"line {reader.line_num}: not readable as CSV ({error})")
    if not rows and not errors:
        errors.append("the file has a header but no rows")
    return rows


def read_csv_file(path: Path) -> tuple[str | None, str | None]:
    """Return (text, None), or (None, problem) if the file cannot be read as UTF-8 text."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None, f"{path}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MB"
        data = path.read_bytes()
    except OSError as error:
        return None, f"{path}: cannot read the file ({error.strerror})"
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        return None, f"{path}: not UTF-8 text (save it from Excel as 'CSV UTF-8')"


def _duplicates(rows: Iterable[_Row], column: str) -> Iterator[str]:
    first_seen: dict[str, str] = {}
    for row in rows:
        key = row.values.get(column, "").lower()
        if not key:
            continue
        if key in first_seen:
            yield f"{row.where}: {column} {row.values[column]!r} repeats {first_seen[key]}"
        else:
            first_seen[key] = row.where


def _supervisor_cycles(rows: list[_Row], existing: dict[str, Staff]) -> Iterator[str]:
    """Yield a problem for each row whose chain of supervisors, after the import, loops."""
    emails_by_id = {s.id: email for email, s in existing.items()}
    supervisor_of = {
        email: emails_by_id.get(s.supervisor_id) for email, s in existing.items()
    }  # fmt: skip
    for row in rows:
        supervisor_of[row.values["email"].lower()] = (
            row.values.get("supervisor_email", "").lower() or None
        )
    for row in rows:
        start = row.values["email"].lower()
        chain = [start]
        current = supervisor_of.get(start)
        while current is not None and current not in chain:
            chain.append(current)
            current = supervisor_of.get(current)
        if current == start and len(chain) > 1:
            yield (
                f"{row.where}: supervisors would go round in a circle: "
                + " → ".join([*chain, start])
            )


def _parse_day(value: str) -> date | bool | None:
    """Return the date, None when empty, or False when it is not a date."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return False


def _parse_active(value: str) -> bool | None:
    lowered = value.lower()
    if lowered == "" or lowered in YES:
        return True
    if lowered in NO:
        return False
    return None


async def import_staff(
    *, session: AsyncSession, framework: Framework, text: str, progress: Progress = no_progress
) -> ImportResult:
    """Create or update members of staff from roster CSV text; all rows or none."""
    result = ImportResult()
    rows = _read_rows(text, STAFF_COLUMNS, STAFF_REQUIRED, result.errors)
    if not rows:
        return result
    return await _save_staff(
        session=session, framework=framework, rows=rows, result=result, progress=progress
    )


async def save_staff_rows(
    *,
    session: AsyncSession,
    framework: Framework,
    rows: Sequence[tuple[str, dict[str, str]]],
    progress: Progress = no_progress,
) -> ImportResult:
    """Create or update members of staff from (where, values) rows; all rows or none."""
    # Each row's values are named by STAFF_COLUMNS and go through a roster file's checks;
    # `where` names the row in problems (e.g. "user <object id>" for Microsoft Graph).
    result = ImportResult()
    read = [
        _Row(0, {c: values.get(c, "").strip() for c in STAFF_COLUMNS}, where)
        for where, values in rows
    ]
    for row in read:
        result.errors.extend(_unwanted_characters(row))
    if result.errors or not read:
        return result
    return await _save_staff(
        session=session, framework=framework, rows=read, result=result, progress=progress
    )


async def _save_staff(
    *,
    session: AsyncSession,
    framework: Framework,
    rows: list[_Row],
    result: ImportResult,
    progress: Progress,
) -> ImportResult:
    result.errors.extend(_duplicates(rows, "email"))
    result.errors.extend(_duplicates(rows, "aad_object_id"))

    existing = {s.email: s for s in await session.exec(select(Staff))}
    emails_in_file = {r.values["email"].lower() for r in rows}
    role_codes = [r.code for r in framework.roles]
    for checked, row in enumerate(rows, 1):
        progress("checking staff", checked, len(rows))
        v = row.values
        where = row.where
        if not EMAIL.match(v["email"]):
            result.errors.append(
                f"{where}: email {v['email']!r} is not an email address like "
                "name.surname@somerset.gov.uk"
            )
        if not v["name"]:
            result.errors.append(f"{where}: name is empty")
        elif len(v["name"]) > 200:
            result.errors.append(f"{where}: name is longer than 200 characters")
        if v["role"].upper() not in role_codes:
            result.errors.append(
                f"{where}: role {v['role']!r} is not one of {', '.join(role_codes)}"
            )
        if not v["team"]:
            result.errors.append(f"{where}: team is empty")
        elif len(v["team"]) > 120:
            result.errors.append(f"{where}: team is longer than 120 characters")
        supervisor = v.get("supervisor_email", "").lower()
        if supervisor:
            if supervisor == v["email"].lower():
                result.errors.append(f"{where}: a person cannot be their own supervisor")
            elif supervisor not in emails_in_file and supervisor not in existing:
                result.errors.append(
                    f"{where}: supervisor_email {supervisor!r} is not in this file or the roster"
                )
        aad = v.get("aad_object_id", "")
        if aad and not GUID.match(aad):
            result.errors.append(f"{where}: aad_object_id {aad!r} is not an object id (a GUID)")
        if _parse_active(v.get("active", "")) is None:
            result.errors.append(f"{where}: active {v['active']!r} must be yes or no")
        if _parse_day(v.get("on_leave_until", "")) is False:
            result.errors.append(
                f"{where}: on_leave_until {v['on_leave_until']!r} is not a date like 2024-03-31"
            )

    result.errors.extend(_supervisor_cycles(rows, existing))

    # An object id may already belong to someone else on the roster who is not in the file.
    aad_owner = {s.aad_object_id: s.email for s in existing.values() if s.aad_object_id}
    for row in rows:
        aad = row.values.get("aad_object_id", "").lower()
        owner = aad_owner.get(aad)
        if aad and owner and owner != row.values["email"].lower() and owner not in emails_in_file:
            result.errors.append(
                f"{row.where}: aad_object_id {aad!r} already belongs to {owner} on the roster"
            )
    if result.errors:
        return result.sort_errors()

    now = utc_now()
    by_email: dict[str, Staff] = dict(existing)
    # Let go of object ids that move to someone else in this file before giving them out,
    # so the unique index never sees one id on two people mid-import.
    released = False
    for row in rows:
        person = by_email.get(row.values["email"].lower())
        new_aad = row.values.get("aad_object_id", "").lower() or None
        if person is not None and person.aad_object_id and person.aad_object_id != new_aad:
            person.aad_object_id = None
            session.add(person)
            released = True
    if released:
        await session.flush()
    for saved, row in enumerate(rows, 1):
        progress("saving staff", saved, len(rows))
        v = row.values
        email = v["email"].lower()
        fields: dict[str, object] = {
            "name": v["name"],
            "role_code": v["role"].upper(),
            "team": v["team"],
            "aad_object_id": v.get("aad_object_id", "").lower() or None,
            "active": bool(_parse_active(v.get("active", ""))),
            "on_leave_until": _parse_day(v.get("on_leave_until", "")) or None,
        }
        person = by_email.get(email)
        if person is None:
            person = Staff.model_validate({"email": email, **fields})
            by_email[email] = person
            result.created += 1
        elif any(getattr(person, k) != val for k, val in fields.items()):
            for key, value in fields.items():
                setattr(person, key, value)
            person.updated_at = now
            result.updated += 1
        else:
            result.unchanged += 1
        session.add(person)
    await session.flush()

    for row in rows:
        person = by_email[row.values["email"].lower()]
        supervisor_email = row.values.get("supervisor_email", "").lower()
        supervisor_id = by_email[supervisor_email].id if supervisor_email else None
        if person.supervisor_id != supervisor_id:
            person.supervisor_id = supervisor_id
            person.updated_at = now
            session.add(person)
    await session.flush()
    return result


async def import_cases(
    *, session: AsyncSession, text: str, progress: Progress = no_progress
) -> ImportResult:
    """Create or update cases from case-list CSV text; all rows or none."""
    result = ImportResult()
    rows = _read_rows(text, CASE_COLUMNS, CASE_REQUIRED, result.errors)
    if not rows:
        return result
    result.errors.extend(_duplicates(rows, "case_reference"))

    staff_by_email = {s.email: s for s in await session.exec(select(Staff))}
    parsed: list[tuple[_Row, date | None]] = []
    for checked, row in enumerate(rows, 1):
        progress("checking cases", checked, len(rows))
        v = row.values
        where = f"line {row.line}"
        if not is_case_reference(v["case_reference"]):
            result.errors.append(
                f"{where}: case_reference {v['case_reference']!r} must be 1-40 letters, digits, "
                "'-', '/' or '_' (a reference only, never a name)"
            )
        if not v["team"]:
            result.errors.append(f"{where}: team is empty")
        elif len(v["team"]) > 120:
            result.errors.append(f"{where}: team is longer than 120 characters")
        worker = v.get("allocated_worker_email", "").lower()
        if worker and worker not in staff_by_email:
            result.errors.append(
                f"{where}: allocated_worker_email {worker!r} is not on the roster "
                "(import the staff file first)"
            )
        status = v["status"].lower()
        closed_on: date | None = None
        if status not in (CaseStatus.OPEN, CaseStatus.CLOSED):
            result.errors.append(f"{where}: status {v['status']!r} must be open or closed")
        closed_text = v.get("closed_on", "")
        if closed_text:
            try:
                closed_on = date.fromisoformat(closed_text)
            except ValueError:
                result.errors.append(
                    f"{where}: closed_on {closed_text!r} is not a date like 2024-03-31"
                )
        if status == CaseStatus.CLOSED and not closed_text:
            result.errors.append(f"{where}: a closed case needs its closed_on date")
        if status == CaseStatus.OPEN and closed_text:
            result.errors.append(f"{where}: an open case cannot have a closed_on date")
        parsed.append((row, closed_on))
    if result.errors:
        return result.sort_errors()

    references = [r.values["case_reference"].upper() for r in rows]
    existing = {
        c.reference: c
        for c in await session.exec(
            select(CaseRecord).where(col(CaseRecord.reference).in_(references))
        )
    }
    now = utc_now()
    for saved, (row, closed_on) in enumerate(parsed, 1):
        progress("saving cases", saved, len(parsed))
        v = row.values
        reference = v["case_reference"].upper()
        worker_email = v.get("allocated_worker_email", "").lower()
        fields: dict[str, object] = {
            "team": v["team"],
            "allocated_worker_id": staff_by_email[worker_email].id if worker_email else None,
            "status": v["status"].lower(),
            "closed_on": closed_on,
        }
        case = existing.get(reference)
        if case is None:
            session.add(CaseRecord.model_validate({"reference": reference, **fields}))
            result.created += 1
        elif any(getattr(case, k) != val for k, val in fields.items()):
            for key, value in fields.items():
                setattr(case, key, value)
            case.added_by_auditor = False
            case.updated_at = now
            session.add(case)
            result.updated += 1
        else:
            result.unchanged += 1
    await session.flush()
    return result
