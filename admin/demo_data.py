"""A demo roster and case list mapped onto the Agents Playground's six mock users.

Each mock user has a different role, so every part of the bot can be tried locally by
choosing whom the playground signs in as (`make run AS=meganb@example.com`). The data goes
in through the same CSV import an administrator uses.
"""

from __future__ import annotations

import csv
import io
import random
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import yaml
from sqlmodel.ext.asyncio.session import AsyncSession

from messages.requests import RequestError, request_audit
from practice.calendar import audits_in_month
from practice.dispatch import monthly_quota
from practice.framework import Framework
from storage import roster
from storage.csv_import import ImportResult, import_cases, import_staff
from storage.models import AuditRequest

PLAYGROUND_TENANT = "00000000-0000-0000-0000-0000000000001"
PLAYGROUND_BOT = {"id": "00000000-0000-0000-0000-00000000000011", "name": "PQF Audit Bot"}
DEMO_STANDARD_OUTSIDE_TIMETABLE = 3


@dataclass(frozen=True)
class DemoPerson:
    email: str
    name: str
    role: str
    team: str
    supervisor: str
    aad_object_id: str
    playground_id: str | None = None  # the playground's Teams user id, for its mock users

    @property
    def given_name(self) -> str:
        return self.name.split()[0]

    @property
    def surname(self) -> str:
        return self.name.split()[-1]


def _aad(n: int) -> str:
    # The playground's mock users have these object ids (13 digits in the last group).
    return f"00000000-0000-0000-0000-000000000002{n}"


def _made_up_aad(email: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, email))


MENDIP = "Mendip Adult Social Care Team"
SEDGEMOOR = "Sedgemoor Adult Social Care Team"
SOUTH = "South Somerset Adult Social Care Team"
TAUNTON_OT = "Taunton Occupational Therapy Team"

PEOPLE: tuple[DemoPerson, ...] = (
    DemoPerson(
        "lynner@example.com",
        "Lynne Robbins",
        "SM",
        "Adult Social Care Leadership",
        "",
        _aad(5),
        "user-id-5",
    ),
    DemoPerson(
        "meganb@example.com",
        "Megan Bowen",
        "SVM",
        MENDIP,
        "lynner@example.com",
        _aad(1),
        "user-id-1",
    ),
    DemoPerson(
        "alexw@example.com", "Alex Wilber", "SW", MENDIP, "meganb@example.com", _aad(0), "user-id-0"
    ),
    DemoPerson(
        "adelev@example.com",
        "Adele Vance",
        "OT",
        TAUNTON_OT,
        "meganb@example.com",
        _aad(2),
        "user-id-2",
    ),
    DemoPerson(
        "isaiahl@example.com",
        "Isaiah Langer",
        "PDAP",
        "Practice Development",
        "lynner@example.com",
        _aad(3),
        "user-id-3",
    ),
    DemoPerson(
        "pattif@example.com",
        "Patti Fernandez",
        "MOD",
        "Learning and Development",
        "lynner@example.com",
        _aad(4),
        "user-id-4",
    ),
    DemoPerson(
        "dana.reid@example.com",
        "Dana Reid",
        "DIR",
        "Adult Social Care Leadership",
        "",
        _made_up_aad("dana.reid@example.com"),
    ),
    DemoPerson(
        "jordan.price@example.com",
        "Jordan Price",
        "SVM",
        SEDGEMOOR,
        "lynner@example.com",
        _made_up_aad("jordan.price@example.com"),
    ),
    DemoPerson(
        "sam.green@example.com",
        "Sam Green",
        "SW",
        SEDGEMOOR,
        "jordan.price@example.com",
        _made_up_aad("sam.green@example.com"),
    ),
    DemoPerson(
        "priya.shah@example.com",
        "Priya Shah",
        "SW",
        SOUTH,
        "jordan.price@example.com",
        _made_up_aad("priya.shah@example.com"),
    ),
    DemoPerson(
        "tom.hale@example.com",
        "Tom Hale",
        "OT",
        SEDGEMOOR,
        "jordan.price@example.com",
        _made_up_aad("tom.hale@example.com"),
    ),
    DemoPerson(
        "ruth.evans@example.com",
        "Ruth Evans",
        "ASCP",
        MENDIP,
        "meganb@example.com",
        _made_up_aad("ruth.evans@example.com"),
    ),
    DemoPerson(
        "dev.patel@example.com",
        "Dev Patel",
        "ASCP",
        SEDGEMOOR,
        "jordan.price@example.com",
        _made_up_aad("dev.patel@example.com"),
    ),
    DemoPerson(
        "kim.lowe@example.com",
        "Kim Lowe",
        "OTA",
        TAUNTON_OT,
        "meganb@example.com",
        _made_up_aad("kim.lowe@example.com"),
    ),
    DemoPerson(
        "ben.ward@example.com",
        "Ben Ward",
        "OTA",
        SEDGEMOOR,
        "jordan.price@example.com",
        _made_up_aad("ben.ward@example.com"),
    ),
)

