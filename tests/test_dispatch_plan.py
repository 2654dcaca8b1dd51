"""Planning a month's requests for a roster of 1,000 staff in 30 teams."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, timedelta

import pytest

from practice.calendar import audits_in_month
from practice.dispatch import (
    CasePool,
    DispatchInputs,
    DispatchPlan,
    RosterEntry,
    SuperviseePool,
    dispatch_key,
    monthly_quota,
    pair_peers,
    plan_month,
)
from practice.framework import Framework
from practice.sampling import CaseCandidate

ROLE_COUNTS = {
    "DIR": 2, "SM": 8, "SVM": 30, "AP": 40, "PDAP": 10, "MOD": 6,
    "SW": 500, "OT": 200, "ASCP": 150, "OTA": 54,
}  # fmt: skip
TEAMS = [f"Team {n:02d}" for n in range(30)]


def roster(seed: int = 1) -> list[RosterEntry]:
    rng = random.Random(seed)
    people: list[RosterEntry] = []
    managers: list[int] = []
    next_id = 1
    for role, count in ROLE_COUNTS.items():
        for _ in range(count):
            team = rng.choice(TEAMS)
            supervisor = rng.choice(managers) if managers and role not in ("DIR",) else None
            people.append(RosterEntry(next_id, role, team, supervisor, True))
            if role in ("SM", "SVM"):
                managers.append(next_id)
            next_id += 1
    return people


def case_list(people: list[RosterEntry], today: date, seed: int = 2) -> list[CaseCandidate]:
    rng = random.Random(seed)
    practitioners = [p for p in people if p.role_code in ("SW", "OT", "ASCP", "OTA")]
    cases = []
    for case_id in range(1, 5001):
        worker = rng.choice(practitioners)
        kind = rng.random()
        if kind < 0.7:
            cases.append(CaseCandidate(case_id, worker.team, worker.id, True, None))
        elif kind < 0.85:
            cases.append(
                CaseCandidate(case_id, worker.team, worker.id, False, today - timedelta(days=30))
            )
        else:
            cases.append(
                CaseCandidate(case_id, worker.team, worker.id, False, today - timedelta(days=300))
            )
    return cases


def plan_for(
    framework: Framework,
    year: int,
    month: int,
    people: list[RosterEntry],
    seed: str = "s",
    **extra: object,
) -> DispatchPlan:
    audits = audits_in_month(framework, year, month)
    today = audits[0].requests_on
    inputs = DispatchInputs(
        audits=audits,
        staff=people,
        cases=extra.pop("cases", None) or case_list(people, today),  # type: ignore[arg-type]
        cases_audited_recently=extra.pop("cases_audited_recently", ()),  # type: ignore[arg-type]
        workers_audited_recently=extra.pop("workers_audited_recently", ()),  # type: ignore[arg-type]
        recent_peer_pairs=extra.pop("recent_peer_pairs", ()),  # type: ignore[arg-type]
        existing_keys=extra.pop("existing_keys", ()),  # type: ignore[arg-type]
        requested_this_month=extra.pop("requested_this_month", {}),  # type: ignore[arg-type]
    )
    assert not extra
    return plan_month(framework, inputs, seed)


def test_quotas_per_role_in_a_self_audit_month(framework: Framework) -> None:
    people = roster()
    plan = plan_for(framework, 2026, 11, people)
    by_auditor = Counter(r.auditor_id for r in plan.requests)
    quotas = {
        "DIR": 1,
        "SM": 2,
        "SVM": 2,
        "AP": 2,
        "PDAP": 6,
        "SW": 1,
        "OT": 1,
        "ASCP": 1,
        "OTA": 1,
        "MOD": 0,
    }
    for person in people:
        assert by_auditor[person.id] == quotas[person.role_code], person
    kinds = Counter(
        (next(p.role_code for p in people if p.id == r.auditor_id), r.kind) for r in plan.requests
    )
    assert kinds[("SW", "self")] == 500
    assert kinds[("PDAP", "sampled")] == 60
    assert all(r.standard == 3 for r in plan.requests)
    assert plan.skipped == []
    assert len({r.key for r in plan.requests}) == len(plan.requests)


def test_sampled_cases_follow_the_rules(framework: Framework) -> None:
    people = roster()
    today = date(2026, 11, 2)
    cases = case_list(people, today)
    audited = {c.id for c in cases[:300]}
    plan = plan_for(framework, 2026, 11, people, cases=cases, cases_audited_recently=audited)
    by_id = {c.id: c for c in cases}
    sampled = [r for r in plan.requests if r.kind == "sampled"]
    assert len(sampled) == 2 * 8 + 2 * 30 + 2 * 40 + 6 * 10 + 2
    drawn = [r.case_id for r in sampled]
    assert len(set(drawn)) == len(drawn), "a case went to two auditors"
    for request in sampled:
        case = by_id[request.case_id]  # type: ignore[index]
        assert case.allocated_worker_id != request.auditor_id
        assert case.id not in audited
        assert case.open or (
            case.closed_on is not None and case.closed_on >= today - timedelta(days=90)
        )


def test_the_draw_is_reproducible_from_its_seed(framework: Framework) -> None:
    people = roster()
    first = plan_for(framework, 2026, 11, people, seed="2026-11/7f3a")
    again = plan_for(framework, 2026, 11, people, seed="2026-11/7f3a")
    other = plan_for(framework, 2026, 11, people, seed="2026-11/other")
    assert first.requests == again.requests
    assert first.requests != other.requests


def test_peer_month_pairs_colleagues_across_teams_once_each(framework: Framework) -> None:
    people = roster()
    plan = plan_for(framework, 2026, 10, people)
    peers = [r for r in plan.requests if r.kind == "peer"]
    assert len(peers) == 904
    teams = {p.id: p.team for p in people}
    roles = {p.id: p.role_code for p in people}
    subjects = Counter(r.subject_id for r in peers)
    assert max(subjects.values()) == 1, "someone is peer-audited twice"
    for request in peers:
        assert request.subject_id != request.auditor_id
        assert roles[request.subject_id] == roles[request.auditor_id]  # type: ignore[index]
        assert teams[request.subject_id] != teams[request.auditor_id]  # type: ignore[index]
        assert request.note == ""
    assert {r.auditor_id for r in peers} == {r.subject_id for r in peers}


def test_peer_pairs_do_not_repeat_month_after_month(framework: Framework) -> None:
    people = roster()
    october = plan_for(framework, 2026, 10, people, seed="a")
    last_pairs = {(r.auditor_id, r.subject_id) for r in october.requests if r.kind == "peer"}
    january = plan_for(framework, 2027, 1, people, seed="b", recent_peer_pairs=last_pairs)
    pairs = {(r.auditor_id, r.subject_id) for r in january.requests if r.kind == "peer"}
    assert len(pairs) == 904
    assert pairs.isdisjoint(last_pairs)


def test_a_dominant_team_still_gets_everyone_a_peer(framework: Framework) -> None:
    workers = [
        RosterEntry(i, "OT", "Big team" if i <= 7 else f"Team {i}", None, True)
        for i in range(1, 11)
    ]
    pairs = pair_peers(workers, set(), random.Random(3))
    assert sorted(pairs) == list(range(1, 11))
    assert sorted(pairs.values()) == list(range(1, 11))
    cross = sum(1 for a, b in pairs.items() if workers[a - 1].team != workers[b - 1].team)
    assert cross == 6  # the three outside the big team audit into it and are audited from it


def test_supervision_month_draws_supervisees_not_cases(framework: Framework) -> None:
    people = roster()
    recently = {p.id for p in people if p.role_code == "OTA"}
    plan = plan_for(framework, 2027, 7, people, workers_audited_recently=recently)
    sampled = [r for r in plan.requests if r.kind == "sampled"]
    supervisor = {p.id: p.supervisor_id for p in people}
    assert sampled
    assert all(r.case_id is None and r.subject_id is not None for r in sampled)
    drawn = [r.subject_id for r in sampled]
    assert len(set(drawn)) == len(drawn)
    for request in sampled:
        assert supervisor[request.subject_id] != request.auditor_id  # type: ignore[index]
        assert request.subject_id not in recently
        assert request.subject_id != request.auditor_id


def test_additional_audits_give_managers_one_more(framework: Framework) -> None:
    people = roster()
    plan = plan_for(framework, 2024, 1, people)
    standard_8 = [r for r in plan.requests if r.standard == 8]
    managers = [p for p in people if p.role_code in ("DIR", "SM", "SVM", "AP", "PDAP")]
    assert len(standard_8) == len(managers)
    assert {r.kind for r in standard_8} == {"sampled"}
    assert {r.kind for r in plan.requests if r.standard == 4} == {"sampled", "peer"}


def test_staff_on_leave_are_skipped_and_listed(framework: Framework) -> None:
    people = roster()
    away = {people[10].id, people[500].id}
    people = [
        RosterEntry(p.id, p.role_code, p.team, p.supervisor_id, p.active, date(2026, 11, 20))
        if p.id in away else p
        for p in people
    ]  # fmt: skip
    inactive = people[600]
    people[600] = RosterEntry(
        inactive.id, inactive.role_code, inactive.team, inactive.supervisor_id, False
    )
    plan = plan_for(framework, 2026, 11, people)
    assert not {r.auditor_id for r in plan.requests} & (away | {inactive.id})
    assert {s.staff_id for s in plan.skipped if s.reason == "on_leave"} == away


def test_a_rerun_adds_only_what_is_missing(framework: Framework) -> None:
    people = roster()
    first = plan_for(framework, 2026, 11, people)
    done = {r.key for r in first.requests}
    again = plan_for(framework, 2026, 11, people, existing_keys=done)
    assert again.requests == []
    some = {r.key for r in first.requests[: len(first.requests) // 2]}
    partial = plan_for(framework, 2026, 11, people, existing_keys=some)
    assert {r.key for r in partial.requests} == done - some


def test_requests_made_some_other_way_count_in_the_quota(framework: Framework) -> None:
    people = roster()
    first = plan_for(framework, 2026, 11, people)
    manager = next(r.auditor_id for r in first.requests if r.kind == "sampled")
    worker = next(r.auditor_id for r in first.requests if r.kind == "self")
    quota = sum(1 for r in first.requests if r.auditor_id == manager)
    # Asked by hand (or by demo data) before the dispatch: no key of the dispatch's own.
    asked = {(manager, 3): 1, (worker, 3): 1, (worker, 5): 1}
    plan = plan_for(framework, 2026, 11, people, requested_this_month=asked)
    assert sum(1 for r in plan.requests if r.auditor_id == manager) == quota - 1
    assert not [r for r in plan.requests if r.auditor_id == worker]
    assert len(plan.requests) == len(first.requests) - 2
    already_full = {(manager, 3): quota}
    plan = plan_for(framework, 2026, 11, people, requested_this_month=already_full)
    assert not [r for r in plan.requests if r.auditor_id == manager]


def test_monthly_quota_by_role_standard_and_month(framework: Framework) -> None:
    november = audits_in_month(framework, 2026, 11)
    january_2024 = audits_in_month(framework, 2024, 1)  # standard 4, and 8 added by the Board
    assert monthly_quota(framework, "PDAP", 3, november) == 6
    assert monthly_quota(framework, "SW", 3, november) == 1
    assert monthly_quota(framework, "MOD", 3, november) == 0
    assert monthly_quota(framework, "NOPE", 3, november) == 0
    assert monthly_quota(framework, "SVM", 5, november) == 2  # off the timetable: the role's
    assert monthly_quota(framework, "SVM", 4, january_2024) == 2
    added = next(a for a in january_2024 if a.additional)
    listed = added.roles[0]
    assert monthly_quota(framework, listed, 8, january_2024) == 1
    assert monthly_quota(framework, "PDAP", 3, []) == 6  # December, August


def test_running_out_of_cases_is_reported(framework: Framework) -> None:
    people = roster()
    few = case_list(people, date(2026, 11, 2))[:20]
    plan = plan_for(framework, 2026, 11, people, cases=few)
    assert sum(s.missing for s in plan.skipped if s.reason == "no_case") > 0
    assert len([r for r in plan.requests if r.kind == "sampled"]) <= 20


def test_a_month_without_audits_cannot_be_planned(framework: Framework) -> None:
    with pytest.raises(ValueError, match="no audit"):
        plan_month(framework, DispatchInputs((), (), (), (), (), (), ()), "x")


def test_keys_name_month_standard_auditor_and_slot() -> None:
    assert dispatch_key("2026-11", 3, 42, 2) == "2026-11/s3/a42/2"


def test_the_case_pool_gives_each_takeable_case_once_in_a_seeded_order() -> None:
    today = date(2026, 11, 2)
    cases = [
        CaseCandidate(n, "Team 00", 1000 + n % 7, n % 5 != 0, None if n % 5 else today)
        for n in range(1, 401)
    ]

    def drawn(seed: str) -> list[int]:
        pool = CasePool(cases, lambda c: c.id % 3 != 0, random.Random(seed))
        out: list[int] = []
        while (case := pool.draw()) is not None:
            out.append(case.id)
        return out

    order = drawn("a")
    assert sorted(order) == [c.id for c in cases if c.id % 3 != 0]  # each once, none refused
    assert order == drawn("a")  # a seed repeats its draw
    assert order != drawn("b")
    assert order != sorted(order)
    assert [c.id for c in cases][:5] == [1, 2, 3, 4, 5]  # the caller's list is left alone

    pool = CasePool(cases, lambda c: True, random.Random("c"))
    first, second, third = pool.draw(), pool.draw(), pool.draw()
    assert first is not None
    assert second is not None
    assert third is not None
    pool.put_back([first, second])  # passed over: the next auditor is offered them first
    assert [pool.draw(), pool.draw()] == [first, second]
    assert pool.draw() not in (first, second, third)


def test_the_first_draws_of_the_case_pool_are_spread_over_the_whole_list() -> None:
    cases = [CaseCandidate(n, "Team 00", None, True, None) for n in range(10_000)]
    firsts: Counter[int] = Counter()
    for seed in range(400):
        pool = CasePool(cases, lambda c: True, random.Random(seed))
        case = pool.draw()
        assert case is not None
        firsts[case.id // 2_500] += 1  # which quarter of the list the first case came from
    assert all(60 < firsts[quarter] < 140 for quarter in range(4)), firsts


def test_a_supervisee_draw_finds_the_few_it_may_take_and_no_one_twice() -> None:
    people = [
        RosterEntry(1, "SVM", "Team 00", None, True),
        RosterEntry(2, "SW", "Team 00", 1, True),
        RosterEntry(3, "SW", "Team 00", 1, True),
        RosterEntry(4, "SW", "Team 01", 9, True),
        RosterEntry(5, "SW", "Team 01", 9, True),  # audited against this standard lately
        RosterEntry(9, "SVM", "Team 01", None, True),
    ]
    taken: set[int] = set()
    pool = SuperviseePool(people, {5}, taken, random.Random("s"))
    assert pool.draw(1, 2) == [4]  # not their own supervisees, nor 5: one short
    assert sorted(pool.draw(9, 3)) == [2, 3]  # 4 is taken now
    assert taken == {2, 3, 4}
    assert pool.draw(1, 1) == []
