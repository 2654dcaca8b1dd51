"""Who may see which audits and reports (applied to cards, links and downloads alike).

- Practice Development Advanced Practitioners, strategic managers and directors (roles that
  `sees: all` in the framework file) see every audit and the whole report.
- Service managers (`sees: teams`) see the audits of their teams: their own team and the
  teams of the people they supervise.
- Everyone sees the audits they did and the audits of their own work, and a supervisor sees
  those of the people they supervise (their team).
- Moderators also see the audits drawn for moderation.
- Someone not on the roster, or marked inactive, sees nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from practice.framework import Framework
from practice.report import ReportScope


@dataclass(frozen=True)
class Viewer:
    """The person asking, as access rules need them."""

    id: int
    role_code: str
    team: str
    active: bool
    supervisees: frozenset[int] = frozenset()
    supervisee_teams: frozenset[str] = frozenset()


@dataclass(frozen=True)
class AuditAccess:
    """An audit as access rules need it."""

    auditor_id: int
    subject_id: int | None
    team: str
    sampled_for_moderation: bool = False


def _sees(framework: Framework, viewer: Viewer) -> str:
    role = framework.role(viewer.role_code)
    return role.sees if role is not None else "own"


def _moderates(framework: Framework, viewer: Viewer) -> bool:
    role = framework.role(viewer.role_code)
    return role is not None and role.audit_kind == "moderation"


def teams_of(viewer: Viewer) -> frozenset[str]:
    """Return the teams a team-level viewer sees: their own and their supervisees'."""
    return frozenset({viewer.team} | set(viewer.supervisee_teams))


def can_view_audit(framework: Framework, viewer: Viewer, audit: AuditAccess) -> bool:
    """Return whether the viewer may see (and download) this audit."""
    if not viewer.active:
        return False
    sees = _sees(framework, viewer)
    if sees == "all":
        return True
    if viewer.id in (audit.auditor_id, audit.subject_id):
        return True
    if audit.auditor_id in viewer.supervisees or audit.subject_id in viewer.supervisees:
        return True
    if sees == "teams" and audit.team in teams_of(viewer):
        return True
    return audit.sampled_for_moderation and _moderates(framework, viewer)


def report_scope(framework: Framework, viewer: Viewer) -> ReportScope | None:
    """Return the part of the Board's report the viewer may see, or None for nothing."""
    if not viewer.active:
        return None
    sees = _sees(framework, viewer)
    if sees == "all":
        return ReportScope("All teams")
    if sees == "teams":
        teams = teams_of(viewer)
        return ReportScope(", ".join(sorted(teams)), teams=teams)
    # Moderators see the audits drawn for moderation besides their own (`can_view_audit`).
    moderates = _moderates(framework, viewer)
    if viewer.supervisees:
        return ReportScope(
            "Your audits, your team's and those drawn for moderation"
            if moderates
            else "Your audits and your team's",
            people=frozenset({viewer.id} | viewer.supervisees),
            moderation_sample=moderates,
        )
    return ReportScope(
        "Your audits, audits of your work and those drawn for moderation"
        if moderates
        else "Your audits and audits of your work",
        person_id=viewer.id,
        moderation_sample=moderates,
    )


def prepares_board_pack(framework: Framework, viewer: Viewer) -> bool:
    """Return whether the viewer is one of the Board's report owners, who prepare its pack."""
    role = framework.role(viewer.role_code)
    return viewer.active and role is not None and role.prepares_board_pack