# The demo users with a playground login who are asked for this month's audits: each for
# their role's quota, as the monthly dispatch would ask them (Patti moderates instead).
DEMO_AUDITORS = (
    "alexw@example.com",
    "adelev@example.com",
    "meganb@example.com",
    "isaiahl@example.com",
    "lynner@example.com",
)


def staff_csv() -> str:
    """Return the demo roster as a staff CSV file."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["email", "name", "role", "team", "supervisor_email", "aad_object_id", "active"]
    )
    for p in PEOPLE:
        writer.writerow([p.email, p.name, p.role, p.team, p.supervisor, p.aad_object_id, "yes"])
    return out.getvalue()


def cases_csv(today: date) -> str:
    """Return a demo case list: a few open and closed cases for every practitioner."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["case_reference", "team", "allocated_worker_email", "status", "closed_on"])
    practitioners = [p for p in PEOPLE if p.role in ("SW", "OT", "ASCP", "OTA")]
    reference = 4_100_100
    for person in practitioners:
        for index in range(5):
            reference += 7
            if index == 3:
                writer.writerow(
                    [
                        reference,
                        person.team,
                        person.email,
                        "closed",
                        (today - timedelta(days=20)).isoformat(),
                    ]
                )
            elif index == 4:
                writer.writerow(
                    [
                        reference,
                        person.team,
                        person.email,
                        "closed",
                        (today - timedelta(days=400)).isoformat(),
                    ]
                )
            else:
                writer.writerow([reference, person.team, person.email, "open", ""])
    return out.getvalue()


async def load_demo_data(
    *, session: AsyncSession, framework: Framework, today: date
) -> tuple[ImportResult, ImportResult, list[AuditRequest]]:
    """Import the demo roster and cases, and ask the playground users for this month's audits."""
    staff_result = await import_staff(session=session, framework=framework, text=staff_csv())
    if not staff_result.ok:
        raise RuntimeError("demo roster rejected: " + "; ".join(staff_result.errors))
    case_result = await import_cases(session=session, text=cases_csv(today))
    if not case_result.ok:
        raise RuntimeError("demo cases rejected: " + "; ".join(case_result.errors))

    month = f"{today:%Y-%m}"
    entry = framework.timetable_for_month(today.month)
    standard = entry.standard if entry else DEMO_STANDARD_OUTSIDE_TIMETABLE
    rng = random.Random(month)  # noqa: S311 - the same demo draw every time for a month
    created: list[AuditRequest] = []
    for email in DEMO_AUDITORS:
        # Up to the role's quota, counting what an earlier run (or the month's dispatch)
        # already asked: `request_audit` refuses beyond it.
        person = await roster.staff_by_email(session=session, email=email)
        if person is None:  # cannot be: the roster imported above holds every demo auditor
            raise RuntimeError(f"demo auditor {email} is not on the roster")
        quota = monthly_quota(
            framework,
            person.role_code,
            standard,
            audits_in_month(framework, today.year, today.month),
        )
        for _ in range(quota):
            try:
                requested = await request_audit(
                    session=session,
                    framework=framework,
                    auditor_email=email,
                    standard_number=standard,
                    month=month,
                    today=today,
                    rng=rng,
                )
            except RequestError:
                break
            created.append(requested.audit)
    return staff_result, case_result, created


def playground_config(current_email: str) -> dict[str, Any]:
    """Return an Agents Playground configuration signed in as one of the demo users."""
    mock_users = [p for p in PEOPLE if p.playground_id]
    current = next((p for p in mock_users if p.email == current_email.lower()), None)
    if current is None:
        choices = ", ".join(p.email for p in mock_users)
        raise ValueError(f"{current_email} is not a playground user; choose one of {choices}")

    def user(person: DemoPerson) -> dict[str, str]:
        return {
            "id": person.playground_id or "",
            "name": person.name,
            "userPrincipleName": person.email,  # sic: the playground's own spelling
            "aadObjectId": person.aad_object_id,
            "givenName": person.given_name,
            "surname": person.surname,
            "email": person.email,
        }

    others = [user(p) for p in mock_users if p is not current]
    return {
        "version": "0.1.1",
        "tenantId": PLAYGROUND_TENANT,
        "bot": PLAYGROUND_BOT,
        "currentUser": user(current),
        "users": others,
        "personalChat": {"id": f"personal-chat-{current.playground_id}"},
        "groupChat": {"id": "group-chat-demo", "name": "Demo group chat"},
        "team": {
            "id": "team-demo",
            "name": "Adult Social Care",
            "aadGroupId": "00000000-0000-0000-0000-000000000031",
            "channels": [{"id": "channel-announcements-demo", "name": "Announcements"}],
        },
    }


def playground_config_yaml(current_email: str) -> str:
    """Return the playground configuration as YAML."""
    header = "# Written by `pqf-bot demo-data`; `make run AS=<email>` chooses the signed-in user.\n"
    return header + yaml.safe_dump(playground_config(current_email), sort_keys=False)
