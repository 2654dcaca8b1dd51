"""The Board's report as data: an XLSX workbook, one CSV file and a JSON document.

The workbook and the CSV file hold the same tables, in this order, with the same columns:

- Completed: Month (YYYY-MM, or "Total" on the last row) | Month label | Audit focus |
  Standard | Kind ("timetable", "additional" or "voluntary") | Audits completed | Sampled |
  Self | Peer (how many of them were case audits, self audits and peer audits; blank for
  voluntary audits, which are counted per standard). Voluntary
  audits are counted per standard over the whole period, so their month is blank; the Total
  row counts timetable and additional audits only, as the Board's table does.
- Outcomes: one row per criterion of each standard table: Month | Standard | Additional |
  Heading | Audits | Criterion | Text | Answered | Below | Meets | Exceeds | N/A (counts) |
  Below % | Meets % | Exceeds % | N/A %.
- Completion by role, Completion by team: Role or Team | Requested | On time | Late |
  Not done | Still open | Completion rate %; the team table adds Caution, the small-numbers
  caution on a team with fewer than 5 audits requested (blank otherwise).
- Feedback: Month | Month label | Standard | Team | Audit | Feedback.
- Actions: Action | Theme | Description | Owner | Due | Status | Logged | Closed.
- Moderation: Criterion ("Overall" on the last row) | Text | Pairs | Agreed | Agreement % |
  Kappa (blank when too few pairs or undefined) | Verdict.
- Auditor shifts: Auditor ID | Auditor | Ratings moderated | Lowered | Raised |
  Average shift (levels, moderator minus auditor) | Direction.
- Trend: Criterion | Month | Month label | Answered | Below % | Meets % | Exceeds % | N/A % |
  Meets + Exceeds % (every point, including criteria audited in one month only).

In the workbook each table is a sheet whose header row is bold and frozen; percentages are
numbers (0.045 for 4.5%) formatted "0.0%" and dates are dates. The CSV file (RFC 4180, CRLF
line ends) opens with a "# Report" section (Field, Value: First month, Last month, Period,
Scope, and Caution when a team's report rests on fewer than 5 audits) and then has one
section per table: a line "# <table name>", the header row, the rows
and a blank line. In it percentages are percent numbers with one decimal ("4.5"), kappa has
two decimals, dates are ISO (YYYY-MM-DD) and yes/no columns say "yes" or "no". It is UTF-8
with a byte order mark, so that Excel reads the dashes and curly quotes of feedback.

Both hold words people typed or imported (feedback, names, teams, learning actions), so
neither may turn them into formulas: in the workbook every text cell is a string cell, never
a formula; in the CSV file a text cell that starts with =, +, -, @, a tab or a carriage
return gets a leading apostrophe (OWASP's advice on CSV injection), which spreadsheets show
as text. Numbers are never changed, so a negative shift stays a number.

The JSON document (`report_to_json`) has this shape; percentages are numbers with one
decimal (4.5), kappa and shifts have two decimals, and dates are ISO strings or null:

    {
      "version": 1,
      "period": {"first_month": "2023-09", "last_month": "2024-01",
                 "label": "September 2023 to January 2024"},
      "scope": "All teams",
      "caution": null, or the small-numbers caution of a team's report of fewer than 5 audits,
      "completed": {
        "rows": [{"month", "month_label", "focus", "standard", "additional", "completed",
                  "by_kind": {"sampled", "self", "peer"}}],
        "total": int,
        "voluntary": [{"standard": int, "completed": int}]
      },
      "outcomes": [{"month", "month_label", "standard", "heading", "additional", "audits",
                    "criteria": [{"criterion_id", "text", "answered",
                                  "counts": {"below", "meets", "exceeds", "not_applicable"},
                                  "percents": {same keys: numbers}}]}],
      "completion": {"by_role": [ROW], "by_team": [ROW]},
          ROW = {"group", "requested", "on_time", "late", "not_done", "still_open", "rate"};
          a team's ROW adds "caution": null, or the small-numbers caution (fewer than 5
          requested)
      "feedback": [{"audit_id", "month", "standard", "team", "text"}],
      "actions": [{"id", "theme", "action", "owner", "due_on", "status", "logged_on",
                   "closed_on"}],
      "moderation": {
        "criteria": [{"criterion_id", "text", "pairs", "agreed", "agreement", "kappa",
                      "verdict"}],
        "overall": {"pairs", "agreed", "agreement", "kappa", "verdict"} or null,
        "auditor_shifts": [{"auditor_id", "auditor", "pairs", "lowered", "raised",
                            "mean_shift", "direction"}]
      },
      "trend": {"<criterion id>": [{"month", "month_label", "answered",
                                     "percents": {...}, "meets_or_exceeds"}]}
    }
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from copy import copy
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import Cell as SheetCell
from openpyxl.styles import Alignment, Font
from openpyxl.styles.cell_style import StyleArray
from openpyxl.utils import get_column_letter

from practice.month import month_label
from practice.report import (
    AUDIT_KINDS,
    RATINGS,
    SMALL_NUMBERS_CAUTION,
    Agreement,
    CompletionRow,
    Report,
)
from reports.html import RATING_LABELS, meets_or_exceeds

JSON_VERSION = 1
PERCENT_FORMAT = "0.0%"
DATE_FORMAT = "d mmm yyyy"
TWO_DECIMALS_FORMAT = "0.00"
# Columns wider than this wrap instead, so a criterion's text does not make a sheet unusable.
WIDEST_COLUMN = 60
# What makes a spreadsheet read a CSV cell as a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Cell = str | int | float | Decimal | date | bool | None


@dataclass(frozen=True)
class Percent:
    """A percentage (4.5 for 4.5%): a number in the workbook, one decimal in the CSV file."""

    value: Decimal


@dataclass(frozen=True)
class TwoDecimals:
    """A number shown to two decimals (kappa, a mean shift); None leaves the cell blank."""

    value: float | None


Value = Cell | Percent | TwoDecimals


@dataclass
class Table:
    """One table of the report: a sheet of the workbook, a section of the CSV file."""

    name: str
    header: list[str]
    rows: list[list[Value]] = field(default_factory=list)
    last_row_is_total: bool = False


def report_tables(report: Report, *, names: Mapping[int, str]) -> list[Table]:
    """Return the report's tables in the order the workbook and the CSV file show them."""
    return [
        _completed(report),
        _outcomes(report),
        _completion("Completion by role", "Role", report.completion_by_role),
        _completion("Completion by team", "Team", report.completion_by_team, caution=True),
        _feedback(report),
        _actions(report),
        _moderation(report),
        _shifts(report, names),
        _trend(report),
    ]


