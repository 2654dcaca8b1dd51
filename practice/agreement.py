"""How far moderators agreed with auditors, from counted pairs of ratings.

Agreement is the share of pairs where the moderator's rating was the auditor's, and Cohen's
kappa over the four ratings, which discounts the agreement expected by chance; below
`MIN_KAPPA_PAIRS` pairs kappa is "too few to judge". An auditor is listed as rated markedly
lower or higher by moderators when at least `MIN_SHIFT_PAIRS` of their ratings (N/A aside)
were moderated and the moderators' ratings differ from theirs by half a level or more on
average (Below 1, Meets 2, Exceeds 3).

Everything here works on counts ((auditor's rating, moderator's rating) -> how many), so a
report over years of moderation holds a few dozen numbers, not a pair per rating moderated.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

LEVELS = {"below": 1, "meets": 2, "exceeds": 3}
MIN_KAPPA_PAIRS = 10
MIN_SHIFT_PAIRS = 5
MARKED_SHIFT = 0.5

# (auditor's rating, moderator's rating) -> how many pairs
PairCounts = Mapping[tuple[str, str], int]
# (auditor, auditor's rating, moderator's rating) -> how many pairs
AuditorPairCounts = Mapping[tuple[int | None, str, str], int]


def percent(count: int, total: int) -> Decimal:
    """Return count/total as a percentage rounded half up to one decimal (0 when total is 0)."""
    if total == 0:
        return Decimal("0.0")
    return (Decimal(count) * 100 / Decimal(total)).quantize(Decimal("0.1"), ROUND_HALF_UP)


@dataclass(frozen=True)
class Agreement:
    """How often moderators agreed, and Cohen's kappa."""

    pairs: int
    agreed: int
    kappa: float | None
    verdict: str

    @property
    def agreement(self) -> Decimal:
        return percent(self.agreed, self.pairs)


@dataclass(frozen=True)
class AuditorShift:
    auditor_id: int
    pairs: int
    lowered: int
    raised: int
    mean_shift: float

    @property
    def direction(self) -> str:
        return "lowered" if self.mean_shift < 0 else "raised"


def counted_kappa(counts: PairCounts) -> float | None:
    """Return Cohen's kappa for counted pairs of two raters' ratings, or None if undefined."""
    n = sum(counts.values())
    if n == 0:
        return None
    observed = sum(count for (a, b), count in counts.items() if a == b) / n
    first: Counter[str] = Counter()
    second: Counter[str] = Counter()
    for (a, b), count in counts.items():
        first[a] += count
        second[b] += count
    expected = sum(first[k] * second.get(k, 0) for k in first) / (n * n)
    if expected == 1:
        return None  # both raters used one rating only: chance explains everything
    return (observed - expected) / (1 - expected)


def kappa_verdict(kappa: float | None, pairs: int) -> str:
    """Return the plain-words reading of kappa (Landis and Koch's bands)."""
    if pairs < MIN_KAPPA_PAIRS:
        return "too few to judge"
    if kappa is None:
        return "cannot be measured (one rating used throughout)"
    if kappa < 0:
        return "poor (less than chance)"
    for ceiling, words in ((0.2, "slight"), (0.4, "fair"), (0.6, "moderate"), (0.8, "substantial")):
        if kappa <= ceiling:
            return words
    return "almost perfect"


def counted_agreement(counts: PairCounts) -> Agreement:
    """Return how far two sets of ratings agree, from counted pairs."""
    kappa = counted_kappa(counts)
    pairs = sum(counts.values())
    return Agreement(
        pairs=pairs,
        agreed=sum(count for (a, b), count in counts.items() if a == b),
        kappa=kappa if pairs >= MIN_KAPPA_PAIRS else None,
        verdict=kappa_verdict(kappa, pairs),
    )


def counted_shifts(counts: AuditorPairCounts) -> list[AuditorShift]:
    """Return auditors whose ratings moderators markedly lowered or raised, biggest first."""
    # auditor -> [pairs, sum of differences, lowered, raised]
    tally: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for (auditor_id, auditors_rating, moderators_rating), count in counts.items():
        if auditor_id is None:
            continue
        auditors, moderators = LEVELS.get(auditors_rating), LEVELS.get(moderators_rating)
        if auditors is None or moderators is None:
            continue
        difference = moderators - auditors
        found = tally[auditor_id]
        found[0] += count
        found[1] += difference * count
        found[2] += count if difference < 0 else 0
        found[3] += count if difference > 0 else 0
    shifts = []
    for auditor_id, (pairs, total, lowered, raised) in tally.items():
        mean = total / pairs
        if pairs >= MIN_SHIFT_PAIRS and abs(mean) >= MARKED_SHIFT:
            shifts.append(AuditorShift(auditor_id, pairs, lowered, raised, round(mean, 2)))
    return sorted(shifts, key=lambda s: (-abs(s.mean_shift), s.auditor_id))
