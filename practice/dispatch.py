"""Plan a month's audit requests for the whole roster: who audits what.

Rules (Practice Quality Framework, audit methodology):

- Managers and advanced practitioners (roles whose `audit_kind` is `sampled`) get their
  role's quota of cases drawn at random from the case list: open or recently closed, not
  their own, not audited in the last 12 months, and no case given to two auditors in a month.
  For a standard about supervision (standard 10) they draw members of staff whose
  supervision records to audit instead: not their own supervisees, not audited against
  that standard in the last 12 months.
- Practitioners (`practitioner`) get one self-audit or one peer audit, as the timetable says.
  A peer audit is of a colleague in the same role in another team; everyone in a role is
  peer-audited exactly once, and pairs from recent months are avoided. Where one team holds
  more than half of a role, some pairs have to be within a team, and say so.
- Moderators (`moderation`) get no requests: they moderate at the start of the next month.
- An additional audit the Board set for the month gives each listed role one more case audit.
- Staff on leave on the day requests go out are skipped (and listed for their manager).
- Nobody is asked for more than their role's quota of a standard in a month
  (`monthly_quota`), whatever asked them first: an earlier run, `pqf-bot request`, demo data.

The plan is a pure function of its inputs and a seed, so a draw can be repeated and
explained afterwards. Requests already made for the month (by their keys, and by how many
each auditor already has of each standard) are left out, so running the dispatch again after
a failure, or after requests made by hand, only adds what is missing.
"""

from __future__ import annotations

import random
from array import array
from collections import defaultdict, deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from practice.calendar import AuditMonth
from practice.framework import Framework
from practice.sampling import SampledCase, StaffCandidate, is_recent_enough

PAIRING_ATTEMPTS = 12


@dataclass(frozen=True)
class RosterEntry:
    """A member of staff as the dispatch sees them."""

    id: int
    role_code: str
    team: str
    supervisor_id: int | None
    active: bool
    on_leave_until: date | None = None

    def on_leave(self, day: date) -> bool:
        return self.on_leave_until is not None and self.on_leave_until >= day

    def as_candidate(self) -> StaffCandidate:
        return StaffCandidate(self.id, self.role_code, self.team, self.supervisor_id, self.active)


@dataclass(frozen=True)
class PlannedRequest:
    """One audit request the dispatch will create."""

    key: str  # its dispatch key (`dispatch_key`)
    auditor_id: int
    standard: int
    kind: str  # sampled, self or peer
    case_id: int | None = None
    subject_id: int | None = None
    note: str = ""


@dataclass(frozen=True)
class Skipped:
    """A member of staff who gets fewer requests than their quota, and why."""

    staff_id: int
    reason: str  # on_leave, no_case, no_supervisee, no_peer
    missing: int = 1


@dataclass
class DispatchPlan:
    """Everything the dispatch will ask for this month."""

    month: str
    seed: str
    requests: list[PlannedRequest] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


@dataclass(frozen=True)
class DispatchInputs:
    """What the plan is drawn from."""

    audits: Sequence[AuditMonth]
    staff: Sequence[RosterEntry]
    # The case list, or any part of it holding every case the rules allow: a reader may
    # leave out in its query cases closed too long ago or audited lately.
    cases: Sequence[SampledCase]
    cases_audited_recently: Collection[int]
    workers_audited_recently: Collection[int]  # against the month's supervision standard
    recent_peer_pairs: Collection[tuple[int, int]]
    existing_keys: Collection[str]
    cases_taken_this_month: Collection[int] = ()
    workers_taken_this_month: Collection[int] = ()
    peer_subjects_this_month: Collection[int] = ()
    # (auditor id, standard) -> the month's requests they already have, however made
    # (voluntary audits aside): the dispatch's own, `pqf-bot request`'s, demo data's.
    requested_this_month: Mapping[tuple[int, int], int] = field(default_factory=dict)


