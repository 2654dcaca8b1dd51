"""One completed audit as a printable HTML page and an A4 PDF for the supervision file.

Both show the same content: a heading, a table of facts, each criterion with its rating,
evidence and the moderator's view, the feedback call, the worker's involvement and the
moderation comment. All free text is escaped. The PDF embeds Bitstream Vera, which ships
with reportlab, so curly quotes, dashes, accents and the pound sign come out as typed
(reportlab's built-in Helvetica only knows the WinAnsi characters).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import reportlab
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import (
    CondPageBreak,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from practice.dates import short_date
from reports.audit_document import AuditDocument, RatedCriterion
from reports.html import template_environment

FONT = "PQFVera"
FONT_FILES = {
    FONT: "Vera.ttf",
    f"{FONT}-Bold": "VeraBd.ttf",
    f"{FONT}-Italic": "VeraIt.ttf",
    f"{FONT}-BoldItalic": "VeraBI.ttf",
}
ACCENT = colors.HexColor("#00497A")
RULE = colors.HexColor("#8A8A8A")
BAND = colors.HexColor("#EEF2F6")
MUTED = colors.HexColor("#4A4A4A")
MARGIN = 18 * mm
# Room a criterion or section needs at the foot of a page to start there: its heading and
# the first lines of what follows.
KEEP_WITH_HEADING = 40 * mm


@dataclass(frozen=True)
class AuditContent:
    """What both renderings show, in words, before any escaping."""

    heading: str
    lead: str
    facts: list[tuple[str, str]]
    feedback: list[tuple[str, str]]
    moderation: list[tuple[str, str]]
    footer: str

    @property
    def moderated(self) -> bool:
        """Return whether there is anything to say about moderation."""
        return bool(self.moderation)


def audit_content(document: AuditDocument) -> AuditContent:
    """Return the headings, facts and labelled answers both renderings show."""
    kind = document.kind + (" (voluntary)" if document.voluntary else "")
    facts = [
        ("Audit", str(document.audit_id)),
        ("Standard", f"Standard {document.standard_number}: {document.standard_title}"),
        ("Kind of audit", kind),
        ("Month", document.month_label),
        ("About", document.about),
        ("Team", document.team or "Not recorded"),
        ("Auditor", document.auditor_name),
        ("Worker", document.worker_name or "Not recorded"),
        ("Due", short_date(document.due_on)),
        ("Submitted", short_date(document.submitted_on) if document.submitted_on else "Not yet"),
    ]
    if document.moderator_name:
        facts.append(("Moderator", document.moderator_name))
    feedback = [
        (label, value)
        for label, value in (
            ("Who was contacted", document.feedback_who),
            ("What they said", document.feedback_said),
            ("Why nobody was contacted", document.feedback_no_contact_reason),
        )
        if value
    ]
    moderated = [a for a in document.criteria if a.moderation]
    moderation: list[tuple[str, str]] = []
    if document.moderator_name:
        moderation.append(("Moderated by", document.moderator_name))
    if moderated:
        agreed = sum(1 for a in moderated if a.moderation == "Agreed")
        moderation.append(("Ratings agreed", f"{agreed} of {len(moderated)} moderated"))
    if document.moderation_comment:
        moderation.append(("Comment", document.moderation_comment))
    return AuditContent(
        heading=(
            f"Audit {document.audit_id}: Standard {document.standard_number} – "
            f"{document.standard_title}"
        ),
        lead=f"{kind[:1].upper()}{kind[1:]} of {document.about}, {document.month_label}",
        facts=facts,
        feedback=feedback,
        moderation=moderation,
        footer=(
            f"Practice quality audit {document.audit_id}. It names people: keep it in the "
            "supervision file and share it only with those who need it."
        ),
    )


def render_audit_html(document: AuditDocument) -> str:
    """Return one audit as a self-contained printable HTML page."""
    content = audit_content(document)
    return (
        template_environment()
        .get_template("audit.html")
        .render(
            document=document,
            heading=content.heading,
            lead=content.lead,
            facts=content.facts,
            feedback=content.feedback,
            moderation=content.moderation,
            moderated=content.moderated,
            moderation_words=moderation_words,
            footer=content.footer,
        )
    )


def render_audit_pdf(document: AuditDocument) -> bytes:
    """Return one audit as an A4 PDF with 'Audit <id>' and page numbers in the footer."""
    register_fonts()
    content = audit_content(document)
    # Two passes: the first counts the pages so that the footer can say "Page 1 of 3".
    pages = _build_pdf(document, content, total_pages=None)[1]
    return _build_pdf(document, content, total_pages=pages)[0]


def register_fonts() -> None:
    registered = set(pdfmetrics.getRegisteredFontNames())
    folder = Path(reportlab.__file__).with_name("fonts")
    for name, file_name in FONT_FILES.items():
        if name not in registered:
            pdfmetrics.registerFont(TTFont(name, str(folder / file_name)))
    pdfmetrics.registerFontFamily(
        FONT, normal=FONT, bold=f"{FONT}-Bold", italic=f"{FONT}-Italic",
        boldItalic=f"{FONT}-BoldItalic",
    )  # fmt: skip


@dataclass(frozen=True)
class _Styles:
    title: ParagraphStyle
    lead: ParagraphStyle
    heading: ParagraphStyle
    criterion: ParagraphStyle
    label: ParagraphStyle
    body: ParagraphStyle
    none: ParagraphStyle
    cell: ParagraphStyle
    cell_label: ParagraphStyle


def _styles() -> _Styles:
    body = ParagraphStyle("body", fontName=FONT, fontSize=10, leading=13.5, spaceAfter=4)
    return _Styles(
        title=ParagraphStyle(
            "title", fontName=f"{FONT}-Bold", fontSize=16, leading=20, textColor=ACCENT,
            spaceAfter=4,
        ),
        lead=ParagraphStyle("lead", parent=body, textColor=MUTED, spaceAfter=10),
        heading=ParagraphStyle(
            "heading", fontName=f"{FONT}-Bold", fontSize=12.5, leading=16, textColor=ACCENT,
            spaceBefore=12, spaceAfter=6,
        ),
        criterion=ParagraphStyle(
            "criterion", fontName=f"{FONT}-Bold", fontSize=10, leading=13.5, spaceBefore=8,
            spaceAfter=3,
        ),
        label=ParagraphStyle(
            "label", fontName=f"{FONT}-Bold", fontSize=9, leading=12, textColor=MUTED,
            spaceAfter=1,
        ),
        body=body,
        none=ParagraphStyle("none", parent=body, fontName=f"{FONT}-Italic", textColor=MUTED),
        cell=ParagraphStyle("cell", fontName=FONT, fontSize=9.5, leading=12.5),
        cell_label=ParagraphStyle(
            "cell_label", fontName=f"{FONT}-Bold", fontSize=9.5, leading=12.5
        ),
    )  # fmt: skip


def paragraph_text(value: str) -> str:
    """Return free text as reportlab paragraph markup: escaped, line breaks kept."""
    return "<br/>".join(escape(line) for line in value.splitlines()) or " "


def _build_pdf(
    document: AuditDocument, content: AuditContent, *, total_pages: int | None
) -> tuple[bytes, int]:
    buffer = io.BytesIO()
    template = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=16 * mm,
        bottomMargin=20 * mm,
        title=content.heading,
        author="PQF Audit Bot",
        subject=f"Practice quality audit {document.audit_id}",
        invariant=True,  # no creation time in the file: the same audit gives the same bytes
    )
    styles = _styles()
    template.build(
        _story(document, content, styles, template.width),
        onFirstPage=lambda canvas, doc: _footer(canvas, doc, document.audit_id, total_pages),
        onLaterPages=lambda canvas, doc: _footer(canvas, doc, document.audit_id, total_pages),
    )
    return buffer.getvalue(), int(template.page)


def _footer(canvas: Any, doc: Any, audit_id: int, total_pages: int | None) -> None:
    canvas.saveState()
    canvas.setFont(FONT, 8.5)
    canvas.setFillColor(MUTED)
    y = 10 * mm
    canvas.setStrokeColor(RULE)
    canvas.line(MARGIN, y + 4 * mm, A4[0] - MARGIN, y + 4 * mm)
    canvas.drawString(MARGIN, y, f"Audit {audit_id}")
    page = f"Page {doc.page}" + (f" of {total_pages}" if total_pages else "")
    canvas.drawRightString(A4[0] - MARGIN, y, page)
    canvas.restoreState()


def _story(
    document: AuditDocument, content: AuditContent, styles: _Styles, width: float
) -> list[Any]:
    story: list[Any] = [
        Paragraph(paragraph_text(content.heading), styles.title),
        Paragraph(paragraph_text(content.lead), styles.lead),
        _facts_table(content.facts, styles, width),
        Paragraph("Criteria", styles.heading),
    ]
    for answer in document.criteria:
        story.extend(_criterion(answer, styles))
    if not document.criteria:
        story.append(Paragraph("No criteria were answered.", styles.none))

    feedback = _labelled(content.feedback, styles, "No feedback call was recorded.")
    story.extend(_section("Feedback call", feedback, styles))
    if document.involvement:
        detail = f" ({document.involvement_detail})" if document.involvement_detail else ""
        involvement = Paragraph(paragraph_text(document.involvement + detail), styles.body)
    else:
        involvement = Paragraph("Not recorded.", styles.none)
    story.extend(_section("Worker involvement", [involvement], styles))
    moderation = _labelled(content.moderation, styles, "This audit has not been moderated.")
    story.extend(_section("Moderation", moderation, styles))
    story.append(Spacer(1, 8 * mm))
    story.append(Paragraph(paragraph_text(content.footer), styles.none))
    return story


def _section(heading: str, body: list[Any], styles: _Styles) -> list[Any]:
    # Start a section on a new page only when too little of this one is left for its start;
    # a section longer than the rest of the page then flows on rather than leave a gap.
    return [CondPageBreak(KEEP_WITH_HEADING), Paragraph(heading, styles.heading), *body]


def _facts_table(facts: list[tuple[str, str]], styles: _Styles, width: float) -> Table:
    rows = [
        [
            Paragraph(paragraph_text(label), styles.cell_label),
            Paragraph(paragraph_text(value), styles.cell),
        ]
        for label, value in facts
    ]
    table = Table(rows, colWidths=[40 * mm, width - 40 * mm], hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.5, RULE),
                ("BACKGROUND", (0, 0), (0, -1), BAND),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 3),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
            ]
        )
    )
    return table


def _criterion(rated: RatedCriterion, styles: _Styles) -> list[Any]:
    flowables: list[Any] = [
        CondPageBreak(KEEP_WITH_HEADING),
        Paragraph(paragraph_text(f"{rated.criterion_id} {rated.text}"), styles.criterion),
        Paragraph(f"Rating: <b>{paragraph_text(rated.rating)}</b>", styles.body),
        Paragraph("Evidence", styles.label),
        Paragraph(paragraph_text(rated.evidence), styles.body)
        if rated.evidence
        else Paragraph("None recorded", styles.none),
    ]
    if rated.moderation:
        flowables.append(
            KeepTogether(
                [
                    Paragraph("Moderation", styles.label),
                    Paragraph(paragraph_text(moderation_words(rated)), styles.body),
                ]
            )
        )
    return flowables


def moderation_words(rated: RatedCriterion) -> str:
    """Return 'Agreed', or 'Moderator: Meets – the reason they gave'."""
    if rated.moderation_reason:
        return f"{rated.moderation} – {rated.moderation_reason}"
    return rated.moderation


def _labelled(pairs: list[tuple[str, str]], styles: _Styles, empty: str) -> list[Any]:
    if not pairs:
        return [Paragraph(empty, styles.none)]
    flowables: list[Any] = []
    for label, value in pairs:
        flowables.append(
            KeepTogether(
                [
                    Paragraph(paragraph_text(label), styles.label),
                    Paragraph(paragraph_text(value), styles.body),
                ]
            )
        )
    return flowables
