"""A published Board's pack as an A4 PDF, made from its frozen figures and words.

The PDF is drawn with reportlab (as one audit's is, `reports.audit_export`) from the JSON
a version stored when it was published, so it shows that version whatever happened since:
the summary, audits completed by month, focus and kind, each standard's outcomes with the
Board's commentary, the chosen quotes by month (the safeguarding audits' apart), the learning
actions by standard, and moderation. Sections follow on; a table or quote is kept whole and a
heading stays with what follows it, so no page is left near blank. A draft (what publishing
now would store) is drawn the same way, marked as not published on every page.
"""

from __future__ import annotations

import io
from collections import defaultdict
from datetime import date
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import (
    CondPageBreak,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Table,
    TableStyle,
)

from reports.audit_export import (
    ACCENT,
    BAND,
    FONT,
    KEEP_WITH_HEADING,
    MARGIN,
    MUTED,
    RULE,
    register_fonts,
)
from reports.audit_export import paragraph_text as _text

TITLE = "Practice quality audits: report to the Practice Quality Board"
DRAFT = "Draft — not published"
# The draft banner's colours, as the draft page's (`reports/templates/report.html`).
DRAFT_COLOUR = colors.HexColor("#8A4B00")
DRAFT_BAND = colors.HexColor("#FFF4E0")
KIND_HEADINGS = {"sampled": "Case audits (sampled)", "self": "Self audits", "peer": "Peer audits"}
RATING_HEADINGS = {
    "below": "Below",
    "meets": "Meets",
    "exceeds": "Exceeds",
    "not_applicable": "N/A",
}


def _styles() -> dict[str, ParagraphStyle]:
    body = ParagraphStyle("body", fontName=FONT, fontSize=9.5, leading=13, spaceAfter=4)
    return {
        "title": ParagraphStyle("title", fontName=f"{FONT}-Bold", fontSize=15, leading=19,
                                textColor=ACCENT, spaceAfter=6),
        "h2": ParagraphStyle("h2", fontName=f"{FONT}-Bold", fontSize=12.5, leading=16,
                             textColor=ACCENT, spaceBefore=10, spaceAfter=5),
        "h3": ParagraphStyle("h3", fontName=f"{FONT}-Bold", fontSize=10.5, leading=14,
                             spaceBefore=7, spaceAfter=3),
        "body": body,
        "muted": ParagraphStyle("muted", parent=body, textColor=MUTED),
        "commentary": ParagraphStyle("commentary", parent=body, spaceBefore=5),
        "caption": ParagraphStyle("caption", parent=body, textColor=MUTED, fontSize=8.5,
                                  spaceAfter=7),
        "quote": ParagraphStyle("quote", parent=body, fontName=f"{FONT}-Italic", leftIndent=8,
                                borderPadding=(3, 3, 3, 6), spaceBefore=3),
        "cell": ParagraphStyle("cell", fontName=FONT, fontSize=8, leading=10),
        "cell_bold": ParagraphStyle("cell_bold", fontName=f"{FONT}-Bold", fontSize=8, leading=10),
    }  # fmt: skip


def _table(rows: list[list[Any]], widths: list[float], *, total: bool = False) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1, hAlign="LEFT")
    style = [
        ("GRID", (0, 0), (-1, -1), 0.5, RULE),
        ("BACKGROUND", (0, 0), (-1, 0), BAND),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
    ]
    if total:
        style.append(("BACKGROUND", (0, -1), (-1, -1), BAND))
    table.setStyle(TableStyle(style))
    return table


def _day(iso: str) -> str:
    return f"{date.fromisoformat(iso):%-d %B %Y}" if iso else ""


def _facts(facts: list[tuple[str, str]], s: dict[str, ParagraphStyle], width: float) -> Table:
    rows = [
        [Paragraph(label, s["cell_bold"]), Paragraph(_text(str(value)), s["cell"])]
        for label, value in facts
    ]
    table = Table(rows, colWidths=[35 * mm, width - 35 * mm], hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.5, RULE),
                ("BACKGROUND", (0, 0), (0, -1), BAND),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return table


def _percent(value: float | None, count: int) -> str:
    if not count:
        return "-"
    shown = f"{value:.1f}".removesuffix(".0") if value is not None else "-"
    return f"{shown}%<br/>({count})"


