"""What a sync from the directory changes on the roster, worked out as a pure function.

The roster comes in and goes out as roster-file rows, so the changes are applied with the
same checks as an imported file. A person is in scope while they are a member of one of the
configured groups; a person on the roster with an object id who leaves scope, or whose
account Graph reports removed or disabled, is deactivated (never deleted: their audits stay).
Graph's delta answers may hold only the properties that changed: a property it leaves out
keeps the roster's value. A person in scope who cannot be placed on the roster (an unmapped
department or job title, a disabled account new to it) is held: their last-read record is
kept and weighed again at every sync, so a fixed mapping file or an enabled account places
them without Graph reading them again. A person whose manager is not on the roster stops the
sync (the roster file's rule for an unknown supervisor), unless the mapping file lists them
under no_supervisor:. A manager on the roster is the supervisor whether or not the person is
listed: the list is for managers who are not, and an entry that is not needed is noted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass, field, replace
from typing import Any

from directory.mapping import DirectoryMapping

# The Graph properties a roster row is made from.
USER_PROPERTIES = (
    "id", "displayName", "mail", "userPrincipalName", "department", "jobTitle", "accountEnabled",
)  # fmt: skip


@dataclass(frozen=True)
class DirectoryUser:
    """A user as Graph described them; `given` names the properties Graph sent."""

    id: str
    given: frozenset[str]
    name: str | None = None
    email: str | None = None
    department: str | None = None
    job_title: str | None = None
    enabled: bool | None = None
    # Whether `manager_id` says who the manager is now; otherwise the manager is unchanged.
    manager_known: bool = False
    manager_id: str | None = None

    def merged(self, newer: DirectoryUser) -> DirectoryUser:
        """Return this record brought up to date with the properties a later read sent."""
        given = {
            "name": "displayName", "department": "department", "job_title": "jobTitle",
            "enabled": "accountEnabled",
        }  # fmt: skip
        changed: dict[str, Any] = {
            name: getattr(newer, name) for name, prop in given.items() if prop in newer.given
        }
        if {"mail", "userPrincipalName"} & newer.given:
            changed["email"] = newer.email
        if newer.manager_known:
            changed.update(manager_known=True, manager_id=newer.manager_id)
        return replace(self, given=self.given | newer.given, **changed)

    def as_record(self) -> dict[str, Any]:
        """Return the record as JSON-ready data, to keep while the person is held."""
        return {
            "given": sorted(self.given), "name": self.name, "email": self.email,
            "department": self.department, "job_title": self.job_title, "enabled": self.enabled,
            "manager_known": self.manager_known, "manager_id": self.manager_id,
        }  # fmt: skip

    @classmethod
    def of_record(cls, user_id: str, record: Mapping[str, Any]) -> DirectoryUser:
        """Return the record `as_record` made."""
        return cls(
            id=user_id,
            given=frozenset(record.get("given", ())),
            name=record.get("name"),
            email=record.get("email"),
            department=record.get("department"),
            job_title=record.get("job_title"),
            enabled=record.get("enabled"),
            manager_known=bool(record.get("manager_known")),
            manager_id=record.get("manager_id"),
        )

    @property
    def complete(self) -> bool:
        """Return whether every property a new roster row needs was sent."""
        return {"displayName", "department", "jobTitle", "accountEnabled"} <= self.given and (
            "mail" in self.given or "userPrincipalName" in self.given
        )


def user_of(
    item: Mapping[str, Any], *, manager: str | None = None, manager_known: bool
) -> DirectoryUser:
    """Return the user in one of Graph's user objects (a delta or a GET answer)."""
    given = frozenset(k for k in USER_PROPERTIES if k in item)
    mail = item.get("mail") or item.get("userPrincipalName")
    enabled = item.get("accountEnabled")
    return DirectoryUser(
        id=str(item["id"]).lower(),
        given=given,
        name=_text(item.get("displayName")),
        email=str(mail).strip().lower() if mail else None,
        department=_text(item.get("department")),
        job_title=_text(item.get("jobTitle")),
        enabled=enabled if isinstance(enabled, bool) else None,
        manager_known=manager_known,
        manager_id=manager.lower() if manager else None,
    )


def _text(value: object) -> str | None:
    return " ".join(str(value).split()) if value is not None else None


@dataclass(frozen=True)
class RosterPerson:
    """One roster row, in the roster file's columns."""

    email: str
    name: str
    role: str
    team: str
    supervisor_email: str
    aad_object_id: str
    active: bool
    on_leave_until: str

    @classmethod
    def of_row(cls, row: Mapping[str, str]) -> RosterPerson:
        """Return the person in a roster-file row."""
        return cls(
            email=row["email"].lower(),
            name=row["name"],
            role=row["role"].upper(),
            team=row["team"],
            supervisor_email=row.get("supervisor_email", "").lower(),
            aad_object_id=row.get("aad_object_id", "").lower(),
            active=row.get("active", "yes").lower() in {"yes", "y", "true", "1", ""},
            on_leave_until=row.get("on_leave_until", ""),
        )

    def as_row(self) -> dict[str, str]:
        """Return the person as a roster-file row."""
        return {
            "email": self.email,
            "name": self.name,
            "role": self.role,
            "team": self.team,
            "supervisor_email": self.supervisor_email,
            "aad_object_id": self.aad_object_id,
            "active": "yes" if self.active else "no",
            "on_leave_until": self.on_leave_until,
        }


