"""Choosing what an auditor audits: a case at random, or a colleague for a peer audit."""

from __future__ import annotations

import random
from array import array
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import NamedTuple, Protocol, TypeVar, overload

T = TypeVar("T")


class SampledCase(Protocol):
    """A case as far as sampling needs to know it: a `CaseCandidate`, or a row so named."""

    @property
    def id(self) -> int: ...
    @property
    def allocated_worker_id(self) -> int | None: ...
    @property
    def open(self) -> bool: ...
    @property
    def closed_on(self) -> date | None: ...


class DrawnCase(NamedTuple):
    """A case read from `CaseColumns`."""

    id: int
    allocated_worker_id: int | None
    open: bool
    closed_on: date | None


class CaseColumns(Sequence[DrawnCase]):
    """A long case list held as columns of numbers, each case built only when asked for.

    A case list of 100,000 as objects takes some 20 MB; a month's draw looks at a few
    thousand of them.
    """

    NO_WORKER = -1
    NOT_CLOSED = 0

    def __init__(self) -> None:
        self._ids = array("q")
        self._workers = array("q")
        self._open = bytearray()
        self._closed = array("l")  # date ordinals

    def append(
        self, case_id: int, worker_id: int | None, is_open: bool, closed_on: date | None
    ) -> None:
        """Add a case at the end."""
        self._ids.append(case_id)
        self._workers.append(self.NO_WORKER if worker_id is None else worker_id)
        self._open.append(1 if is_open else 0)
        self._closed.append(self.NOT_CLOSED if closed_on is None else closed_on.toordinal())

    def __len__(self) -> int:
        return len(self._ids)

    @overload
    def __getitem__(self, index: int) -> DrawnCase: ...
    @overload
    def __getitem__(self, index: slice) -> list[DrawnCase]: ...

    def __getitem__(self, index: int | slice) -> DrawnCase | list[DrawnCase]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        worker = self._workers[index]
        closed = self._closed[index]
        return DrawnCase(
            self._ids[index],
            None if worker == self.NO_WORKER else worker,
            bool(self._open[index]),
            None if closed == self.NOT_CLOSED else date.fromordinal(closed),
        )


@dataclass(frozen=True)
class CaseCandidate:
    """A case as far as sampling needs to know it."""

    id: int
    team: str
    allocated_worker_id: int | None
    open: bool
    closed_on: date | None


@dataclass(frozen=True)
class StaffCandidate:
    """A member of staff as far as choosing a peer or supervisee needs to know them."""

    id: int
    role_code: str
    team: str
    supervisor_id: int | None
    active: bool


def is_recent_enough(case: SampledCase, today: date, recently_closed_days: int) -> bool:
    """Return whether a case is open, or closed within the last `recently_closed_days`."""
    if case.open:
        return True
    return case.closed_on is not None and case.closed_on >= today - timedelta(
        days=recently_closed_days
    )


def eligible_cases(
    cases: Iterable[CaseCandidate],
    *,
    auditor_id: int,
    today: date,
    recently_closed_days: int,
    audited_recently: Collection[int],
) -> list[CaseCandidate]:
    """Return the cases an auditor may be given: recent, not their own, not audited lately."""
    return [
        case
        for case in cases
        if is_recent_enough(case, today, recently_closed_days)
        and case.allocated_worker_id != auditor_id
        and case.id not in audited_recently
    ]


def eligible_peers(
    staff: Iterable[StaffCandidate], auditor: StaffCandidate
) -> list[StaffCandidate]:
    """Return the colleagues an auditor may peer-audit: same role, another team, active."""
    return [
        person
        for person in staff
        if person.active
        and person.id != auditor.id
        and person.role_code == auditor.role_code
        and person.team != auditor.team
    ]


def eligible_supervisees(
    staff: Iterable[StaffCandidate], auditor: StaffCandidate, audited_recently: Collection[int]
) -> list[StaffCandidate]:
    """Return whose supervision records a manager may audit: not their own supervisees."""
    return [
        person
        for person in staff
        if person.active
        and person.id != auditor.id
        and person.supervisor_id is not None
        and person.supervisor_id != auditor.id
        and person.id not in audited_recently
    ]


def choose(candidates: Sequence[T], rng: random.Random) -> T | None:
    """Return one candidate at random, or None if there are none."""
    return rng.choice(candidates) if candidates else None
