"""Every card: valid Adaptive Card 1.5 (checked by Microsoft's adaptivecards package),
labelled inputs for screen readers, and well under the Teams message size limit."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import date
from typing import Any

import pytest

from cards.audit_cards import (
    AuditHeading,
    CaseChoice,
    RatingChoice,
    SummaryItem,
    case_card,
    criterion_card,
    feedback_card,
    involvement_card,
    notice_card,
    replaced_card,
    request_card,
    step_done_card,
    submitted_card,
    summary_card,
)
from cards.board_pack_cards import (
    ActionChoice,
    QuoteChoice,
    StandardWords,
    UnsavedEntries,
    board_pack_card,
    pack_published_card,
    pack_version_card,
)
from cards.cycle_cards import (
    DIGEST_STATES,
    DigestRow,
    ModerationItem,
    SampleEntry,
    digest_card,
    moderated_card,
    moderation_card,
    moderation_sample_card,
    new_audit_card,
    outcome_card,
    reminder_card,
)
from cards.help_cards import AuditListEntry, help_card, my_audits_card
from cards.report_cards import report_summary_card
from practice.answers import CASE_CONTACTS, INVOLVEMENT_OPTIONS, SUPERVISION_CONTACTS
from practice.audit_steps import AuditKind
from practice.framework import Framework
from practice.report_summary import OwnAudit
from tests.card_gallery import phone_gallery
from tests.conftest import ROOT, skip_or_fail

MAX_CARD_BYTES = 80 * 1024
LONG = "Evidence that goes on. " * 200  # 4,600 characters, past the 4,000 limit

HEADING = AuditHeading(
    audit_id=7,
    standard_number=3,
    standard_title="Strengths-based assessments",
    kind=AuditKind.SELF,
    month_label="November 2026",
    due_on=date(2026, 11, 30),
    case_reference="4100107",
    subject_name="Alex Wilber",
    supervision=False,
)
SCALE = [
    RatingChoice("below", "Below", "Practice is below the standard"),
    RatingChoice("meets", "Meets", "Practice meets the standard"),
    RatingChoice("exceeds", "Exceeds", "Practice exceeds the standard"),
    RatingChoice("not_applicable", "N/A", "The criterion does not apply to this case"),
]
ITEMS = [
    SummaryItem("case", "The case", (("Case reference", "4100107"),), (), True, True),
    *(
        SummaryItem(f"criterion:3.{i}", f"3.{i} Criterion text " * 5, (("Rating", "Meets"),),
                    (("Evidence", LONG),), i != 4)
        for i in range(1, 9)
    ),
    SummaryItem("feedback", "Feedback call", (("Gave feedback", "Their carer"),),
                (("What they said", LONG),), True),
]  # fmt: skip


ENTRY = AuditListEntry(
    7, "Standard 3: Strengths-based assessments", "self-audit", "case 4100107",
    date(2026, 11, 30), "in_progress", 4, 10, None,
)  # fmt: skip


def all_cards() -> dict[str, dict[str, Any]]:
    """Return one of every card the bot sends, in its fullest form."""
    peer = AuditHeading(**{**HEADING.__dict__, "kind": AuditKind.PEER, "case_reference": None})
    supervision = AuditHeading(
        **{
            **HEADING.__dict__,
            "kind": AuditKind.SAMPLED,
            "supervision": True,
            "standard_number": 10,
        }
    )
    choices = [CaseChoice(f"41001{i:02d}", "open") for i in range(40)]
    return {
        "request_self": request_card(HEADING, what_people_can_expect="I am supported..."),
        "request_peer": request_card(peer, what_people_can_expect=""),
        "request_supervision": request_card(supervision, what_people_can_expect="Regular"),
        "request_refreshed": request_card(
            HEADING, what_people_can_expect="", refresh_for="8:orgid:x", steps_done=2,
            steps_total=11,
        ),
        "step_left_for_later": step_done_card(
            HEADING, label="Criterion 2 of 8", outcome="saved", carry_on=True
        ),
        "notice": notice_card("That card is not yours, so nothing was changed.", HEADING),
        "case_confirm": case_card(
            HEADING, seq=1, mode="confirm_case", allocated_worker="Sam Green", team="Sedgemoor",
            choices=[],
        ),
        "case_choose": case_card(
            HEADING, seq=1, mode="choose_own", allocated_worker=None, team=None,
            choices=choices, chosen="4100105", typed_reference="", problems=["Choose a case"],
        ),
        "case_choose_empty": case_card(
            peer, seq=1, mode="choose_peer", allocated_worker=None, team=None, choices=[],
        ),
        "case_supervision": case_card(
            supervision, seq=1, mode="confirm_supervision", allocated_worker=None, team=None,
            choices=[],
        ),
        "criterion": criterion_card(
            HEADING, seq=2, step="criterion:3.1", criterion_id="3.1", criterion_text="x" * 600,
            position=1, total=8, scale=SCALE, rating="meets", evidence=LONG, max_length=4000,
            problems=["Add the evidence", "Another problem"],
        ),
        "criterion_empty": criterion_card(
            HEADING, seq=2, step="criterion:3.1", criterion_id="3.1", criterion_text="Text here",
            position=1, total=8, scale=SCALE, max_length=4000,
        ),
        "feedback": feedback_card(
            HEADING, seq=3, options=CASE_CONTACTS, contacted=("person", "carer"),
            what_they_said=LONG, no_contact_reason="", suitable_for_report=True, max_length=4000,
            problems=["x"],
        ),
        "feedback_supervision": feedback_card(
            supervision, seq=3, options=SUPERVISION_CONTACTS, max_length=4000,
        ),
        "involvement": involvement_card(
            HEADING, seq=4, worker_label="the allocated worker, Sam Green",
            options=INVOLVEMENT_OPTIONS, how="feedback_arranged", feedback_on="2026-12-01",
            reason=LONG, max_length=4000, problems=["x"],
        ),
        "summary": summary_card(HEADING, seq=5, items=ITEMS, problems=["Some answers are missing"]),
        "submitted": submitted_card(HEADING, items=ITEMS, submitted_on=date(2026, 11, 24)),
        "step_done": step_done_card(HEADING, label="Criterion 1 of 8", outcome="Meets — saved"),
        "replaced": replaced_card(HEADING),
        "welcome": help_card(name="Alex Wilber", greeting=True, outstanding=2, moderator=False),
        "help": help_card(name="", greeting=False, outstanding=0, moderator=True),
        "my_audits": my_audits_card(
            [
                AuditListEntry(7, "Standard 3: Strengths-based assessments", "self-audit",
                               "case 4100107", date(2026, 11, 30), "in_progress", 4, 10, None),
                AuditListEntry(8, "Standard 3: Strengths-based assessments", "case audit",
                               "case 4100999", date(2026, 11, 30), "requested", 0, 11, None),
                AuditListEntry(5, "Standard 2: Case recording", "peer audit", "case 4100001",
                               date(2026, 10, 30), "submitted", 10, 10, date(2026, 10, 20)),
            ]
        ),
        "my_audits_empty": my_audits_card([]),
        "reminder": reminder_card(entries=[ENTRY, ENTRY], due_on=date(2026, 11, 30), today=date(2026, 11, 23)),
        "reminder_due_today": reminder_card(entries=[ENTRY], due_on=date(2026, 11, 30), today=date(2026, 11, 30)),
        "digest": digest_card(
            month_label="November 2026", due_on=date(2026, 11, 30), today=date(2026, 11, 25),
            rows=[DigestRow(f"Person {i}", state, "1 of 2 done") for i, state in enumerate(DIGEST_STATES)],
        ),
        "digest_empty": digest_card(month_label="November 2026", due_on=date(2026, 11, 30), today=date(2026, 11, 25), rows=[]),
        "outcome_worker": outcome_card(HEADING, items=ITEMS, submitted_on=date(2026, 11, 24), auditor_name="Megan Bowen", for_supervisor=False),
        "outcome_supervisor": outcome_card(HEADING, items=ITEMS, submitted_on=date(2026, 11, 24), auditor_name="Megan Bowen", for_supervisor=True),
        "moderation_sample": moderation_sample_card(
            month_label="November 2026", until=date(2026, 12, 14), moderator_name="Patti",
            month="2026-11", refresh_for="8:orgid:p",
            entries=[
                SampleEntry(1, "Standard 3", "case 1", "Team A", "case audit", None, False, False),
                SampleEntry(2, "Standard 3", "case 2", "Team B", "self-audit", "Patti", True, False),
                SampleEntry(3, "Standard 3", "case 3", "Team C", "peer audit", "Morgan", False, False),
                SampleEntry(4, "Standard 3", "case 4", "Team D", "peer audit", "Morgan", False, True),
            ],
        ),
        "moderation": moderation_card(
            HEADING, seq=3, auditor_name="Megan Bowen",
            ratings=[(c.code, c.label) for c in SCALE],
            items=[ModerationItem(f"3.{i}", "Criterion text " * 20, "Exceeds", LONG, "agree" if i % 2 else "", "x" if i == 2 else "") for i in range(1, 9)],
            overall_comment="Thorough", max_length=4000, problems=["Say why"],
            notice="Saved at 10:00. You can finish it later here, or type **moderation**.",
        ),
        "moderated": moderated_card(
            HEADING, moderator_name="Patti", for_auditor=True, overall_comment="Good",
            lines=[("3.1", "Agreed", ""), ("3.2", "Moderator: Meets (auditor: Exceeds)", "Not shared")],
        ),
        "new_audit": new_audit_card(standards=[(1, "Working with people"), (10, "Supervision")], problems=["Choose"]),
    }  # fmt: skip


def _walk(value: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(value, dict):
        found.append(value)
        for item in value.values():
            found.extend(_walk(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(_walk(item))
    return found


@pytest.mark.parametrize("name", sorted(all_cards()))
def test_card_shape(name: str) -> None:
    _check_shape(name, all_cards()[name])


def test_the_worst_case_cards_have_the_same_shape(framework: Framework) -> None:
    for name, card in phone_gallery(framework).items():
        _check_shape(name, card)


def _check_shape(name: str, card: dict[str, Any]) -> None:
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == "1.5"
    size = len(json.dumps(card).encode("utf-8"))
    assert size < MAX_CARD_BYTES, f"{name} is {size} bytes"
    ids = []
    for element in _walk(card):
        if str(element.get("type", "")).startswith("Input."):
            assert element.get("label"), f"{name}: input {element.get('id')} has no label"
            ids.append(element["id"])
        if element.get("type") in ("Action.Submit", "Action.Execute"):
            assert isinstance(element.get("data"), dict)
            assert element["data"].get("pqf")
        if element.get("type") == "Action.Execute":
            assert element["verb"] == element["data"]["pqf"]
    assert len(ids) == len(set(ids))


def test_cards_validate_with_the_adaptivecards_package(framework: Framework) -> None:
    node = shutil.which("node")
    script = ROOT / "tests" / "js" / "validate_cards.js"
    if node is None or not (ROOT / "node_modules" / "adaptivecards").exists():
        skip_or_fail("PQF_REQUIRE_NODE", "Node.js and `npm ci` are needed to validate cards")
    cards = {**all_cards(), **{f"phone/{n}": c for n, c in phone_gallery(framework).items()}}
    payload = [{"name": name, "card": card} for name, card in cards.items()]
    completed = subprocess.run(
        [node, str(script)], input=json.dumps(payload), capture_output=True, text=True,
        cwd=ROOT, timeout=60, check=True,
    )  # fmt: skip
    problems = {name: issues for name, issues in json.loads(completed.stdout).items() if issues}
    assert problems == {}
    assert len(json.loads(completed.stdout)) == len(payload)


def test_validator_catches_a_broken_card() -> None:
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "adaptivecards").exists():
        skip_or_fail("PQF_REQUIRE_NODE", "Node.js and `npm ci` are needed to validate cards")
    broken = {"type": "AdaptiveCard", "version": "1.5",
              "body": [{"type": "TextBlock", "text": "x", "size": "Huge"},
                       {"type": "Input.ChoiceSet", "id": "a", "choices": []}]}  # fmt: skip
    completed = subprocess.run(
        [node, str(ROOT / "tests" / "js" / "validate_cards.js")],
        input=json.dumps([{"name": "broken", "card": broken}]),
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=True,
    )  # fmt: skip
    assert len(json.loads(completed.stdout)["broken"]) == 2


def test_users_words_are_never_rendered_as_markdown() -> None:
    card = submitted_card(
        HEADING,
        items=[SummaryItem("feedback", "Feedback call", (), (("What they said", "[click](http://evil)"),), True)],
        submitted_on=date(2026, 11, 24),
    )  # fmt: skip
    runs = [e for e in _walk(card) if e.get("type") == "TextRun"]
    assert "[click](http://evil)" in [r["text"] for r in runs]
    blocks = [e for e in _walk(card) if e.get("type") == "TextBlock"]
    assert all("evil" not in b["text"] for b in blocks)


MARKDOWN = "[click-me](https://evil.example/phish) **x** _y_"


def cards_with_peoples_words(words: str) -> dict[str, dict[str, Any]]:
    """Return every card that shows names, teams, case references or typed words, all `words`."""
    named = AuditHeading(**{**HEADING.__dict__, "case_reference": words, "subject_name": words})
    peer = AuditHeading(**{**named.__dict__, "kind": AuditKind.PEER, "case_reference": None})
    supervision = AuditHeading(**{**named.__dict__, "supervision": True, "standard_number": 10})
    items = [SummaryItem("case", "The case", (("Case reference", words), ("Team", words)),
                         (("What they said", words),), True)]  # fmt: skip
    entry = AuditListEntry(7, "Standard 3", "self-audit", f"case {words}", date(2026, 11, 30),
                           "requested", 0, 10, None)  # fmt: skip
    own = [
        OwnAudit(1, "Standard 3 · November 2026", f"Your work, audited by {words}", "Meets 2", True)
    ]
    return {
        "request_peer": request_card(peer, what_people_can_expect=""),
        "request_sampled": request_card(
            AuditHeading(**{**named.__dict__, "kind": AuditKind.SAMPLED}),
            what_people_can_expect="",
        ),
        "case_confirm": case_card(
            named, seq=1, mode="confirm_case", allocated_worker=words, team=words, choices=[]
        ),
        "case_choose_peer": case_card(
            peer, seq=1, mode="choose_peer", allocated_worker=None, team=None, choices=[]
        ),
        "case_supervision": case_card(
            supervision,
            seq=1,
            mode="confirm_supervision",
            allocated_worker=None,
            team=None,
            choices=[],
        ),
        "criterion": criterion_card(
            named,
            seq=2,
            step="criterion:3.1",
            criterion_id="3.1",
            criterion_text="Text",
            position=1,
            total=8,
            scale=SCALE,
            rating="meets",
            evidence=words,
            max_length=4000,
        ),
        "involvement": involvement_card(
            named,
            seq=4,
            worker_label=f"the worker, {words}",
            options=INVOLVEMENT_OPTIONS,
            max_length=4000,
        ),
        "summary": summary_card(named, seq=5, items=items),
        "submitted": submitted_card(named, items=items, submitted_on=date(2026, 11, 24)),
        "step_done": step_done_card(named, label="The case", outcome=words),
        "replaced": replaced_card(named),
        "welcome": help_card(name=words, greeting=True, outstanding=1, moderator=True),
        "my_audits": my_audits_card([entry]),
        "reminder": reminder_card(
            entries=[entry], due_on=date(2026, 11, 30), today=date(2026, 11, 23)
        ),
        "digest": digest_card(
            month_label="November 2026",
            due_on=date(2026, 11, 30),
            today=date(2026, 11, 25),
            rows=[DigestRow(words, "done", words)],
        ),
        "outcome": outcome_card(
            named,
            items=items,
            submitted_on=date(2026, 11, 24),
            auditor_name=words,
            for_supervisor=True,
        ),
        "moderation_sample": moderation_sample_card(
            month_label="November 2026",
            until=date(2026, 12, 14),
            moderator_name=words,
            entries=[
                SampleEntry(
                    1, "Standard 3", f"case {words}", words, "case audit", words, False, False
                )
            ],
        ),
        "moderation": moderation_card(
            named,
            seq=3,
            auditor_name=words,
            ratings=[(c.code, c.label) for c in SCALE],
            items=[ModerationItem("3.1", "Criterion", "Exceeds", words, "", words)],
            overall_comment=words,
            max_length=4000,
        ),
        "moderated": moderated_card(
            named,
            moderator_name=words,
            for_auditor=True,
            overall_comment=words,
            lines=[("3.1", "Moderator: Meets", words)],
        ),
        "report_summary": report_summary_card(
            period="November 2026",
            scope=f"Team {words}",
            completed=3,
            completion="3 of 3",
            below=[],
            own=own,
            report_url="https://pqf.example/r",
            minutes=15,
        ),
        **_board_pack_with(words),
    }


def _board_pack_with(words: str) -> dict[str, dict[str, Any]]:
    quotes = [QuoteChoice(1, 3, words, words, True)]
    standards = [StandardWords(3, "Standard three", words)]
    actions = [ActionChoice(1, words, words, words, True)]
    return {
        "board_pack": board_pack_card(
            month="2026-11", month_label="November 2026", completed=3, quotes=quotes,
            summary=words, standards=standards, actions=actions, action_standards=[(3, "S")],
            published_versions=1,
        ),
        "board_pack_notice": pack_published_card(
            month="2026-11", month_label="November 2026", version=2, reason=words, completed=3,
            quotes=1, actions=1, summary=words,
        ),
        "board_pack_typed": board_pack_card(
            month="2026-11", month_label="November 2026", completed=3, quotes=quotes,
            summary=words, standards=standards, actions=actions, action_standards=[(3, "S")],
            published_versions=1, problems=["Name the new learning action's owner."],
            draft_url="https://pqf.example/d", draft_pdf_url="https://pqf.example/d.pdf",
            unsaved=UnsavedEntries("3", words, words, words),
        ),
        "board_pack_version": pack_version_card(
            month="2026-11", month_label="November 2026", version=2, reason=words,
            published_at="14:05", completed=3, quotes=1, actions=1, told=1,
            report_url="https://pqf.example/r", pdf_url="https://pqf.example/p", minutes=15,
        ),
    }  # fmt: skip


def _markdown_texts(card: dict[str, Any]) -> list[str]:
    """Return every string of the card that Teams would read as markdown."""
    texts = []
    for element in _walk(card):
        if element.get("type") == "TextBlock":
            texts.append(element["text"])
        if element.get("type") == "FactSet":
            texts += [part for fact in element["facts"] for part in (fact["title"], fact["value"])]
    return texts


@pytest.mark.parametrize("name", sorted(cards_with_peoples_words(MARKDOWN)))
def test_peoples_words_are_shown_literally_in_every_card(name: str) -> None:
    card = cards_with_peoples_words(MARKDOWN)[name]
    assert [t for t in _markdown_texts(card) if "evil.example" in t] == []
    runs = [e["text"] for e in _walk(card) if e.get("type") == "TextRun"]
    # Shown exactly as written (the greeting shows the first word of a name).
    shown = MARKDOWN.split()[0] if name == "welcome" else MARKDOWN
    assert any(shown in run for run in runs)


def test_summary_shortens_long_answers_but_says_so() -> None:
    card = summary_card(HEADING, seq=5, items=ITEMS)
    runs = [e["text"] for e in _walk(card) if e.get("type") == "TextRun"]
    assert all(len(r) < 700 for r in runs)
    assert any("the full text is saved" in r for r in runs)


def test_the_report_summary_of_a_small_team_carries_the_caution() -> None:
    def texts(caution: str | None) -> list[tuple[str, str | None]]:
        card = report_summary_card(
            period="November 2026", scope="Sedgemoor", completed=3, completion="3 of 3",
            below=[], own=None, report_url="https://pqf.example/r", minutes=15, caution=caution,
        )  # fmt: skip
        return [(e["text"], e.get("color")) for e in _walk(card) if e.get("type") == "TextBlock"]

    caution = "Fewer than 5 audits: too few to read much into the percentages."
    assert (caution, "Warning") in texts(caution)
    assert not [text for text, colour in texts(None) if colour == "Warning"]
