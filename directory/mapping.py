"""The council's mapping from Entra ID to the roster: department to team, job title to role code.

The council edits it (`examples/graph-mapping.yaml`); both are matched ignoring case and
spaces at the ends. A department or job title the file does not name is reported by name,
never guessed. It may also list the people at the top of the roster (`no_supervisor:`, by
email or object id), whose manager in Entra ID is not on the roster: they are synced with no
supervisor, as a roster file leaves their supervisor_email empty. Anyone else whose manager is
not on the roster stops the sync, as a roster file naming an unknown supervisor does. Each
entry's line in the file is kept, so a sync can point at an entry without naming anyone
(`directory.no_supervisor`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

LONGEST_TEAM = 120


class MappingError(Exception):
    """The mapping file cannot be used; the message says where and why."""


@dataclass(frozen=True)
class DirectoryMapping:
    """Teams by department and role codes by job title, keyed in lower case."""

    teams: Mapping[str, str]
    roles: Mapping[str, str]
    # Emails and object ids, lower case, of people synced with no supervisor.
    no_supervisor: frozenset[str] = frozenset()
    # Where each of those entries is in the file (its line number), to point at it.
    no_supervisor_lines: Mapping[str, int] = field(default_factory=dict)

    def team_of(self, department: str | None) -> str | None:
        """Return the team for a department, or None if the file does not name it."""
        return self.teams.get(_key(department))

    def role_of(self, job_title: str | None) -> str | None:
        """Return the role code for a job title, or None if the file does not name it."""
        return self.roles.get(_key(job_title))

    def without_supervisor(self, email: str, user_id: str) -> bool:
        """Return whether the file says this person has no supervisor on the roster."""
        return email.lower() in self.no_supervisor or user_id.lower() in self.no_supervisor


def _key(text: str | None) -> str:
    return " ".join((text or "").split()).lower()


def parse_mapping(text: str, *, role_codes: Collection[str], where: str = "") -> DirectoryMapping:
    """Return the mapping in YAML text, checking each team and role code; raise MappingError."""
    prefix = f"{where}: " if where else ""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise MappingError(f"{prefix}not readable as YAML ({error})") from error
    if not isinstance(data, dict) or set(data) - {"teams", "roles", "no_supervisor"}:
        raise MappingError(
            f"{prefix}expected the sections teams: and roles: (and, if needed, no_supervisor:)"
        )
    problems: list[str] = []
    teams = _section(data.get("teams"), "teams", problems)
    roles = _section(data.get("roles"), "roles", problems)
    tops = _people(data.get("no_supervisor"), problems)
    for department, team in teams.items():
        if len(team) > LONGEST_TEAM:
            problems.append(f"teams: {department!r} maps to a team over {LONGEST_TEAM} characters")
    codes = sorted(role_codes)
    for title, code in list(roles.items()):
        roles[title] = code.upper()
        if code.upper() not in codes:
            problems.append(f"roles: {title!r} maps to {code!r}, not one of {', '.join(codes)}")
    if problems:
        raise MappingError(prefix + "; ".join(problems))
    return DirectoryMapping(
        teams={_key(k): v for k, v in teams.items()},
        roles={_key(k): v for k, v in roles.items()},
        no_supervisor=frozenset(tops),
        no_supervisor_lines=_entry_lines(text),
    )


def load_mapping(path: Path, *, role_codes: Collection[str]) -> DirectoryMapping:
    """Read and check the mapping file; raise MappingError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise MappingError(f"{path}: cannot read the mapping file ({error})") from error
    return parse_mapping(text, role_codes=role_codes, where=str(path))


def _section(value: object, name: str, problems: list[str]) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"{name}: expected lines like 'name in Entra ID: name on the roster'")
        return {}
    section: dict[str, str] = {}
    seen: dict[str, str] = {}
    for key, mapped in value.items():
        if not isinstance(key, str) or not isinstance(mapped, str) or not mapped.strip():
            problems.append(f"{name}: {key!r} must map to some text, not {mapped!r}")
            continue
        if _key(key) in seen:
            problems.append(f"{name}: {key!r} repeats {seen[_key(key)]!r}")
            continue
        seen[_key(key)] = key
        section[key] = mapped.strip()
    return section


def _people(value: object, problems: list[str]) -> list[str]:
    """Return the emails or object ids listed under no_supervisor:, in lower case."""
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append("no_supervisor: expected a list of emails or object ids, one a line")
        return []
    people: list[str] = []
    for entry in value:
        if not isinstance(entry, str) or not entry.strip() or " " in entry.strip():
            problems.append(f"no_supervisor: {entry!r} is not an email or an object id")
            continue
        people.append(entry.strip().lower())
    return people


def _entry_lines(text: str) -> dict[str, int]:
    """Return the line of each no_supervisor: entry in the YAML text (the file already parsed)."""
    root = yaml.compose(text)
    lines: dict[str, int] = {}
    if not isinstance(root, yaml.MappingNode):
        return lines
    for key, value in root.value:
        if key.value == "no_supervisor" and isinstance(value, yaml.SequenceNode):
            for item in value.value:
                if isinstance(item, yaml.ScalarNode):
                    lines.setdefault(str(item.value).strip().lower(), item.start_mark.line + 1)
    return lines
