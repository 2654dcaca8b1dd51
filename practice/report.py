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
from decimal import Decimal

from practice.agreement import (
    LEVELS,
    MARKED_SHIFT,
    MIN_KAPPA_PAIRS,
    MIN_SHIFT_PAIRS,
    Agreement,
    AuditorShift,
    counted_agreement,
    counted_kappa,
    counted_shifts,
    kappa_verdict,
    percent,
)
from practice.framework import Framework
from practice.month import Month, month_label, short_month

__all__ = [
    "LEVELS", "MARKED_SHIFT", "MIN_KAPPA_PAIRS", "MIN_SHIFT_PAIRS", "Agreement", "AuditorShift",
    "kappa_verdict", "percent",
]  # fmt: skip

RATINGS = ("below", "meets", "exceeds", "not_applicable")
# Who audited whose work, in the order the Board's tables show them.
AUDIT_KINDS = ("sampled", "self", "peer")
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
    # The audit rated at least one criterion Below. It says how the practice was rated, not
    # whether the words praise or criticise; the pack's shortlist spreads across both.
    rated_below: bool = False


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
class ModerationRow:
    criterion_id: str
    text: str
    result: Agreement


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
    return counted_kappa(Counter(pairs))


def agreement(pairs: Sequence[tuple[str, str]]) -> Agreement:
    """Return how far two sets of ratings agree."""
    return counted_agreement(Counter(pairs))


def auditor_shifts(pairs: Iterable[ModerationPair]) -> list[AuditorShift]:
    """Return auditors whose ratings moderators markedly lowered or raised, biggest first."""
    return counted_shifts(
        Counter((p.auditor_id, p.auditor_rating, p.moderator_rating) for p in pairs)
    )


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


# How a requested audit stands against its due date, as the completion tables count it.
TIMELINESS = ("on_time", "late", "not_done", "still_open")


def timeliness(submitted_on: date | None, due_on: date, as_of: date | None) -> str:
    """Return "on_time", "late", "not_done" (past due) or "still_open" (not yet due).

    Without `as_of` every audit not submitted is past due.
    """
    if submitted_on is not None:
        return "on_time" if submitted_on <= due_on else "late"
    if as_of is not None and as_of <= due_on:
        return "still_open"
    return "not_done"


@dataclass
class GroupCounts:
    """One month's standard (timetabled or additional): its completed requested audits."""

    kinds: Counter[str] = field(default_factory=Counter)  # kind -> audits completed
    rated: int = 0  # of them, audits with at least one rating
    ratings: Counter[tuple[str, str]] = field(default_factory=Counter)  # (criterion, rating)


@dataclass
class ReportCounts:
    """What a report's figures are made from: the audits in its months and scope, counted.

    However long the period, this holds counts only: a few per month, standard and criterion,
    team and role, and moderated criterion.
    """

    # (month, standard, additional) -> the group's counts
    groups: dict[tuple[str, int, bool], GroupCounts] = field(default_factory=dict)
    voluntary: Counter[int] = field(default_factory=Counter)  # standard -> completed
    # (auditor's role code, team, timeliness) -> requested audits, imported ones aside
    timeliness: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    # Moderated pairs, counted two ways (all the report shows of them):
    # (criterion, auditor's rating, moderator's rating) -> pairs
    moderated_criteria: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    # (auditor, auditor's rating, moderator's rating) -> pairs
    moderated_auditors: Counter[tuple[int | None, str, str]] = field(default_factory=Counter)

    def moderated(
        self, auditor_id: int | None, criterion_id: str, auditors: str, moderators: str, pairs: int
    ) -> None:
        """Count moderated pairs of one auditor's ratings of one criterion."""
        self.moderated_criteria[(criterion_id, auditors, moderators)] += pairs
        self.moderated_auditors[(auditor_id, auditors, moderators)] += pairs

    def group(self, month: str, standard: int, additional: bool) -> GroupCounts:
        """Return a group's counts, making them if new."""
        key = (month, standard, additional)
        found = self.groups.get(key)
        if found is None:
            found = self.groups[key] = GroupCounts()
        return found


