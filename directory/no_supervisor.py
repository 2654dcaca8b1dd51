"""Check the mapping file's no_supervisor: entries against the roster and Entra ID.

An entry lets someone at the top of the roster, whose manager is not on it, be synced with no
supervisor. An entry naming nobody the sync knows is most likely a typo or someone who has
left; one naming someone whose manager is on the roster is not needed (the manager is their
supervisor, as for anyone else). Neither harms the roster, so the sync goes on and says so:
`roster sync` names the entry and says what to do, and the nightly job's log gives its line
in the mapping file (never the email it holds). Each sync reads, for these few entries only,
the listed people's managers and, for an entry matching no one it knows, Entra ID's user.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from directory.graph import GraphClient, GraphError
from directory.mapping import DirectoryMapping
from directory.roster_diff import (
    USER_PROPERTIES,
    DirectoryUser,
    RosterChanges,
    RosterPerson,
    user_of,
)

OBJECT_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

# What each finding means and what the administrator should do about it.
ADVICE = {
    "not_in_entra": "probably a typo: check it against the person's email or object id in "
    "Entra ID, or remove it",
    "outside_groups": "the list is for people on the roster whose manager is not: add them to "
    "a roster group (PQF_GRAPH_GROUPS) if they should be on it, or remove the entry",
    "left": "they have left: remove the entry",
    "not_needed": "not needed, as their manager is their supervisor: remove the entry",
}

# The same, for the log, which names no one.
LOGGED = {
    "not_in_entra": "matches nobody in Entra ID (a typo?)",
    "outside_groups": "names someone not in the roster groups",
    "left": "names someone who has left",
    "not_needed": "is not needed (their manager is on the roster)",
}


@dataclass(frozen=True)
class EntryFinding:
    """A no_supervisor: entry that does nothing: who (if anyone) it names, and why."""

    entry: str
    line: int | None  # in the mapping file
    kind: str  # a key of ADVICE
    detail: str  # what the sync found (it may name people: never logged)

    def problem(self) -> str:
        """Return the finding as the administrator reads it."""
        where = f" (line {self.line})" if self.line else ""
        return f"no_supervisor: {self.entry}{where} {self.detail}: {ADVICE[self.kind]}"

    def log_line(self) -> str:
        """Return the finding without personal data: the entry's line, or its object id."""
        named = self.entry if OBJECT_ID.match(self.entry) else "an email address"
        where = f"line {self.line} ({named})" if self.line else named
        return f"no_supervisor: entry on {where} {LOGGED[self.kind]}"

    def as_json(self) -> dict[str, Any]:
        """Return the finding for `--json`."""
        return {
            "entry": self.entry, "line": self.line, "finding": self.kind,
            "detail": self.detail, "advice": ADVICE[self.kind],
        }  # fmt: skip


@dataclass
class EntryReads:
    """What Graph said for the entries: listed people's managers, and entries found or not."""

    managers: dict[str, DirectoryUser]  # manager-only records, by the listed person's id
    found: dict[str, DirectoryUser | None]  # by entry; None: no such user in Entra ID


async def read_for_entries(
    client: GraphClient,
    mapping: DirectoryMapping,
    *,
    roster: Mapping[str, str],
    scope: Collection[str],
    users: Mapping[str, DirectoryUser],
    held: Collection[DirectoryUser],
) -> EntryReads:
    """Read what the entries need that the sync's own reads did not hold.

    `roster` is the roster's emails with their object ids (or ""). A listed person in the
    groups whose manager the reads left unknown has it read, so the entry is weighed every
    sync; an entry naming no one on the roster, in the read or held is looked up in Entra ID.
    """
    by_email = {u.email: u.id for u in [*users.values(), *held] if u.email}
    on_roster = set(roster.values()) - {""}
    held_ids = {u.id for u in held}
    reads = EntryReads({}, {})
    for entry in sorted(mapping.no_supervisor):
        user_id = entry if OBJECT_ID.match(entry) else roster.get(entry) or by_email.get(entry)
        if user_id and user_id in scope:
            user = users.get(user_id)
            if (user or user_id in on_roster) and not (user and user.manager_known):
                reads.managers[user_id] = await _manager_record(client, user_id)
        elif entry in roster or user_id in on_roster or user_id in held_ids:
            continue  # judged from the roster (a leaver, a staff file's) or the held records
        else:
            user = users.get(user_id or "")
            reads.found[entry] = user if user and user.complete else await _find(client, entry)
    return reads


