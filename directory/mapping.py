"""The council's mapping from Entra ID to the roster: department to team, job title to role code.

The council edits it (`examples/graph-mapping.yaml`); both are matched ignoring case and
spaces at the ends. A department or job title the file does not name is reported by name,
never guessed.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
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

    def team_of(self, department: str | None) -> str | None:
        """Return the team for a department, or None if the file does not name it."""
        return self.teams.get(_key(department))

    def role_of(self, job_title: str | None) -> str | None:
        """Return the role code for a job title, or None if the file does not name it."""
        return self.roles.get(_key(job_title))


def _key(text: str | None) -> str:
    return " ".join((text or "").split()).lower()


def parse_mapping(text: str, *, role_codes: Collection[str], where: str = "") -> DirectoryMapping:
    """Return the mapping in YAML text, checking each team and role code; raise MappingError."""
    prefix = f"{where}: " if where else ""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise MappingError(f"{prefix}not readable as YAML ({error})") from error
    if not isinstance(data, dict) or set(data) - {"teams", "roles"}:
        raise MappingError(f"{prefix}expected two sections, teams: and roles:")
    problems: list[str] = []
    teams = _section(data.get("teams"), "teams", problems)
    roles = _section(data.get("roles"), "roles", problems)
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
        teams={_key(k): v for k, v in teams.items()}, roles={_key(k): v for k, v in roles.items()}
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