def monthly_quota(
    framework: Framework, role_code: str, standard: int, audits: Sequence[AuditMonth]
) -> int:
    """Return how many audits of a standard a role is asked for in a month.

    `audits` are the month's timetabled audits (empty outside the timetable). A standard the
    Board added for the month asks its listed roles for one; any other standard, the role's
    monthly quota. Moderators moderate: they are asked for no audits.
    """
    role = framework.role(role_code)
    if role is None or role.audit_kind not in ("sampled", "practitioner"):
        return 0
    quota = 0
    for audit in audits:
        if audit.standard != standard:
            continue
        if audit.additional:
            quota += 1 if role_code in audit.roles else 0
        else:
            quota += role.monthly_audits
    timetabled = any(a.standard == standard for a in audits)
    return quota if timetabled else role.monthly_audits


def dispatch_key(month: str, standard: int, auditor_id: int, slot: int) -> str:
    """Return the key a dispatch stores one planned request under (`AuditRequest.dispatch_key`)."""
    return f"{month}/s{standard}/a{auditor_id}/{slot}"


def plan_month(framework: Framework, inputs: DispatchInputs, seed: str) -> DispatchPlan:
    """Return the requests (and the shortfalls) for a month's audits."""
    if not inputs.audits:
        raise ValueError("no audit is timetabled for this month")
    month = inputs.audits[0].month
    requests_on = inputs.audits[0].requests_on
    plan = DispatchPlan(month=month, seed=seed)
    available = [s for s in inputs.staff if s.active]
    present = [s for s in available if not s.on_leave(requests_on)]
    plan.skipped += [Skipped(s.id, "on_leave", 0) for s in available if s.on_leave(requests_on)]
    roles = {r.code: r for r in framework.roles}
    taken_cases = set(inputs.cases_taken_this_month)
    taken_workers = set(inputs.workers_taken_this_month)
    case_pool = _case_pool(inputs, framework, requests_on, taken_cases, _rng(seed, "cases"))

    for audit in inputs.audits:
        # Each stage draws from its own generator, so one stage's draw does not depend on
        # how many numbers another used.
        rng = _rng(seed, f"standard-{audit.standard}")
        standard = framework.standard(audit.standard)
        if standard is None:
            raise ValueError(f"the calendar names standard {audit.standard}, not in the framework")
        wanted: list[tuple[RosterEntry, int]] = []
        practitioners: list[RosterEntry] = []
        for person in present:
            role = roles.get(person.role_code)
            if role is None:
                continue
            if audit.additional:
                if person.role_code in audit.roles:
                    wanted.append((person, 1))
            elif role.audit_kind == "sampled" and role.monthly_audits:
                wanted.append((person, role.monthly_audits))
            elif role.audit_kind == "practitioner" and role.monthly_audits:
                practitioners.append(person)

        rng.shuffle(wanted)
        supervision = standard.subject == "supervision"
        if supervision:
            supervisees = SuperviseePool(
                present, inputs.workers_audited_recently, taken_workers, rng
            )
        for person, quota in wanted:
            room = quota - inputs.requested_this_month.get((person.id, audit.standard), 0)
            slots = [
                slot for slot in range(1, quota + 1)
                if dispatch_key(month, audit.standard, person.id, slot) not in inputs.existing_keys
            ][: max(0, room)]  # fmt: skip
            if not slots:
                continue
            if supervision:
                picks = supervisees.draw(person.id, len(slots))
                short_reason = "no_supervisee"
            else:
                picks = _draw_cases(person, len(slots), case_pool)
                short_reason = "no_case"
            for slot, pick in zip(slots, picks, strict=False):
                key = dispatch_key(month, audit.standard, person.id, slot)
                if supervision:
                    plan.requests.append(
                        PlannedRequest(key, person.id, audit.standard, "sampled", subject_id=pick)
                    )
                else:
                    plan.requests.append(
                        PlannedRequest(key, person.id, audit.standard, "sampled", case_id=pick)
                    )
            if len(picks) < len(slots):
                plan.skipped.append(Skipped(person.id, short_reason, len(slots) - len(picks)))

        if practitioners and not audit.additional:
            _plan_practitioners(plan, audit, practitioners, inputs, _rng(seed, "peers"))
    return plan


def _rng(seed: str, stage: str) -> random.Random:
    return random.Random(f"{seed}/{stage}")  # noqa: S311 - a reproducible draw, not a secret