def _completed(content: dict[str, Any], s: dict[str, ParagraphStyle], width: float) -> list[Any]:
    rows = content["completed"]["rows"]
    if not rows:
        return [Paragraph("No audits were completed in this period.", s["muted"])]
    kinds = [k for k in KIND_HEADINGS if any(row["by_kind"].get(k) for row in rows)]
    head = ["Month", "Audit focus", *(KIND_HEADINGS[k] for k in kinds), "Total"]
    table: list[list[Any]] = [[Paragraph(h, s["cell_bold"]) for h in head]]
    for row in rows:
        focus = row["focus"] + (" (additional)" if row["additional"] else "")
        table.append(
            [Paragraph(_text(row["month_label"]), s["cell"]), Paragraph(_text(focus), s["cell"])]
            + [Paragraph(str(row["by_kind"].get(k, 0)), s["cell"]) for k in kinds]
            + [Paragraph(str(row["completed"]), s["cell"])]
        )
    totals = [sum(row["by_kind"].get(k, 0) for row in rows) for k in kinds]
    table.append(
        [Paragraph("Total", s["cell_bold"]), Paragraph("", s["cell"])]
        + [Paragraph(str(t), s["cell_bold"]) for t in totals]
        + [Paragraph(str(content["completed"]["total"]), s["cell_bold"])]
    )
    number = 22 * mm
    focus = width - 30 * mm - number * (len(kinds) + 1)
    return [_table(table, [30 * mm, focus] + [number] * (len(kinds) + 1), total=True)]


def _outcomes(content: dict[str, Any], s: dict[str, ParagraphStyle], width: float) -> list[Any]:
    commentary = content.get("pack", {}).get("commentary", {})
    story: list[Any] = []
    for table in content["outcomes"]:
        rows: list[list[Any]] = [
            [Paragraph("Theme and practice standards", s["cell_bold"])]
            + [Paragraph(h, s["cell_bold"]) for h in RATING_HEADINGS.values()]
            + [Paragraph("Audits", s["cell_bold"])]
        ]
        for row in table["criteria"]:
            rows.append(
                [Paragraph(_text(f"{row['criterion_id']} {row['text']}"), s["cell"])]
                + [
                    Paragraph(_percent(row["percents"][r], row["counts"][r]), s["cell"])
                    for r in RATING_HEADINGS
                ]
                + [Paragraph(str(row["answered"]), s["cell"])]
            )
        number = 19 * mm
        block: list[Any] = [
            Paragraph(_text(table["heading"]), s["h3"]),
            Paragraph(f"{table['audits']} audits completed.", s["muted"]),
            _table(rows, [width - number * 5] + [number] * 5),
        ]
        words = commentary.get(str(table["standard"])) if not table["additional"] else None
        if words:
            block.append(Paragraph(f"<b>Commentary:</b> {_text(words)}", s["commentary"]))
        story.append(KeepTogether(block))
    if not story:
        story.append(Paragraph("No ratings were recorded in this period.", s["muted"]))
    return story


def _feedback(content: dict[str, Any], s: dict[str, ParagraphStyle]) -> list[Any]:
    quotes = content["feedback"]
    if not quotes:
        return [Paragraph("No quotes were chosen for this pack.", s["muted"])]
    additional = {
        (row["month"], row["standard"]) for row in content["completed"]["rows"] if row["additional"]
    }
    groups: dict[tuple[str, bool], list[dict[str, Any]]] = defaultdict(list)
    for quote in quotes:
        groups[(quote["month"], (quote["month"], quote["standard"]) in additional)].append(quote)
    labels = {row["month"]: row["month_label"] for row in content["completed"]["rows"]}
    story: list[Any] = []
    for (month, apart), members in sorted(groups.items()):
        label = labels.get(month, month)
        heading = f"Sample feedback gathered – {label}" + (" (additional audits)" if apart else "")
        story.append(Paragraph(_text(heading), s["h3"]))
        for quote in members:
            story.append(
                KeepTogether(
                    [
                        Paragraph(f"“{_text(quote['text'])}”", s["quote"]),
                        Paragraph(
                            _text(f"Standard {quote['standard']}, {quote['team']}"), s["muted"]
                        ),
                    ]
                )
            )
    return story


def _actions(content: dict[str, Any], s: dict[str, ParagraphStyle], width: float) -> list[Any]:
    actions = content["actions"]
    if not actions:
        return [Paragraph("No learning actions were open in this period.", s["muted"])]
    story: list[Any] = []
    themes: dict[str, list[dict[str, Any]]] = {}
    for action in actions:  # already in the report's order: standard number, then theme
        themes.setdefault(action["theme"], []).append(action)
    for theme, members in themes.items():
        rows: list[list[Any]] = [
            [Paragraph(h, s["cell_bold"]) for h in ("Action", "Owner", "Due", "Status")]
        ]
        for action in members:
            rows.append(
                [
                    Paragraph(_text(action["action"]), s["cell"]),
                    Paragraph(_text(action["owner"]), s["cell"]),
                    Paragraph(action["due_on"] or "-", s["cell"]),
                    Paragraph(_text(action["status"].replace("_", " ")), s["cell"]),
                ]
            )
        story.append(
            KeepTogether(
                [
                    Paragraph(_text(theme), s["h3"]),
                    _table(rows, [width - 92 * mm, 50 * mm, 20 * mm, 22 * mm]),
                ]
            )
        )
    return story