@dataclass(frozen=True)
class Unmapped:
    """A person left off the roster because the mapping file does not name their value."""

    user_id: str
    name: str
    what: str  # "department" or "job title"
    value: str


@dataclass(frozen=True)
class ManagerMissing:
    """A person whose manager in Entra ID is not on the roster (nor joining it in this sync)."""

    user_id: str
    name: str
    email: str
    manager_id: str
    manager_name: str  # empty when Graph no longer has the manager
    manager_email: str
    why: str

    def problem(self) -> str:
        """Return the problem as the administrator reads it (it names people)."""
        manager = " ".join(
            part for part in (self.manager_name, f"<{self.manager_email}>" if self.manager_email
                              else "", f"({self.manager_id})") if part
        )  # fmt: skip
        return (
            f"user {self.user_id}: {self.name} <{self.email}>: manager not on the roster: "
            f"{manager} {self.why}; add the manager to a roster group, or list "
            f"{self.email} under no_supervisor: in the mapping file"
        )

    def as_json(self) -> dict[str, str]:
        """Return the entry for `--json`."""
        return {
            "aad_object_id": self.user_id, "name": self.name, "email": self.email,
            "manager_aad_object_id": self.manager_id, "manager_name": self.manager_name,
            "manager_email": self.manager_email, "why": self.why,
        }  # fmt: skip


@dataclass
class RosterChanges:
    """What a sync adds, updates and deactivates, and whom it cannot place."""

    added: list[RosterPerson] = field(default_factory=list)
    updated: list[tuple[RosterPerson, RosterPerson]] = field(default_factory=list)
    deactivated: list[RosterPerson] = field(default_factory=list)
    unmapped: list[Unmapped] = field(default_factory=list)
    manager_missing: list[ManagerMissing] = field(default_factory=list)
    # People in scope not placed on the roster: their records, kept for the next sync.
    held: dict[str, DirectoryUser] = field(default_factory=dict)
    # People listed under no_supervisor: whose manager is on the roster: their supervisor's
    # email, by object id (the entry is not needed).
    listed_with_manager: dict[str, str] = field(default_factory=dict)

    @property
    def rows(self) -> list[RosterPerson]:
        """Return the roster rows to save: everyone added, updated or deactivated."""
        return [*self.added, *(new for _old, new in self.updated), *self.deactivated]

    @property
    def unmapped_values(self) -> dict[str, list[str]]:
        """Return the unmapped departments and job titles, each once."""
        found: dict[str, list[str]] = {"department": [], "job title": []}
        for entry in self.unmapped:
            if entry.value not in found[entry.what]:
                found[entry.what].append(entry.value)
        return {what: sorted(values) for what, values in found.items()}

    def as_json(self) -> dict[str, Any]:
        """Return the changes for `--json` and `--dry-run`."""
        return {
            "added": [p.as_row() for p in self.added],
            "updated": [
                {"email": old.email, "changes": _changes(old, new)} for old, new in self.updated
            ],
            "deactivated": [p.email for p in self.deactivated],
            "unmapped": [
                {"aad_object_id": u.user_id, "name": u.name, u.what.replace(" ", "_"): u.value}
                for u in self.unmapped
            ],
            "manager_not_on_roster": [m.as_json() for m in self.manager_missing],
            "not_added_disabled": [
                {"aad_object_id": u.id, "name": u.name or "", "email": u.email or ""}
                for u in self.disabled_newcomers
            ],
        }

    @property
    def disabled_newcomers(self) -> list[DirectoryUser]:
        """Return the members of the groups left off the roster for a disabled account."""
        unmapped = {u.user_id for u in self.unmapped}
        return [
            u for u in self.held.values()
            if u.enabled is False and u.complete and u.id not in unmapped
        ]  # fmt: skip


def _changes(old: RosterPerson, new: RosterPerson) -> dict[str, list[str]]:
    before, after = old.as_row(), new.as_row()
    return {k: [before[k], after[k]] for k in before if before[k] != after[k]}