class CasePool:
    """The cases a month's draws may take, in a random order found one case at a time.

    Drawing a few thousand cases from a case list of a hundred thousand, shuffling (and
    checking) the whole list first would be most of the plan's work: each draw instead
    swaps a case chosen at random from those not yet drawn into place, as a Fisher-Yates
    shuffle does, and checks only that one.
    """

    def __init__(
        self,
        cases: Sequence[SampledCase],
        may_take: Callable[[SampledCase], bool],
        rng: random.Random,
    ) -> None:
        self._cases = cases
        # The shuffle moves positions, not cases, so `cases` may build each case only when
        # it is drawn (see `CaseColumns`).
        self._order = array("l", range(len(cases)))
        self._drawn = 0
        self._may_take = may_take
        self._rng = rng
        self._put_back: deque[SampledCase] = deque()

    def draw(self) -> SampledCase | None:
        """Return the next case in the random order, or None when none is left."""
        if self._put_back:
            return self._put_back.popleft()
        order = self._order
        while self._drawn < len(order):
            here = self._drawn
            there = self._rng.randrange(here, len(order))
            order[here], order[there] = order[there], order[here]
            self._drawn += 1
            case = self._cases[order[here]]
            if self._may_take(case):
                return case
        return None

    def put_back(self, cases: Sequence[SampledCase]) -> None:
        """Return cases drawn but not used to the front of the order, as they were."""
        self._put_back.extendleft(reversed(cases))


def _case_pool(
    inputs: DispatchInputs,
    framework: Framework,
    today: date,
    taken: set[int],
    rng: random.Random,
) -> CasePool:
    recent = set(inputs.cases_audited_recently)
    return CasePool(
        inputs.cases,
        lambda c: (
            is_recent_enough(c, today, framework.recently_closed_days)
            and c.id not in recent
            and c.id not in taken
        ),
        rng,
    )


def _draw_cases(person: RosterEntry, count: int, pool: CasePool) -> list[int]:
    picks: list[int] = []
    passed_over: list[SampledCase] = []
    while len(picks) < count and (case := pool.draw()) is not None:
        if case.allocated_worker_id == person.id:
            passed_over.append(case)  # their own case: someone else may have it
        else:
            picks.append(case.id)
    pool.put_back(passed_over)
    return picks


class SuperviseePool:
    """Members of staff whose supervision records a month's draws may take, at random.

    Most of a roster may be drawn for most managers, so a draw tries people at random and
    checks only them; the whole list is filtered only if the tries keep missing.
    """

    TRIES_PER_PICK = 20

    def __init__(
        self,
        present: Sequence[RosterEntry],
        audited_recently: Collection[int],
        taken: set[int],
        rng: random.Random,
    ) -> None:
        recent = set(audited_recently)
        self._ids = [s.id for s in present if s.supervisor_id is not None and s.id not in recent]
        self._supervisor = {s.id: s.supervisor_id for s in present}
        self._taken = taken
        self._rng = rng

    def draw(self, auditor_id: int, count: int) -> list[int]:
        """Return up to `count` people for this auditor: not themselves, not their supervisees."""

        def may_take(staff_id: int) -> bool:
            return (
                staff_id != auditor_id
                and self._supervisor[staff_id] != auditor_id
                and staff_id not in self._taken
            )

        picks: list[int] = []
        for _ in range(count * self.TRIES_PER_PICK if self._ids else 0):
            if len(picks) == count:
                break
            staff_id = self._ids[self._rng.randrange(len(self._ids))]
            if may_take(staff_id):
                picks.append(staff_id)
                self._taken.add(staff_id)
        if len(picks) < count:
            rest = [staff_id for staff_id in self._ids if may_take(staff_id)]
            more = self._rng.sample(rest, min(count - len(picks), len(rest)))
            picks += more
            self._taken.update(more)
        return picks


