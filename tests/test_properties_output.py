"""Properties of what the bot puts out, over generated input (Hypothesis, derandomised for CI).

- Report ranges: whatever months a person types, sends in a link or gives the command line,
  the answer is a bounded period or a clear refusal, and the figures never walk the period.
- Export round trips: any text in a team, a name, feedback or a learning action comes back
  from the workbook and the CSV file exactly as written, and never as a formula.
- Cards: any text in a person's field is shown only in elements that read no markdown.

About 1,000 examples in all, in a few seconds.
"""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from bot.commands import ReportMonthsError, report_months
from bot.links import InvalidLinkError, LinkClaims, sign, verify
from cards.audit_cards import AuditHeading, SummaryItem, case_card, step_done_card, submitted_card
from cards.cycle_cards import DigestRow, SampleEntry, digest_card, moderation_sample_card
from cards.help_cards import help_card
from cards.report_cards import report_summary_card
from practice.audit_steps import AuditKind
from practice.framework import Framework, load_framework
from practice.month import EARLIEST, MONTHS_AHEAD, TEN_YEARS, Month
from practice.report import build_report
from practice.report_summary import OwnAudit
from reports.tabular import render_report_csv, render_report_xlsx
from tests.test_report_rendering import (
    FORMULA_STARTS,
    NUMBER,
    audit,
    formula_cells,
    hostile_report,
)

TODAY = date(2026, 11, 30)
NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
SECRET = "a-secret-long-enough-for-hmac-signing"
FRAMEWORK: Framework = load_framework(None)


def examples(count: int) -> Any:
    """Return the settings of a property: `count` examples, the same ones on every run."""
    return settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


# A month as someone might type it: mostly plausible, often absurd (0001-01, 9999-12, 2023-13).
typed_months = st.one_of(
    st.builds(lambda y, m: f"{y:04d}-{m:02d}", st.integers(1990, 2040), st.integers(1, 12)),
    st.builds(lambda y, m: f"{y:04d}-{m:02d}", st.integers(0, 9999), st.integers(0, 99)),
)


def _bounded(first: Month, last: Month, longest: int) -> bool:
    latest = Month.of(TODAY).plus(MONTHS_AHEAD)
    return Month.parse(EARLIEST) <= first <= last <= latest and first.months_to(last) + 1 <= longest


@examples(300)
@given(first=typed_months, last=typed_months, separator=st.sampled_from([" to ", " ", "  to  "]))
def test_a_typed_report_period_is_bounded_or_refused_at_once(
    first: str, last: str, separator: str
) -> None:
    started = time.perf_counter()
    refusal = ""
    try:
        months = report_months(f"report {first}{separator}{last}", today=TODAY)
    except ReportMonthsError as error:
        months, refusal = None, str(error)
    if months is None:
        assert refusal  # a clear message, said to the person
    else:
        assert _bounded(*months, TEN_YEARS)
        assert (str(months[0]), str(months[1])) == (first, last)
    assert time.perf_counter() - started < 0.5  # walking the period took minutes


@examples(200)
@given(first=typed_months, last=typed_months, longest=st.sampled_from([TEN_YEARS, 180, 240]))
def test_a_signed_report_link_is_bounded_or_refused(first: str, last: str, longest: int) -> None:
    token = sign(LinkClaims("report", 3, NOW + timedelta(minutes=5), first, last), SECRET)
    try:
        claims = verify(token, SECRET, NOW, longest)
    except InvalidLinkError:
        return
    assert claims.first_month is not None
    assert claims.last_month is not None
    assert _bounded(Month.parse(claims.first_month), Month.parse(claims.last_month), longest)


@examples(100)
@given(
    first=st.builds(Month, st.integers(1, 9999), st.integers(1, 12)),
    span=st.integers(0, 120_000),
    audited=st.lists(st.builds(Month, st.integers(2000, 2030), st.integers(1, 12)), max_size=5),
)
def test_the_figures_take_no_longer_for_a_longer_period(
    first: Month, span: int, audited: list[Month]
) -> None:
    last = first.plus(min(span, first.months_to(Month(9999, 12))))
    audits = [
        audit(n, {"1.1": "meets"}, month=str(month)) for n, month in enumerate(audited, start=1)
    ]
    started = time.perf_counter()
    report = build_report(FRAMEWORK, first_month=str(first), last_month=str(last), audits=audits)
    assert time.perf_counter() - started < 0.5
    points = [p.month for p in report.trend.get("1.1", [])]
    assert points == sorted({str(m) for m in audited if first <= m <= last})


