"""The Practice Quality Board's monthly report as one self-contained HTML page.

The page has no external CSS, scripts, fonts or images: styles are inline and the charts are
inline SVG, so it can be e-mailed, saved to SharePoint or printed as it is. Percentages are
shown as the Board's reports have always shown them: one decimal place, a whole number
without ".0" ("5%"), and in the outcome tables a zero as "-". Everything else that is a
percentage shows zero as "0%", because a dash there would read as "not known".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from practice.board_pack import PackWords
from practice.dates import short_date
from practice.month import month_label, short_month
from practice.report import (
    MARKED_SHIFT,
    MIN_KAPPA_PAIRS,
    MIN_SHIFT_PAIRS,
    RATINGS,
    SMALL_NUMBERS_CAUTION,
    ActionFacts,
    CompletedRow,
    CriterionRow,
    FeedbackQuote,
    Report,
    StandardTable,
    TrendPoint,
)

TEMPLATES = Path(__file__).with_name("templates")

RATING_LABELS = {"below": "Below", "meets": "Meets", "exceeds": "Exceeds", "not_applicable": "N/A"}
RATING_WORDS = {
    "below": "below",
    "meets": "meets",
    "exceeds": "exceeds",
    "not_applicable": "not applicable",
}
# Okabe and Ito's palette, which people with any common colour blindness can tell apart;
# N/A is a light grey so that it reads as "not counted for or against".
RATING_COLOURS = {
    "below": "#D55E00",
    "meets": "#56B4E9",
    "exceeds": "#009E73",
    "not_applicable": "#D9D9D9",
}
TREND_COLOURS = {"good": "#0072B2", "below": "#D55E00"}
KIND_HEADINGS = {"sampled": "Case audits (sampled)", "self": "Self audits", "peer": "Peer audits"}


def template_environment() -> Environment:
    """Return a Jinja2 environment over the report templates, autoescaping everything."""
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["percent"] = format_percent
    environment.filters["short_date"] = short_date
    return environment


def format_percent(value: Decimal, zero: str = "-") -> str:
    """Return '4.5%', '5%' for 5.0, and `zero` ('-' as the Board's tables show it) for 0."""
    if value == 0:
        return zero
    if value == value.to_integral_value():
        return f"{int(value)}%"
    return f"{value.quantize(Decimal('0.1'))}%"


@dataclass(frozen=True)
class BarSegment:
    """One rating's share of a 100% stacked bar, in SVG user units (0-100)."""

    rating: str
    label: str
    colour: str
    x: float
    width: float
    tooltip: str


@dataclass(frozen=True)
class OutcomeRow:
    """A criterion's row in an outcome table, with its bar."""

    row: CriterionRow
    cells: list[tuple[str, int]]
    segments: list[BarSegment]
    aria_label: str


@dataclass(frozen=True)
class OutcomeTable:
    """A standard's outcome table."""

    table: StandardTable
    anchor: str
    rows: list[OutcomeRow]


@dataclass(frozen=True)
class FeedbackMonth:
    """The feedback quotes of one month."""

    month: str
    heading: str
    quotes: list[tuple[FeedbackQuote, str]]


@dataclass(frozen=True)
class TrendChart:
    """A criterion's trend: a small table and a line chart of two series."""

    criterion_id: str
    text: str
    points: list[tuple[TrendPoint, Decimal]]
    width: int
    good_line: str
    below_line: str
    dots: list[tuple[float, float, float]]
    month_labels: list[tuple[float, str]]
    aria_label: str


def render_report_html(
    report: Report,
    *,
    title: str,
    generated_on: date,
    names: Mapping[int, str],
    pack: PackWords | None = None,
    edition: str = "",
    since: str = "",
    draft: str = "",
) -> str:
    """Return the Board's report (or its pack, with the Board's words) as one printable page.

    `edition` names a published pack's version; `since` says what changed in a live report
    since the month's pack was published; `draft` marks a pack not yet published (its owners'
    preview) with a banner saying so, on screen and printed.
    """
    standard_titles = _standard_titles(report.completed)
    trend = [
        _trend_chart(criterion_id, _criterion_text(report, criterion_id), points)
        for criterion_id, points in report.trend.items()
        if len(points) > 1
    ]
    template = template_environment().get_template("report.html")
    return template.render(
        report=report,
        pack=pack or PackWords(),
        edition=edition,
        since=since,
        draft=draft,
        title=title,
        generated_on=generated_on,
        intro=_intro(report),
        completed=_completed_rows(report.completed),
        voluntary=[
            (standard, standard_titles.get(standard, ""), count)
            for standard, count in sorted(report.voluntary_completed.items())
        ],
        outcome_tables=[_outcome_table(table) for table in report.tables],
        feedback_months=_feedback_months(report.feedback, standard_titles, report.completed),
        kinds=[(kind, KIND_HEADINGS[kind]) for kind in report.kinds],
        action_themes=_action_themes(report.actions),
        small_numbers_caution=SMALL_NUMBERS_CAUTION,
        shifts=[
            (shift, names.get(shift.auditor_id, f"Auditor {shift.auditor_id}"))
            for shift in report.auditor_shifts
        ],
        trend=trend,
        has_trend_data=bool(report.trend),
        labels=RATING_LABELS,
        colours=RATING_COLOURS,
        trend_colours=TREND_COLOURS,
        ratings=RATINGS,
        min_kappa_pairs=MIN_KAPPA_PAIRS,
        min_shift_pairs=MIN_SHIFT_PAIRS,
        marked_shift=MARKED_SHIFT,
    )


def _intro(report: Report) -> str:
    total = report.total_completed
    if total == 0:
        return "No requested audits were completed in this period."
    audits = "audit was" if total == 1 else "audits were"
    if report.first_month == report.last_month:
        return f"In {report.period_label}, {total} practice quality {audits} completed."
    first, last = month_label(report.first_month), month_label(report.last_month)
    return f"Between {first} and {last}, a total of {total} practice quality {audits} completed."


def _completed_rows(rows: Sequence[CompletedRow]) -> list[tuple[CompletedRow, bool]]:
    """Return each row with whether it shows its month: the first row of a month does."""
    # As in the Board's table, a month's additional audits sit under its timetable row with
    # the month left blank; keyed on the month, not the flag, so no month goes unlabelled.
    shown: list[tuple[CompletedRow, bool]] = []
    previous = None
    for row in rows:
        shown.append((row, row.month != previous))
        previous = row.month
    return shown


def _standard_titles(completed: Sequence[CompletedRow]) -> dict[int, str]:
    return {row.standard: row.focus for row in completed if not row.additional}


def _outcome_table(table: StandardTable) -> OutcomeTable:
    suffix = "-additional" if table.additional else ""
    anchor = f"standard-{table.standard}-{table.month}{suffix}"
    return OutcomeTable(table, anchor, [_outcome_row(row) for row in table.criteria])


def _outcome_row(row: CriterionRow) -> OutcomeRow:
    cells = [(format_percent(row.percents[r]), row.counts[r]) for r in RATINGS]
    return OutcomeRow(row, cells, bar_segments(row), bar_label(row))


def bar_segments(row: CriterionRow) -> list[BarSegment]:
    """Return the stacked bar's segments, sized from the counts so they always fill 100."""
    segments: list[BarSegment] = []
    if row.answered == 0:
        return segments
    x = 0.0
    for rating in RATINGS:
        count = row.counts[rating]
        if count == 0:
            continue
        # Widths from counts, not from the rounded percentages, which need not add up to 100.
        width = 100 * count / row.answered
        tooltip = f"{RATING_LABELS[rating]}: {format_percent(row.percents[rating], '0%')} ({count})"
        segments.append(
            BarSegment(rating, RATING_LABELS[rating], RATING_COLOURS[rating], x, width, tooltip)
        )
        x += width
    return segments


def bar_label(row: CriterionRow) -> str:
    """Return the bar's accessible name: the four percentages in words."""
    if row.answered == 0:
        return f"Criterion {row.criterion_id}: no audit answered this criterion"
    shares = ", ".join(
        f"{format_percent(row.percents[r], '0%')} {RATING_WORDS[r]}" for r in RATINGS
    )
    audits = "audit" if row.answered == 1 else "audits"
    return f"Criterion {row.criterion_id}, {row.answered} {audits}: {shares}"


def _feedback_months(
    quotes: Sequence[FeedbackQuote],
    standard_titles: Mapping[int, str],
    completed: Sequence[CompletedRow],
) -> list[FeedbackMonth]:
    """Return the quotes by month, those of a month's additional audits apart under its focus."""
    # As the Board's report keeps January 2024's safeguarding quotes apart: the words
    # gathered by the audits the Board added to a month are about what it added them for.
    focus = {(row.month, row.standard): row.focus for row in completed if row.additional}
    groups: dict[tuple[str, bool, int], list[tuple[FeedbackQuote, str]]] = {}
    for quote in sorted(quotes, key=lambda q: (q.month, q.additional, q.standard, q.audit_id)):
        title = standard_titles.get(quote.standard)
        where = f"Standard {quote.standard}" + (f" – {title}" if title else "")
        if quote.team:
            where += f", {quote.team}"
        key = (quote.month, quote.additional, quote.standard if quote.additional else 0)
        groups.setdefault(key, []).append((quote, where))
    months = []
    for (month, additional, standard), members in groups.items():
        heading = f"Sample feedback gathered – {short_month(month)}"
        if additional:
            heading += f": {focus.get((month, standard), f'Standard {standard}')}"
        months.append(FeedbackMonth(month, heading, members))
    return months


def _action_themes(actions: Sequence[ActionFacts]) -> list[tuple[str, list[ActionFacts]]]:
    """Return the actions grouped by theme, in the report's order (standards by number)."""
    themes: dict[str, list[ActionFacts]] = {}
    for action in actions:
        themes.setdefault(action.theme, []).append(action)
    return list(themes.items())


def _criterion_text(report: Report, criterion_id: str) -> str:
    for table in report.tables:
        for row in table.criteria:
            if row.criterion_id == criterion_id:
                return row.text
    return f"Criterion {criterion_id}"


def meets_or_exceeds(point: TrendPoint) -> Decimal:
    """Return % Meets + % Exceeds as the sum of the two percentages the report shows."""
    return point.percents["meets"] + point.percents["exceeds"]


# The trend chart's drawing area, in SVG user units: a y axis from 0% to 100% on the left,
# and room for a month label under each point.
CHART_LEFT, CHART_TOP, CHART_PLOT_HEIGHT, CHART_MONTH_WIDTH = 40, 10, 80, 64


def _trend_chart(criterion_id: str, text: str, points: Sequence[TrendPoint]) -> TrendChart:
    width = CHART_LEFT + CHART_MONTH_WIDTH * len(points)
    step = CHART_MONTH_WIDTH

    def y(value: Decimal) -> float:
        return round(CHART_TOP + CHART_PLOT_HEIGHT * (1 - float(value) / 100), 1)

    xs = [round(CHART_LEFT + step * (index + 0.5), 1) for index in range(len(points))]
    good = [meets_or_exceeds(p) for p in points]
    below = [p.percents["below"] for p in points]
    dots = [(x, y(g), y(b)) for x, g, b in zip(xs, good, below, strict=True)]
    words = "; ".join(
        f"{p.month_label}: {format_percent(g, '0%')} meets or exceeds, "
        f"{format_percent(p.percents['below'], '0%')} below"
        for p, g in zip(points, good, strict=True)
    )
    return TrendChart(
        criterion_id=criterion_id,
        text=text,
        points=list(zip(points, good, strict=True)),
        width=width,
        good_line=" ".join(f"{x},{gy}" for x, gy, _ in dots),
        below_line=" ".join(f"{x},{by}" for x, _, by in dots),
        dots=dots,
        month_labels=[(x, p.month_label) for x, p in zip(xs, points, strict=True)],
        aria_label=f"Trend for criterion {criterion_id}. {words}",
    )