def _moderation(content: dict[str, Any], s: dict[str, ParagraphStyle]) -> list[Any]:
    overall = content["moderation"]["overall"]
    if overall is None:
        return [Paragraph("No audits in this period were moderated.", s["muted"])]
    kappa = f", kappa {overall['kappa']}" if overall["kappa"] is not None else ""
    return [
        Paragraph(
            f"Moderators agreed with {overall['agreed']} of {overall['pairs']} ratings "
            f"({overall['agreement']}%{kappa}): {_text(overall['verdict'])}.",
            s["body"],
        )
    ]


def _section(heading: str, body: list[Any], s: dict[str, ParagraphStyle]) -> list[Any]:
    return [CondPageBreak(KEEP_WITH_HEADING), Paragraph(heading, s["h2"]), *body]


def _draft_banner(note: str, s: dict[str, ParagraphStyle], width: float) -> Table:
    """Return the box that opens a draft: not published, and what it is."""
    box = Table(
        [[Paragraph(DRAFT, s["h3"])], [Paragraph(_text(note), s["body"])]],
        colWidths=[width], hAlign="LEFT",
    )  # fmt: skip
    box.setStyle(
        TableStyle(
            [
                ("BOX", (0, 0), (-1, -1), 1.5, DRAFT_COLOUR),
                ("BACKGROUND", (0, 0), (-1, -1), DRAFT_BAND),
            ]
        )
    )
    return box


def _story(content: dict[str, Any], width: float, draft: str) -> list[Any]:
    s = _styles()
    pack = content.get("pack", {})
    published = [
        ("Published", f"Version {pack.get('version')}: {pack.get('reason', '')}"),
        ("Published on", _day(pack.get("published_on", ""))),
    ]
    if draft:
        published = [("Published", f"Not yet: this is a draft of version {pack.get('version')}")]
    facts = [("Period", content["period"]["label"]), ("Scope", content["scope"]), *published]
    story: list[Any] = [Paragraph(TITLE, s["title"])]
    if draft:
        story.append(_draft_banner(draft, s, width))
    story.append(_facts(facts, s, width))
    if pack.get("summary"):
        story += _section("Summary", [Paragraph(_text(pack["summary"]), s["body"])], s)
    story += _section("Audits completed", _completed(content, s, width), s)
    story += _section("Audit outcomes", _outcomes(content, s, width), s)
    story += _section("Feedback from people and carers", _feedback(content, s), s)
    story += _section("Learning actions", _actions(content, s, width), s)
    story += _section("Moderation", _moderation(content, s), s)
    return story


def render_pack_pdf(content: dict[str, Any], *, draft: str = "") -> bytes:
    """Return a published pack (its stored JSON) as an A4 PDF with numbered pages.

    With `draft` (what the draft is), the JSON is what publishing would store, and every page
    says "Draft — not published" at its head and foot: a page printed alone still says so.
    """
    register_fonts()
    pages = _build(content, total_pages=None, draft=draft)[1]
    return _build(content, total_pages=pages, draft=draft)[0]


def _build(content: dict[str, Any], *, total_pages: int | None, draft: str) -> tuple[bytes, int]:
    buffer = io.BytesIO()
    pack = content.get("pack", {})
    label = f"{content['period']['label']} · version {pack.get('version', '')}"
    if draft:
        label = f"{content['period']['label']} · {DRAFT.lower()} (version {pack.get('version')})"
    template = SimpleDocTemplate(
        buffer, pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=14 * mm,
        bottomMargin=18 * mm, title=f"{TITLE}: {content['period']['label']}",
        author="PQF Audit Bot", subject="The Practice Quality Board's pack", invariant=True,
    )  # fmt: skip

    def footer(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 8)
        canvas.setFillColor(MUTED)
        canvas.setStrokeColor(RULE)
        y = 9 * mm
        canvas.line(MARGIN, y + 4 * mm, A4[0] - MARGIN, y + 4 * mm)
        canvas.drawString(MARGIN, y, f"The Board's pack · {label}")
        page = f"Page {doc.page}" + (f" of {total_pages}" if total_pages else "")
        canvas.drawRightString(A4[0] - MARGIN, y, page)
        if draft:
            canvas.setFont(f"{FONT}-Bold", 9)
            canvas.setFillColor(DRAFT_COLOUR)
            canvas.drawCentredString(A4[0] / 2, A4[1] - 8 * mm, DRAFT)
        canvas.restoreState()

    story = _story(content, template.width, draft)
    template.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue(), int(template.page)