def render_report_xlsx(report: Report, *, names: Mapping[int, str]) -> bytes:
    """Return the report as an XLSX workbook with one sheet per table."""
    workbook = Workbook()
    workbook.remove(workbook.active)
    workbook.properties.title = f"Practice quality audits: {report.period_label} ({report.scope})"
    workbook.properties.creator = "PQF Audit Bot"
    for table in report_tables(report, names=names):
        _write_sheet(workbook, table)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def render_report_csv(report: Report, *, names: Mapping[int, str]) -> bytes:
    """Return the report as one CSV file of sections (see the module docstring)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["# Report"])
    writer.writerow(["Field", "Value"])
    writer.writerow(["First month", _csv_text(report.first_month)])
    writer.writerow(["Last month", _csv_text(report.last_month)])
    writer.writerow(["Period", _csv_text(report.period_label)])
    writer.writerow(["Scope", _csv_text(report.scope)])
    if report.small_numbers:
        writer.writerow(["Caution", SMALL_NUMBERS_CAUTION])
    writer.writerow([])
    for table in report_tables(report, names=names):
        writer.writerow([f"# {table.name}"])
        writer.writerow(table.header)
        writer.writerows([_csv_value(value) for value in row] for row in table.rows)
        writer.writerow([])
    return buffer.getvalue().encode("utf-8-sig")


def report_to_json(report: Report, *, names: Mapping[int, str]) -> dict[str, Any]:
    """Return the report as JSON-serialisable data (shape in the module docstring)."""
    return {
        "version": JSON_VERSION,
        "period": {
            "first_month": report.first_month,
            "last_month": report.last_month,
            "label": report.period_label,
        },
        "scope": report.scope,
        "caution": SMALL_NUMBERS_CAUTION if report.small_numbers else None,
        "completed": {
            "rows": [
                {
                    "month": row.month,
                    "month_label": row.month_label,
                    "focus": row.focus,
                    "standard": row.standard,
                    "additional": row.additional,
                    "completed": row.completed,
                    "by_kind": {kind: row.by_kind.get(kind, 0) for kind in AUDIT_KINDS},
                }
                for row in report.completed
            ],
            "total": report.total_completed,
            "voluntary": [
                {"standard": standard, "completed": count}
                for standard, count in sorted(report.voluntary_completed.items())
            ],
        },
        "outcomes": [
            {
                "month": table.month,
                "month_label": month_label(table.month),
                "standard": table.standard,
                "heading": table.heading,
                "additional": table.additional,
                "audits": table.audits,
                "criteria": [
                    {
                        "criterion_id": row.criterion_id,
                        "text": row.text,
                        "answered": row.answered,
                        "counts": {r: row.counts[r] for r in RATINGS},
                        "percents": {r: _number(row.percents[r]) for r in RATINGS},
                    }
                    for row in table.criteria
                ],
            }
            for table in report.tables
        ],
        "completion": {
            "by_role": [_completion_json(row) for row in report.completion_by_role],
            "by_team": [
                _completion_json(row)
                | {"caution": SMALL_NUMBERS_CAUTION if row.small_numbers else None}
                for row in report.completion_by_team
            ],
        },
        "feedback": [
            {
                "audit_id": quote.audit_id,
                "month": quote.month,
                "standard": quote.standard,
                "team": quote.team,
                "text": quote.text,
            }
            for quote in report.feedback
        ],
        "actions": [
            {
                "id": action.id,
                "theme": action.theme,
                "action": action.action,
                "owner": action.owner,
                "due_on": _iso(action.due_on),
                "status": action.status,
                "logged_on": _iso(action.logged_on),
                "closed_on": _iso(action.closed_on),
            }
            for action in report.actions
        ],
        "moderation": {
            "criteria": [
                {"criterion_id": row.criterion_id, "text": row.text, **_agreement(row.result)}
                for row in report.moderation
            ],
            "overall": (
                _agreement(report.moderation_overall) if report.moderation_overall else None
            ),
            "auditor_shifts": [
                {
                    "auditor_id": shift.auditor_id,
                    "auditor": names.get(shift.auditor_id, f"Auditor {shift.auditor_id}"),
                    "pairs": shift.pairs,
                    "lowered": shift.lowered,
                    "raised": shift.raised,
                    "mean_shift": round(shift.mean_shift, 2),
                    "direction": shift.direction,
                }
                for shift in report.auditor_shifts
            ],
        },
        "trend": {
            criterion_id: [
                {
                    "month": point.month,
                    "month_label": point.month_label,
                    "answered": point.answered,
                    "percents": {r: _number(point.percents[r]) for r in RATINGS},
                    "meets_or_exceeds": _number(meets_or_exceeds(point)),
                }
                for point in points
            ]
            for criterion_id, points in report.trend.items()
        },
    }


# -- the tables ---------------------------------------------------------------------------


def _completed(report: Report) -> Table:
    table = Table(
        "Completed",
        ["Month", "Month label", "Audit focus", "Standard", "Kind", "Audits completed"]
        + [kind.capitalize() for kind in AUDIT_KINDS],
        last_row_is_total=True,
    )
    for row in report.completed:
        cells: list[Value] = [
            row.month,
            row.month_label,
            row.focus,
            row.standard,
            "additional" if row.additional else "timetable",
            row.completed,
        ]
        table.rows.append(cells + [row.by_kind.get(kind, 0) for kind in AUDIT_KINDS])
    titles = {row.standard: row.focus for row in report.completed if not row.additional}
    for standard, count in sorted(report.voluntary_completed.items()):
        focus = titles.get(standard, f"Standard {standard}")
        table.rows.append([None, None, focus, standard, "voluntary", count, None, None, None])
    total: list[Value] = ["Total", None, None, None, None, report.total_completed]
    table.rows.append(total + [report.completed_of_kind(kind) for kind in AUDIT_KINDS])
    return table


def _outcomes(report: Report) -> Table:
    table = Table(
        "Outcomes",
        ["Month", "Standard", "Additional", "Heading", "Audits", "Criterion", "Text", "Answered"]
        + [RATING_LABELS[r] for r in RATINGS]
        + [f"{RATING_LABELS[r]} %" for r in RATINGS],
    )
    for standard in report.tables:
        for row in standard.criteria:
            table.rows.append(
                [
                    standard.month,
                    standard.standard,
                    standard.additional,
                    standard.heading,
                    standard.audits,
                    row.criterion_id,
                    row.text,
                    row.answered,
                    *(row.counts[r] for r in RATINGS),
                    *(Percent(row.percents[r]) for r in RATINGS),
                ]
            )
    return table


def _completion(
    name: str, group: str, rows: Sequence[CompletionRow], *, caution: bool = False
) -> Table:
    table = Table(
        name,
        [group, "Requested", "On time", "Late", "Not done", "Still open", "Completion rate %"]
        + (["Caution"] if caution else []),
    )
    for row in rows:
        cells: list[Value] = [row.group, row.requested, row.on_time, row.late, row.not_done,
                              row.still_open, Percent(row.rate)]  # fmt: skip
        if caution:
            cells.append(SMALL_NUMBERS_CAUTION if row.small_numbers else "")
        table.rows.append(cells)
    return table


def _feedback(report: Report) -> Table:
    table = Table("Feedback", ["Month", "Month label", "Standard", "Team", "Audit", "Feedback"])
    for quote in report.feedback:
        table.rows.append(
            [
                quote.month,
                month_label(quote.month),
                quote.standard,
                quote.team,
                quote.audit_id,
                quote.text,
            ]
        )
    return table


def _actions(report: Report) -> Table:
    table = Table(
        "Actions",
        ["Action", "Theme", "Description", "Owner", "Due", "Status", "Logged", "Closed"],
    )
    for action in report.actions:
        table.rows.append(
            [
                action.id,
                action.theme,
                action.action,
                action.owner,
                action.due_on,
                action.status,
                action.logged_on,
                action.closed_on,
            ]
        )
    return table


def _moderation(report: Report) -> Table:
    table = Table(
        "Moderation",
        ["Criterion", "Text", "Pairs", "Agreed", "Agreement %", "Kappa", "Verdict"],
        last_row_is_total=report.moderation_overall is not None,
    )
    results = [(row.criterion_id, row.text, row.result) for row in report.moderation]
    if report.moderation_overall is not None:
        results.append(("Overall", "All criteria", report.moderation_overall))
    for criterion_id, text, result in results:
        table.rows.append(
            [
                criterion_id,
                text,
                result.pairs,
                result.agreed,
                Percent(result.agreement),
                TwoDecimals(result.kappa),
                result.verdict,
            ]
        )
    return table


def _shifts(report: Report, names: Mapping[int, str]) -> Table:
    table = Table(
        "Auditor shifts",
        ["Auditor ID", "Auditor", "Ratings moderated", "Lowered", "Raised",
         "Average shift", "Direction"],
    )  # fmt: skip
    for shift in report.auditor_shifts:
        table.rows.append(
            [
                shift.auditor_id,
                names.get(shift.auditor_id, f"Auditor {shift.auditor_id}"),
                shift.pairs,
                shift.lowered,
                shift.raised,
                TwoDecimals(shift.mean_shift),
                shift.direction,
            ]
        )
    return table


def _trend(report: Report) -> Table:
    table = Table(
        "Trend",
        ["Criterion", "Month", "Month label", "Answered"]
        + [f"{RATING_LABELS[r]} %" for r in RATINGS]
        + ["Meets + Exceeds %"],
    )
    for criterion_id, points in report.trend.items():
        for point in points:
            table.rows.append(
                [
                    criterion_id,
                    point.month,
                    point.month_label,
                    point.answered,
                    *(Percent(point.percents[r]) for r in RATINGS),
                    Percent(meets_or_exceeds(point)),
                ]
            )
    return table


# -- writing ------------------------------------------------------------------------------


def _write_sheet(workbook: Workbook, table: Table) -> None:
    sheet = workbook.create_sheet(table.name)
    sheet.append(table.header)
    bold = Font(bold=True)
    aligned = Alignment(vertical="top", wrap_text=True)
    for cell in sheet[1]:
        cell.font = bold
        cell.alignment = aligned
    # Each cell's style is copied from one made once per number format: setting a style
    # looks it up among the workbook's styles by value, which for a ten-year report's
    # 27,000 cells took seconds. Cells are found by their row number: `sheet.max_row` and
    # `sheet[row]` walk every cell of the sheet each time they are asked.
    styles: dict[str, StyleArray] = {}

    def style(number_format: str) -> StyleArray:
        if number_format not in styles:
            made = SheetCell(sheet)
            made.alignment = aligned
            if number_format:
                made.number_format = number_format
            styles[number_format] = made._style
        return copy(styles[number_format])

    widths = [len(heading) for heading in table.header]
    for number, row in enumerate(table.rows, start=2):
        sheet.append([_xlsx_value(value) for value in row])
        for index, value in enumerate(row):
            cell = sheet.cell(row=number, column=index + 1)
            if isinstance(value, Percent):
                cell._style = style(PERCENT_FORMAT)
            elif isinstance(value, TwoDecimals):
                cell._style = style(TWO_DECIMALS_FORMAT)
            elif isinstance(value, date):
                cell._style = style(DATE_FORMAT)
            else:
                cell._style = style("")
                if isinstance(value, str):
                    # openpyxl makes any text starting with "=" a formula: text stays text.
                    cell.data_type = "s"
            widths[index] = max(widths[index], len(_csv_value(value)))
    if table.last_row_is_total and table.rows:
        for index in range(len(table.header)):
            sheet.cell(row=len(table.rows) + 1, column=index + 1).font = bold
    sheet.freeze_panes = "A2"
    if table.rows:
        sheet.auto_filter.ref = sheet.dimensions
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = min(width + 2, WIDEST_COLUMN)


def _xlsx_value(value: Value) -> Cell:
    if isinstance(value, Percent):
        # Excel's percent format multiplies by 100: store the fraction. The Decimal division
        # is exact, so 4.5 becomes 0.045 and not 0.045000000000000005.
        return float(value.value / 100)
    if isinstance(value, TwoDecimals):
        return value.value
    if isinstance(value, Decimal):
        return float(value)
    return value


def _csv_value(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, Percent):
        return f"{value.value.quantize(Decimal('0.1'))}"
    if isinstance(value, TwoDecimals):
        return "" if value.value is None else f"{value.value:.2f}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return _csv_text(value)
    return str(value)


def _csv_text(value: str) -> str:
    """Return text that a spreadsheet opening the CSV file will not take for a formula."""
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


# -- JSON helpers -------------------------------------------------------------------------


def _number(value: Decimal) -> float:
    return float(value.quantize(Decimal("0.1")))


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _completion_json(row: CompletionRow) -> dict[str, Any]:
    return {
        "group": row.group,
        "requested": row.requested,
        "on_time": row.on_time,
        "late": row.late,
        "not_done": row.not_done,
        "still_open": row.still_open,
        "rate": _number(row.rate),
    }


def _agreement(result: Agreement) -> dict[str, Any]:
    return {
        "pairs": result.pairs,
        "agreed": result.agreed,
        "agreement": _number(result.agreement),
        "kappa": None if result.kappa is None else round(result.kappa, 2),
        "verdict": result.verdict,
    }