async def _manager_record(client: GraphClient, user_id: str) -> DirectoryUser:
    status, manager = await client.request(
        "GET", f"users/{user_id}/manager", params={"$select": "id"}, accept=frozenset({404})
    )
    manager_id = str(manager["id"]).lower() if status != 404 and "id" in manager else None
    return DirectoryUser(user_id, frozenset(), manager_known=True, manager_id=manager_id)


async def _find(client: GraphClient, entry: str) -> DirectoryUser | None:
    """Return the user an entry names in Entra ID (by object id, mail or sign-in name)."""
    select = ",".join(USER_PROPERTIES)
    if OBJECT_ID.match(entry):
        try:
            return user_of(await client.get(f"users/{entry}", {"$select": select}),
                           manager_known=False)  # fmt: skip
        except GraphError as error:
            if error.status == 404:
                return None
            raise
    quoted = entry.replace("'", "''")  # OData's way of writing a quote inside a string
    answer = await client.get(
        "users",
        {"$filter": f"mail eq '{quoted}' or userPrincipalName eq '{quoted}'", "$select": select},
    )
    found = answer.get("value", [])
    return user_of(found[0], manager_known=False) if found else None


def judge_entries(
    mapping: DirectoryMapping,
    *,
    roster: Sequence[RosterPerson],
    changes: RosterChanges,
    found: Mapping[str, DirectoryUser | None],
) -> list[EntryFinding]:
    """Return the entries that do nothing, in the file's order, with what to do about each.

    `roster` holds the roster as it was (`RosterPerson`s), before `changes`.
    """
    after = {p.aad_object_id or p.email: p for p in roster}
    after.update({p.aad_object_id or p.email: p for p in changes.rows})
    people = {key: p for p in after.values() for key in (p.email, p.aad_object_id) if key}
    held = {key for u in changes.held.values() for key in (u.id, u.email) if key}
    findings = []
    lines = mapping.no_supervisor_lines
    for entry in sorted(mapping.no_supervisor, key=lambda e: (lines.get(e, 0), e)):
        kind, detail = _judge(entry, people, held, changes.listed_with_manager, found)
        if kind:
            findings.append(EntryFinding(entry, lines.get(entry), kind, detail))
    return findings


def _judge(
    entry: str,
    people: Mapping[str, RosterPerson],
    held: Collection[str],
    listed_with_manager: Mapping[str, str],
    found: Mapping[str, DirectoryUser | None],
) -> tuple[str, str]:
    """Return (what the entry does wrong, in ADVICE's words, and who it names) or ("", "")."""
    person = people.get(entry)
    if person is not None:
        name = f"names {person.name} <{person.email}>"
        supervisor = listed_with_manager.get(person.aad_object_id)
        if not person.active:
            return "left", f"{name}, who is no longer active on the roster"
        if supervisor:
            return (
                "not_needed",
                f"{name}, whose manager in Entra ID, {supervisor}, is on the roster",
            )
        return "", ""
    if entry in held:
        return "", ""  # in the groups, not placed yet: the entry will count when they are
    if entry not in found:
        return "", ""
    user = found[entry]
    if user is None:
        return "not_in_entra", "matches nobody on the roster or in Entra ID"
    name = f"names {user.name or user.id} <{user.email or ''}>"
    if user.enabled is False:
        return "left", f"{name}, whose Entra ID account is disabled"
    return "outside_groups", f"{name}, who is in Entra ID but not in the roster groups"
