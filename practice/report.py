"""The Practice Quality Board's report: the figures, computed from plain facts about audits.

Percentages are of the audits that answered a criterion (an audit that left a criterion
blank, as some earlier forms did, is not in its denominator), rounded half up to one
decimal place, as the Board's reports have always shown them. N/A is a rating like the
others: it counts in the denominator and has its own column.

Agreement between auditors and moderators is measured per criterion by the share of pairs
where the moderator agreed, and by Cohen's kappa over the four ratings, which discounts the
agreement expected by chance. Below `MIN_KAPPA_PAIRS` pairs kappa is "too few to judge".
An auditor is listed as rated markedly lower or higher by moderators when at least
`MIN_SHIFT_PAIRS` of their ratings (N/A aside) were moderated and the moderators' ratings
differ from theirs by half a level or more on average (Below 1, Meets 2, Exceeds 3).

An audit counted as completed whose ratings were lost (imported with `ratings_lost`) counts
in "audits completed" and nowhere else: not in its standard's table's number of audits.
A team's figures from fewer than `SMALL_NUMBERS` audits carry a small-numbers caution.
A learning action's theme that is a standard's number shows as the standard's name, and
actions sort by standard number, then the other themes by name.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from itertools import chain

from practice.framework import Framework
from practice.month import Month, month_label, short_month

RATINGS = ("below", "meets", "exceeds", "not_applicable")
# Who audited whose work, in the order the Board's tables show them.
AUDIT_KINDS = ("sampled", "self", "peer")
LEVELS = {"below": 1, "meets": 2, "exceeds": 3}
MIN_KAPPA_PAIRS = 10
MIN_SHIFT_PAIRS = 5
MARKED_SHIFT = 0.5
SMALL_NUMBERS = 5
SMALL_NUMBERS_CAUTION = (
    f"Fewer than {SMALL_NUMBERS} audits: too few to read much into the percentages."
)


@dataclass(frozen=True)
class AuditFacts:
    """One audit as the report sees it (no names, no evidence)."""

    audit_id: int
    month: str
    standard: int
    kind: str
    status: str
    due_on: date
    submitted_on: date | None
    auditor_id: int | None
    auditor_role: str
    team: str
    subject_id: int | None
    ratings: Mapping[str, str]
    voluntary: bool = False
    additional: bool = False
    imported: bool = False
    sampled_for_moderation: bool = False

    @property
    def completed(self) -> bool:
        return self.submitted_on is not None


@dataclass(frozen=True)
class FeedbackQuote:
    """Words from a person or carer that the auditor marked as suitable for reporting."""

    audit_id: int
    month: str
    standard: int
    team: str
    text: str
    additional: bool = False  # from one of the month's additional audits


@dataclass(frozen=True)
class ModerationPair:
    """One criterion rated by an auditor and then by a moderator."""

    audit_id: int
    auditor_id: int | None
    criterion_id: str
    auditor_rating: str
    moderator_rating: str


@dataclass(frozen=True)
class ActionFacts:
    """A learning action logged by the Board."""

    id: int
    theme: str
    action: str
    owner: str
    due_on: date | None
    status: str
    logged_on: date
    closed_on: date | None


@dataclass(frozen=True)
class ReportScope:
    """Which audits a report covers: filters for drill-down (all None: everything)."""

    label: str = "All teams"
    teams: frozenset[str] | None = None
    auditor_id: int | None = None
    subject_id: int | None = None
    person_id: int | None = None  # audits this person did or whose work was audited
    people: frozenset[int] | None = None  # audits any of these did, or of their work
    moderation_sample: bool = False  # also the audits drawn for moderation (moderators)

    @property
    def whole(self) -> bool:
        """Return whether the scope is every audit (the Board's own report)."""
        return (
            self.teams is None and self.auditor_id is None and self.subject_id is None
            and self.person_id is None and self.people is None
        )  # fmt: skip

    def includes(self, audit: AuditFacts) -> bool:
        """Return whether the audit is within this scope."""
        if self.teams is not None and audit.team not in self.teams:
            return False
        if self.auditor_id is not None and audit.auditor_id != self.auditor_id:
            return False
        if self.subject_id is not None and audit.subject_id != self.subject_id:
            return False
        if self.moderation_sample and audit.sampled_for_moderation:
            return True
        if self.people is not None and not (
            audit.auditor_id in self.people or audit.subject_id in self.people
        ):
            return False
        return self.person_id is None or self.person_id in (audit.auditor_id, audit.subject_id)


@dataclass(frozen=True)
class CompletedRow:
    month: str
    month_label: str
    focus: str
    standard: int
    additional: bool
    completed: int
    by_kind: Mapping[str, int] = field(default_factory=dict)  # AUDIT_KINDS: how many


@dataclass(frozen=True)
class CriterionRow:
    criterion_id: str
    text: str
    counts: dict[str, int]
    answered: int
    percents: dict[str, Decimal]


@dataclass(frozen=True)
class StandardTable:
    month: str
    standard: int
    heading: str
    additional: bool
    audits: int
    criteria: list[CriterionRow]


@dataclass(frozen=True)
class CompletionRow:
    group: str
    requested: int
    on_time: int
    late: int
    not_done: int  # not submitted, and the due date has passed
    still_open: int = 0  # not submitted, not yet due

    @property
    def rate(self) -> Decimal:
        """Return the share of requested audits completed (on time or late), in percent."""
        return percent(self.on_time + self.late, self.requested)

    @property
    def small_numbers(self) -> bool:
        """Return whether the row rests on too few audits to read much into."""
        return self.requested < SMALL_NUMBERS


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
class ModerationRow:
    criterion_id: str
    text: str
    result: Agreement


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


@dataclass(frozen=True)
class TrendPoint:
    month: str
    month_label: str
    answered: int
    percents: dict[str, Decimal]


@dataclass
class Report:
    """Everything the Board's report shows for a period and scope."""

    first_month: str
    last_month: str
    scope: str
    completed: list[CompletedRow] = field(default_factory=list)
    voluntary_completed: dict[int, int] = field(default_factory=dict)
    tables: list[StandardTable] = field(default_factory=list)
    completion_by_role: list[CompletionRow] = field(default_factory=list)
    completion_by_team: list[CompletionRow] = field(default_factory=list)
    feedback: list[FeedbackQuote] = field(default_factory=list)
    actions: list[ActionFacts] = field(default_factory=list)
    moderation: list[ModerationRow] = field(default_factory=list)
    moderation_overall: Agreement | None = None
    auditor_shifts: list[AuditorShift] = field(default_factory=list)
    trend: dict[str, list[TrendPoint]] = field(default_factory=dict)

    team_scope: bool = False  # the report is of one or some teams' audits

    @property
    def total_completed(self) -> int:
        return sum(row.completed for row in self.completed)

    @property
    def kinds(self) -> list[str]:
        """Return the kinds of audit the completed rows hold, in the Board's order."""
        held = {kind for row in self.completed for kind, count in row.by_kind.items() if count}
        return [kind for kind in AUDIT_KINDS if kind in held]

    def completed_of_kind(self, kind: str) -> int:
        """Return how many requested audits of this kind were completed."""
        return sum(row.by_kind.get(kind, 0) for row in self.completed)

    @property
    def small_numbers(self) -> bool:
        """Return whether a team's report rests on too few audits to read much into."""
        return self.team_scope and self.total_completed < SMALL_NUMBERS

    @property
    def period_label(self) -> str:
        first, last = month_label(self.first_month), month_label(self.last_month)
        return first if first == last else f"{first} to {last}"


def percent(count: int, total: int) -> Decimal:
    """Return count/total as a percentage rounded half up to one decimal (0 when total is 0)."""
    if total == 0:
        return Decimal("0.0")
    return (Decimal(count) * 100 / Decimal(total)).quantize(Decimal("0.1"), ROUND_HALF_UP)


def criterion_row(criterion_id: str, text: str, ratings: Iterable[str]) -> CriterionRow:
    """Return the counts and percentages of each rating among the answers given."""
    return counted_row(criterion_id, text, Counter(ratings))


def counted_row(criterion_id: str, text: str, counts: Mapping[str, int]) -> CriterionRow:
    """Return the row for the number of answers of each rating (anything else is left out)."""
    counted = {r: counts.get(r, 0) for r in RATINGS}
    answered = sum(counted.values())
    return CriterionRow(
        criterion_id, text, counted, answered, {r: percent(counted[r], answered) for r in RATINGS}
    )


def cohens_kappa(pairs: Sequence[tuple[str, str]]) -> float | None:
    """Return Cohen's kappa for two raters' categorical ratings, or None if undefined."""
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(1 for a, b in pairs if a == b) / n
    first = Counter(a for a, _ in pairs)
    second = Counter(b for _, b in pairs)
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


def agreement(pairs: Sequence[tuple[str, str]]) -> Agreement:
    """Return how far two sets of ratings agree."""
    kappa = cohens_kappa(pairs)
    return Agreement(
        pairs=len(pairs),
        agreed=sum(1 for a, b in pairs if a == b),
        kappa=kappa if len(pairs) >= MIN_KAPPA_PAIRS else None,
        verdict=kappa_verdict(kappa, len(pairs)),
    )


def auditor_shifts(pairs: Iterable[ModerationPair]) -> list[AuditorShift]:
    """Return auditors whose ratings moderators markedly lowered or raised, biggest first."""
    by_auditor: dict[int, list[int]] = defaultdict(list)
    for pair in pairs:
        if pair.auditor_id is None:
            continue
        auditors, moderators = LEVELS.get(pair.auditor_rating), LEVELS.get(pair.moderator_rating)
        if auditors is not None and moderators is not None:
            by_auditor[pair.auditor_id].append(moderators - auditors)
    shifts = []
    for auditor_id, differences in by_auditor.items():
        mean = sum(differences) / len(differences)
        if len(differences) >= MIN_SHIFT_PAIRS and abs(mean) >= MARKED_SHIFT:
            shifts.append(
                AuditorShift(
                    auditor_id,
                    len(differences),
                    sum(1 for d in differences if d < 0),
                    sum(1 for d in differences if d > 0),
                    round(mean, 2),
                )
            )
    return sorted(shifts, key=lambda s: (-abs(s.mean_shift), s.auditor_id))


def action_theme(framework: Framework, theme: str) -> str:
    """Return the theme as the report shows it: a standard's number (or name) as its name."""
    number = theme.strip().removeprefix("Standard").strip()
    found = framework.standard(int(number)) if number.isdigit() else None
    if found is None:
        found = next(
            (s for s in framework.standards if s.title.casefold() == theme.strip().casefold()),
            None,
        )
    return found.title if found else theme


def _action_order(framework: Framework, action: ActionFacts) -> tuple[int, str, date, int]:
    titles = {s.title.casefold(): s.number for s in framework.standards}
    number = titles.get(action.theme.casefold(), len(framework.standards) + 1)
    return number, action.theme.casefold(), action.due_on or date.max, action.id


def _focus(framework: Framework, month: str, standard: int, additional: bool) -> str:
    if additional:
        named = next(
            (
                a.title
                for a in framework.additional_audits
                if a.month == month and a.standard == standard
            ),
            None,
        )
        if named:
            return named
    found = framework.standard(standard)
    title = found.title if found else f"Standard {standard}"
    return f"{title} (addition)" if additional else title


def build_report(
    framework: Framework,
    *,
    first_month: str,
    last_month: str,
    audits: Sequence[AuditFacts],
    feedback: Sequence[FeedbackQuote] = (),
    moderation: Sequence[ModerationPair] = (),
    actions: Sequence[ActionFacts] = (),
    scope: ReportScope | None = None,
    role_titles: Mapping[str, str] | None = None,
    as_of: date | None = None,
    actions_until: date | None = None,
) -> Report:
    """Return the report for the months first..last (inclusive) within a scope.

    `as_of` is the day the report is made: an audit not submitted is "not done" once its
    due date has passed, and "still open" before (all are past due without it).
    `actions_until` (the Board's pack: the day it is published) shows the actions logged up
    to that day, not only those logged by the period's end.
    """
    scope = scope or ReportScope()
    in_scope = [a for a in audits if first_month <= a.month <= last_month and scope.includes(a)]
    ids = {a.audit_id for a in in_scope}
    report = Report(first_month, last_month, scope.label, team_scope=scope.teams is not None)
    requested = [a for a in in_scope if not a.voluntary]
    done = [a for a in requested if a.completed]

    groups: dict[tuple[str, int, bool], list[AuditFacts]] = defaultdict(list)
    for audit in done:
        groups[(audit.month, audit.standard, audit.additional)].append(audit)
    # One pass over every rating, however long the period, counting (criterion, rating)
    # pairs per group; the tables and the trend are both read from these counts.
    answers = {
        key: Counter(chain.from_iterable(audit.ratings.items() for audit in members))
        for key, members in groups.items()
    }
    # Each month's timetabled standard first, then its additional audits.
    for (month, standard, additional), members in sorted(
        groups.items(), key=lambda item: (item[0][0], item[0][2], item[0][1])
    ):
        kinds = Counter(audit.kind for audit in members)
        report.completed.append(
            CompletedRow(month, month_label(month), _focus(framework, month, standard, additional),
                         standard, additional, len(members),
                         {kind: kinds.get(kind, 0) for kind in AUDIT_KINDS})
        )  # fmt: skip
        found = framework.standard(standard)
        rated = sum(1 for audit in members if audit.ratings)
        if found is None or rated == 0:
            continue
        heading = (
            f"{found.title} – additional audits ({short_month(month)})"
            if additional
            else f"PQF Standard {standard} – {found.title} ({short_month(month)})"
        )
        counted = answers[(month, standard, additional)]
        rows = [
            counted_row(c.id, c.text, {r: counted[(c.id, r)] for r in RATINGS})
            for c in found.criteria
        ]
        report.tables.append(StandardTable(month, standard, heading, additional, rated, rows))
    for audit in in_scope:
        if audit.voluntary and audit.completed:
            report.voluntary_completed[audit.standard] = (
                report.voluntary_completed.get(audit.standard, 0) + 1
            )

    titles = role_titles or {r.code: r.title for r in framework.roles}
    tracked = [a for a in requested if not a.imported]
    report.completion_by_role = _completion(
        tracked, lambda a: titles.get(a.auditor_role, a.auditor_role), as_of
    )
    report.completion_by_team = _completion(tracked, lambda a: a.team or "No team recorded", as_of)

    report.feedback = [q for q in feedback if q.audit_id in ids]
    # An action shows until it is closed: logged by the period's end (or by the day the pack
    # is published), not closed before the period.
    first_day, last_day = Month.parse(first_month).first_day, Month.parse(last_month).last_day
    logged_by = max(last_day, actions_until) if actions_until else last_day
    shown = [
        replace(a, theme=action_theme(framework, a.theme))
        for a in actions
        if a.logged_on <= logged_by and (a.closed_on is None or a.closed_on >= first_day)
    ]
    report.actions = sorted(shown, key=lambda a: _action_order(framework, a))

    scoped_pairs = [p for p in moderation if p.audit_id in ids]
    by_criterion: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for pair in scoped_pairs:
        by_criterion[pair.criterion_id].append((pair.auditor_rating, pair.moderator_rating))
    for _, criterion in framework.criteria():
        if criterion.id in by_criterion:
            report.moderation.append(
                ModerationRow(criterion.id, criterion.text, agreement(by_criterion[criterion.id]))
            )
    if scoped_pairs:
        report.moderation_overall = agreement(
            [(p.auditor_rating, p.moderator_rating) for p in scoped_pairs]
        )
    report.auditor_shifts = auditor_shifts(scoped_pairs)

    # (criterion, month) -> counts: a month's additional audits count in its trend point.
    tallies: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for (month, _, _), counted in answers.items():
        for (criterion_id, rating), count in counted.items():
            tallies[(criterion_id, month)][rating] += count
    # Only months with completed audits can have a point: walking the months that hold data,
    # not every month of the period, keeps the work bounded by the data whatever the period.
    answered_months = sorted({month for month, _, _ in answers})
    for _, criterion in framework.criteria():
        points = []
        for month in answered_months:
            tally = tallies.get((criterion.id, month))
            if tally:
                row = counted_row(criterion.id, criterion.text, tally)
                points.append(TrendPoint(month, short_month(month), row.answered, row.percents))
        if points:
            report.trend[criterion.id] = points
    return report


def _completion(
    audits: Sequence[AuditFacts], group_of: Callable[[AuditFacts], str], as_of: date | None
) -> list[CompletionRow]:
    grouped: dict[str, list[AuditFacts]] = defaultdict(list)
    for audit in audits:
        grouped[group_of(audit)].append(audit)
    rows = []
    for group, members in sorted(grouped.items()):
        on_time = late = not_done = still_open = 0
        for audit in members:
            if audit.submitted_on is not None:
                if audit.submitted_on <= audit.due_on:
                    on_time += 1
                else:
                    late += 1
            elif as_of is not None and as_of <= audit.due_on:
                still_open += 1
            else:
                not_done += 1
        rows.append(CompletionRow(group, len(members), on_time, late, not_done, still_open))
    return rows
