"""Drawing the sample of completed audits to moderate, and reading the moderators' verdicts."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class CompletedAudit:
    """A submitted audit as far as sampling needs to know it."""

    audit_id: int
    team: str


def sample_size(completed: int, percent: float, minimum: int) -> int:
    """Return how many audits to moderate: the percentage, at least the minimum, at most all."""
    return min(completed, max(math.ceil(completed * percent / 100), minimum))


def draw_sample(
    completed: Sequence[CompletedAudit], *, percent: float, minimum: int, seed: str
) -> list[int]:
    """Return the audit ids drawn for moderation: every team first (where possible), then any."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible draw, not a secret
    size = sample_size(len(completed), percent, minimum)
    by_team: dict[str, list[int]] = defaultdict(list)
    for audit in completed:
        by_team[audit.team].append(audit.audit_id)
    teams = sorted(by_team)
    rng.shuffle(teams)
    chosen: list[int] = []
    for team in teams[:size]:
        chosen.append(rng.choice(by_team[team]))
    rest = [a.audit_id for a in completed if a.audit_id not in set(chosen)]
    rng.shuffle(rest)
    chosen += rest[: size - len(chosen)]
    return sorted(chosen)