# Text as people type it, with the characters spreadsheets read as the start of a formula.
# (Control characters other than tab, new line and carriage return are refused on the way
# in; an XLSX file cannot hold them at all.)
typed_text = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40),
    st.builds(
        lambda start, rest: start + rest,
        st.sampled_from((*FORMULA_STARTS, " =", "'", '"', "==")),
        st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=40),
    ),
).filter(lambda words: words.strip() != "")


@examples(250)
@given(words=typed_text)
def test_a_csv_export_gives_back_every_word_and_no_formula(words: str) -> None:
    report, names = hostile_report(FRAMEWORK, words)
    data = render_report_csv(report, names=names)
    assert data.startswith(b"\xef\xbb\xbf")
    cells = [c for row in csv.reader(io.StringIO(data.decode("utf-8-sig"))) for c in row]
    assert not [c for c in cells if c.startswith(FORMULA_STARTS) and not NUMBER.fullmatch(c)]
    written = f"'{words}" if words.startswith(FORMULA_STARTS) else words
    assert cells.count(written) >= 5  # team, name, feedback, action, theme: nothing lost


@examples(100)
@given(words=typed_text)
def test_an_xlsx_export_gives_back_every_word_and_no_formula(words: str) -> None:
    report, names = hostile_report(FRAMEWORK, words)
    data = render_report_xlsx(report, names=names)
    assert formula_cells(data) == []
    workbook = load_workbook(io.BytesIO(data))
    values = [c.value for sheet in workbook.worksheets for row in sheet.iter_rows() for c in row]
    # XML reads a carriage return as a new line: the only change a workbook makes to text.
    assert values.count(words.replace("\r\n", "\n").replace("\r", "\n")) >= 5


def _cards(words: str) -> list[dict[str, Any]]:
    heading = AuditHeading(7, 3, "Strengths-based assessments", AuditKind.SELF, "November 2026",
                           date(2026, 11, 30), words, words, False)  # fmt: skip
    items = [SummaryItem("case", "The case", (("Team", words),), (("Said", words),), True)]
    return [
        case_card(
            heading, seq=1, mode="confirm_case", allocated_worker=words, team=words, choices=[]
        ),
        submitted_card(heading, items=items, submitted_on=date(2026, 11, 24)),
        step_done_card(heading, label="The case", outcome=words),
        help_card(name=words, greeting=True, outstanding=1, moderator=True),
        digest_card(
            month_label="November 2026",
            due_on=date(2026, 11, 30),
            today=date(2026, 11, 25),
            rows=[DigestRow(words, "done", words)],
        ),
        moderation_sample_card(
            month_label="November 2026",
            until=date(2026, 12, 14),
            moderator_name=words,
            entries=[SampleEntry(1, "Standard 3", words, words, "case audit", words, False, False)],
        ),
        report_summary_card(
            period="November 2026",
            scope=words,
            completed=1,
            completion="1 of 1",
            below=[],
            own=[OwnAudit(1, "Standard 3", words, "Meets 1", True)],
            report_url="https://x.example",
            minutes=15,
        ),
    ]


def _markdown_strings(value: Any) -> list[str]:
    """Return every string of a card that Teams reads as markdown."""
    found: list[str] = []
    if isinstance(value, list):
        for item in value:
            found += _markdown_strings(item)
    elif isinstance(value, dict):
        if value.get("type") == "TextBlock":
            found.append(value["text"])
        if value.get("type") == "FactSet":
            found += [part for fact in value["facts"] for part in (fact["title"], fact["value"])]
        for item in value.values():
            found += _markdown_strings(item)
    return found


@examples(100)
@given(words=st.text(min_size=1, max_size=30))
def test_a_persons_words_never_reach_an_element_that_reads_markdown(words: str) -> None:
    marked = f"⟦{words.replace(' ', '_')}⟧"  # one word, so the greeting shows all of it
    for card in _cards(marked):
        assert not [s for s in _markdown_strings(card) if "⟦" in s]