def count_audits(
    audits: Iterable[AuditFacts], moderation: Iterable[ModerationPair], as_of: date | None
) -> ReportCounts:
    """Return the counts of audits (and moderated pairs) already chosen for a report."""
    counts = ReportCounts()
    for audit in audits:
        if audit.voluntary:
            if audit.completed:
                counts.voluntary[audit.standard] += 1
            continue
        if audit.completed:
            group = counts.group(audit.month, audit.standard, audit.additional)
            group.kinds[audit.kind] += 1
            group.rated += 1 if audit.ratings else 0
            group.ratings.update(audit.ratings.items())
        if not audit.imported:
            when = timeliness(audit.submitted_on, audit.due_on, as_of)
            counts.timeliness[(audit.auditor_role, audit.team, when)] += 1
    for pair in moderation:
        counts.moderated(
            pair.auditor_id, pair.criterion_id, pair.auditor_rating, pair.moderator_rating, 1
        )
    return counts


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
    counts = count_audits(in_scope, [p for p in moderation if p.audit_id in ids], as_of)
    return counted_report(
        framework,
        first_month=first_month,
        last_month=last_month,
        counts=counts,
        feedback=[q for q in feedback if q.audit_id in ids],
        actions=actions,
        scope=scope,
        role_titles=role_titles,
        actions_until=actions_until,
    )


def counted_report(
    framework: Framework,
    *,
    first_month: str,
    last_month: str,
    counts: ReportCounts,
    feedback: Iterable[FeedbackQuote] = (),
    actions: Iterable[ActionFacts] = (),
    scope: ReportScope | None = None,
    role_titles: Mapping[str, str] | None = None,
    actions_until: date | None = None,
) -> Report:
    """Return the report for the months first..last from the counts of its scope's audits.

    `feedback` is the quotes of the scope's audits of those months; `actions` every action,
    shown if logged by the period's end or by `actions_until` (see `build_report`).
    """
    scope = scope or ReportScope()
    report = Report(first_month, last_month, scope.label, team_scope=scope.teams is not None)
    # Each month's timetabled standard first, then its additional audits.
    for (month, standard, additional), group in sorted(
        counts.groups.items(), key=lambda item: (item[0][0], item[0][2], item[0][1])
    ):
        report.completed.append(
            CompletedRow(month, month_label(month), _focus(framework, month, standard, additional),
                         standard, additional, sum(group.kinds.values()),
                         {kind: group.kinds.get(kind, 0) for kind in AUDIT_KINDS})
        )  # fmt: skip
        found = framework.standard(standard)
        if found is None or group.rated == 0:
            continue
        heading = (
            f"{found.title} – additional audits ({short_month(month)})"
            if additional
            else f"PQF Standard {standard} – {found.title} ({short_month(month)})"
        )
        counted = group.ratings
        rows = [
            counted_row(c.id, c.text, {r: counted[(c.id, r)] for r in RATINGS})
            for c in found.criteria
        ]
        report.tables.append(StandardTable(month, standard, heading, additional, group.rated, rows))
    for standard, count in counts.voluntary.items():
        if count:
            report.voluntary_completed[standard] = count

    titles = role_titles or {r.code: r.title for r in framework.roles}
    report.completion_by_role = _completion(
        counts.timeliness, lambda role, _: titles.get(role, role)
    )
    report.completion_by_team = _completion(
        counts.timeliness, lambda _, team: team or "No team recorded"
    )

    report.feedback = list(feedback)
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

    by_criterion: dict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
    overall: Counter[tuple[str, str]] = Counter()
    for (criterion_id, auditors, moderators), count in counts.moderated_criteria.items():
        by_criterion[criterion_id][(auditors, moderators)] += count
        overall[(auditors, moderators)] += count
    by_auditor = counts.moderated_auditors
    for _, criterion in framework.criteria():
        if criterion.id in by_criterion:
            report.moderation.append(
                ModerationRow(
                    criterion.id, criterion.text, counted_agreement(by_criterion[criterion.id])
                )
            )
    if sum(overall.values()):
        report.moderation_overall = counted_agreement(overall)
    report.auditor_shifts = counted_shifts(by_auditor)

    # (criterion, month) -> counts: a month's additional audits count in its trend point.
    tallies: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for (month, _, _), group in counts.groups.items():
        for (criterion_id, rating), count in group.ratings.items():
            tallies[(criterion_id, month)][rating] += count
    # Only months with completed audits can have a point: walking the months that hold data,
    # not every month of the period, keeps the work bounded by the data whatever the period.
    answered_months = sorted({month for month, _, _ in counts.groups})
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
    counts: Mapping[tuple[str, str, str], int], group_of: Callable[[str, str], str]
) -> list[CompletionRow]:
    grouped: dict[str, Counter[str]] = defaultdict(Counter)
    for (role, team, when), count in counts.items():
        grouped[group_of(role, team)][when] += count
    return [
        CompletionRow(group, sum(tally.values()), tally["on_time"], tally["late"],
                      tally["not_done"], tally["still_open"])
        for group, tally in sorted(grouped.items())
    ]  # fmt: skip