def diff_roster(
    *,
    roster: Sequence[RosterPerson],
    scope: Set[str],
    users: Mapping[str, DirectoryUser],
    removed: Set[str],
    mapping: DirectoryMapping,
    managers: Mapping[str, DirectoryUser | None] | None = None,
) -> RosterChanges:
    """Return what the roster must change to agree with the directory as read.

    `managers` holds the records of managers outside the groups (None: not in the directory).
    """
    changes = RosterChanges()
    by_aad = {p.aad_object_id: p for p in roster if p.aad_object_id}
    by_email = {p.email: p for p in roster}

    placed: dict[str, tuple[DirectoryUser, RosterPerson | None, RosterPerson]] = {}
    for user_id in sorted(scope):
        user = users.get(user_id)
        if user is None or user_id in removed:
            continue
        existing = by_aad.get(user_id) or (by_email.get(user.email) if user.email else None)
        if existing is None and not user.complete:
            changes.held[user_id] = user
            continue  # the reader fetches whole records for newcomers; never guess the rest
        enabled = user.enabled if "accountEnabled" in user.given else None
        team: str | None
        role: str | None
        if existing is not None and enabled is False:
            # Leaving: deactivated in the team and role they had, whatever their title now.
            team, role = existing.team, existing.role
        else:
            team = _mapped(user, "department", existing, changes, mapping.team_of)
            role = _mapped(user, "jobTitle", existing, changes, mapping.role_of)
        if team is None or role is None:
            changes.held[user_id] = user  # weighed again when the mapping file changes
            continue
        if existing is None and not enabled:
            # A disabled account new to the roster has nothing to do here, until the delta
            # says it is enabled: held, not read again every night.
            changes.held[user_id] = user
            continue
        person = RosterPerson(
            email=user.email or (existing.email if existing else ""),
            name=user.name if "displayName" in user.given and user.name else _old(existing, "name"),
            role=role,
            team=team,
            supervisor_email="",
            aad_object_id=user_id,
            active=enabled if enabled is not None else bool(existing and existing.active),
            on_leave_until=existing.on_leave_until if existing else "",
        )
        placed[user_id] = (user, existing, person)

    email_of = {aad: p.email for aad, p in by_aad.items()}
    email_of.update({user_id: person.email for user_id, (_u, _e, person) in placed.items()})
    for user, existing, person in placed.values():
        listed = mapping.without_supervisor(person.email, user.id)
        if user.manager_known and user.manager_id:
            manager = users.get(user.manager_id) or (managers or {}).get(user.manager_id)
            supervisor = email_of.get(user.manager_id) or _on_roster(manager, by_email)
            if supervisor and listed:
                changes.listed_with_manager[user.id] = supervisor
            elif not supervisor and listed:
                supervisor = ""  # the top of the roster: the mapping file says so
            elif not supervisor and not person.active:
                # Leaving: no reason to hold the roster up over their manager.
                supervisor = existing.supervisor_email if existing else ""
            elif not supervisor:
                why = _why_not(user.manager_id, manager, scope, changes, managers or {})
                changes.manager_missing.append(
                    ManagerMissing(user.id, person.name, person.email, user.manager_id,
                                   (manager.name or "") if manager else "",
                                   (manager.email or "") if manager else "", why)
                )  # fmt: skip
                continue
        elif user.manager_known:
            supervisor = ""
        else:
            supervisor = existing.supervisor_email if existing else ""
        person = replace(person, supervisor_email=supervisor)
        if existing is None:
            changes.added.append(person)
        elif existing.active and not person.active:
            changes.deactivated.append(person)
        elif person != existing:
            changes.updated.append((existing, person))

    for person in roster:
        user_id = person.aad_object_id
        if not user_id or not person.active or user_id in placed:
            continue
        if user_id in removed or user_id not in scope:
            changes.deactivated.append(replace(person, active=False))
    return changes


def _on_roster(manager: DirectoryUser | None, by_email: Mapping[str, RosterPerson]) -> str:
    """Return the roster email of a manager the roster knows by email alone (a roster file's)."""
    if manager is None or not manager.email or manager.email not in by_email:
        return ""
    known = by_email[manager.email]
    return known.email if known.aad_object_id in {"", manager.id} else ""


def _why_not(
    manager_id: str,
    manager: DirectoryUser | None,
    scope: Set[str],
    changes: RosterChanges,
    managers: Mapping[str, DirectoryUser | None],
) -> str:
    """Return why a manager is not on the roster, as the administrator can act on it."""
    if manager_id in scope:
        if any(u.user_id == manager_id for u in changes.unmapped):
            return "is in the groups but their department or job title is unmapped"
        if manager is not None and manager.enabled is False:
            return "is in the groups but their account is disabled"
        return "is in the groups but not yet on the roster"
    if manager_id in managers and managers[manager_id] is None:
        return "is no longer in the directory"
    return "is not in the groups (PQF_GRAPH_GROUPS)"


def _mapped(
    user: DirectoryUser,
    prop: str,
    existing: RosterPerson | None,
    changes: RosterChanges,
    look_up: Callable[[str | None], str | None],
) -> str | None:
    """Return the team or role for a user's department or job title, noting an unmapped one."""
    if prop not in user.given and existing is not None:
        return existing.team if prop == "department" else existing.role
    value = user.department if prop == "department" else user.job_title
    mapped = look_up(value)
    if mapped is None:
        what = "department" if prop == "department" else "job title"
        changes.unmapped.append(Unmapped(user.id, user.name or "", what, value or "(none)"))
    return mapped


def _old(existing: RosterPerson | None, name: str) -> str:
    return str(getattr(existing, name)) if existing is not None else ""
