"""Choosing cases, peers and supervision records to audit."""

from __future__ import annotations

import random
from datetime import date

import pytest

from practice.sampling import (
    CaseCandidate,
    CaseColumns,
    DrawnCase,
    StaffCandidate,
    choose,
    eligible_cases,
    eligible_peers,
    eligible_supervisees,
)

TODAY = date(2026, 11, 23)


def test_eligible_cases_are_recent_not_own_not_recently_audited() -> None:
    cases = [
        CaseCandidate(1, "A", 10, True, None),  # open, someone else's: eligible
        CaseCandidate(2, "A", 99, True, None),  # the auditor's own
        CaseCandidate(3, "B", 11, False, date(2026, 10, 1)),  # closed recently: eligible
        CaseCandidate(4, "B", 11, False, date(2025, 1, 1)),  # closed long ago
        CaseCandidate(5, "B", 12, True, None),  # audited in the last 12 months
        CaseCandidate(6, "C", None, True, None),  # unallocated: eligible
    ]
    chosen = eligible_cases(
        cases, auditor_id=99, today=TODAY, recently_closed_days=90, audited_recently={5}
    )
    assert [c.id for c in chosen] == [1, 3, 6]


def test_eligible_peers_same_role_other_team_active() -> None:
    auditor = StaffCandidate(1, "SW", "Mendip", 7, True)
    staff = [
        auditor,
        StaffCandidate(2, "SW", "Mendip", 7, True),  # same team
        StaffCandidate(3, "SW", "Sedgemoor", 8, True),  # eligible
        StaffCandidate(4, "OT", "Sedgemoor", 8, True),  # other role
        StaffCandidate(5, "SW", "Taunton", 8, False),  # inactive
    ]
    assert [p.id for p in eligible_peers(staff, auditor)] == [3]


def test_eligible_supervisees_exclude_own_team_and_recently_audited() -> None:
    manager = StaffCandidate(7, "SVM", "Mendip", 1, True)
    staff = [
        manager,
        StaffCandidate(2, "SW", "Mendip", 7, True),  # their own supervisee
        StaffCandidate(3, "SW", "Sedgemoor", 8, True),  # eligible
        StaffCandidate(4, "SW", "Sedgemoor", 8, True),  # audited recently
        StaffCandidate(5, "DIR", "Leadership", None, True),  # no supervisor recorded
    ]
    assert [p.id for p in eligible_supervisees(staff, manager, {4})] == [3]


def test_choose_is_reproducible_from_a_seed() -> None:
    options = list(range(50))
    assert choose(options, random.Random("2026-11")) == choose(options, random.Random("2026-11"))
    assert choose([], random.Random(1)) is None


def test_case_columns_give_back_each_case_as_it_was_added() -> None:
    cases = CaseColumns()
    cases.append(7, 12, True, None)
    cases.append(9, None, False, date(2026, 10, 20))
    assert len(cases) == 2
    assert cases[0] == DrawnCase(7, 12, True, None)
    assert cases[1] == DrawnCase(9, None, False, date(2026, 10, 20))
    assert cases[-1].closed_on == date(2026, 10, 20)
    assert list(cases) == [cases[0], cases[1]]
    assert cases[1:] == [cases[1]]
    with pytest.raises(IndexError):
        cases[2]