def _plan_practitioners(
    plan: DispatchPlan,
    audit: AuditMonth,
    practitioners: Sequence[RosterEntry],
    inputs: DispatchInputs,
    rng: random.Random,
) -> None:
    month, standard = plan.month, audit.standard
    todo = [
        p for p in practitioners
        if dispatch_key(month, standard, p.id, 1) not in inputs.existing_keys
        and not inputs.requested_this_month.get((p.id, standard), 0)
    ]  # fmt: skip
    if audit.practitioner_kind == "self":
        for person in todo:
            key = dispatch_key(month, standard, person.id, 1)
            plan.requests.append(
                PlannedRequest(key, person.id, standard, "self", subject_id=person.id)
            )
        return
    waiting = {p.id for p in todo}
    already_subjects = set(inputs.peer_subjects_this_month)
    by_role: dict[str, list[RosterEntry]] = defaultdict(list)
    for person in practitioners:
        by_role[person.role_code].append(person)
    for role in sorted(by_role):
        workers = by_role[role]
        recent = set(inputs.recent_peer_pairs)
        if all(w.id in waiting for w in workers) and not already_subjects & {w.id for w in workers}:
            pairs = pair_peers(workers, recent, rng)
        else:
            # Some of the role were paired by an earlier run: pair the rest with whoever
            # has not been chosen yet.
            free = [w for w in workers if w.id not in already_subjects]
            pairs = pair_remaining([w for w in workers if w.id in waiting], free, recent, rng)
        teams = {p.id: p.team for p in workers}
        for auditor_id, subject_id in sorted(pairs.items()):
            if auditor_id not in waiting:
                continue
            note = (
                "same team: no one else in this role"
                if teams[auditor_id] == teams[subject_id]
                else ""
            )
            key = dispatch_key(month, standard, auditor_id, 1)
            plan.requests.append(
                PlannedRequest(key, auditor_id, standard, "peer", subject_id=subject_id, note=note)
            )
        for person in by_role[role]:
            if person.id in waiting and person.id not in pairs:
                plan.skipped.append(Skipped(person.id, "no_peer"))


def pair_peers(
    workers: Sequence[RosterEntry],
    recent_pairs: set[tuple[int, int]],
    rng: random.Random,
) -> dict[int, int]:
    """Return auditor → colleague for a role: everyone audited once, across teams if possible.

    Workers are laid out team by team in a random order and each audits the worker `k`
    places further on. With `k` at least the size of the largest team (and no more than the
    roster less that), the two are always in different teams. Several layouts and shifts are
    tried and the one repeating the fewest recent pairs (then the fewest mutual pairs) wins.
    """
    count = len(workers)
    if count < 2:
        return {}
    teams: dict[str, list[int]] = defaultdict(list)
    for worker in workers:
        teams[worker.team].append(worker.id)
    largest = max(len(members) for members in teams.values())
    if 2 * largest <= count:
        shifts = list(range(largest, count - largest + 1))
    else:
        # One team holds most of the role: keep as many pairs across teams as possible.
        shifts = [count // 2] if count > 2 else [1]
    best: dict[int, int] = {}
    best_score: tuple[int, int] | None = None
    for _attempt in range(PAIRING_ATTEMPTS):
        names = list(teams)
        rng.shuffle(names)
        order: list[int] = []
        for name in names:
            members = teams[name][:]
            rng.shuffle(members)
            order.extend(members)
        shift = rng.choice(shifts)
        pairs = {order[i]: order[(i + shift) % count] for i in range(count)}
        repeats = sum(1 for pair in pairs.items() if pair in recent_pairs)
        mutual = sum(1 for a, b in pairs.items() if pairs.get(b) == a)
        score = (repeats, mutual)
        if best_score is None or score < best_score:
            best, best_score = pairs, score
        if score == (0, 0):
            break
    return best


def pair_remaining(
    auditors: Sequence[RosterEntry],
    subjects: Sequence[RosterEntry],
    recent_pairs: set[tuple[int, int]],
    rng: random.Random,
) -> dict[int, int]:
    """Return auditor → colleague from the colleagues still free, another team first."""
    order = list(auditors)
    rng.shuffle(order)
    free = list(subjects)
    rng.shuffle(free)
    pairs: dict[int, int] = {}
    for auditor in order:
        ranked = sorted(
            (s for s in free if s.id != auditor.id),
            key=lambda s: (s.team == auditor.team, (auditor.id, s.id) in recent_pairs),
        )
        if ranked:
            pairs[auditor.id] = ranked[0].id
            free.remove(ranked[0])
    return pairs


def recent_pairs(pairs: Iterable[tuple[int | None, int | None]]) -> set[tuple[int, int]]:
    """Return the (auditor, subject) pairs of earlier peer audits, without gaps."""
    return {(a, b) for a, b in pairs if a is not None and b is not None}
