"""The steps of an audit and what makes each answer complete."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from practice.answers import (
    check_criterion_answer,
    check_feedback_call,
    check_involvement,
    check_ratings_together,
    contact_options,
    is_case_reference,
)
from practice.audit_steps import (
    CASE,
    FEEDBACK,
    INVOLVEMENT,
    SUMMARY,
    AuditKind,
    AuditProgress,
    criterion_of,
    criterion_position,
    criterion_step,
    first_unanswered,
    is_complete,
    step_after,
    step_before,
    steps,
)
from practice.framework import Framework, Standard


@pytest.fixture
def standard_3(framework: Framework) -> Standard:
    standard = framework.standard(3)
    assert standard is not None
    return standard


def test_steps_in_order(standard_3: Standard) -> None:
    order = steps(standard_3, AuditKind.PEER)
    assert order[0] == CASE
    assert order[1:9] == tuple(f"criterion:3.{i}" for i in range(1, 9))
    assert order[9:] == (FEEDBACK, INVOLVEMENT, SUMMARY)


def test_self_audits_have_no_involvement_step(standard_3: Standard) -> None:
    assert INVOLVEMENT not in steps(standard_3, AuditKind.SELF)
    assert step_after(standard_3, AuditKind.SELF, FEEDBACK) == SUMMARY


def test_navigation_stops_at_the_ends(standard_3: Standard) -> None:
    assert step_before(standard_3, AuditKind.SAMPLED, CASE) == CASE
    assert step_after(standard_3, AuditKind.SAMPLED, SUMMARY) == SUMMARY
    assert step_after(standard_3, AuditKind.SAMPLED, CASE) == "criterion:3.1"
    assert step_before(standard_3, AuditKind.SAMPLED, FEEDBACK) == "criterion:3.8"


def test_first_unanswered_step(standard_3: Standard) -> None:
    kind = AuditKind.SAMPLED
    assert first_unanswered(standard_3, kind, AuditProgress()) == CASE
    progress = AuditProgress(
        case_confirmed=True, answered_criteria=frozenset({"3.1", "3.2", "3.4"})
    )
    assert first_unanswered(standard_3, kind, progress) == "criterion:3.3"
    everything = AuditProgress(
        case_confirmed=True,
        answered_criteria=frozenset(f"3.{i}" for i in range(1, 9)),
        feedback_complete=True,
    )
    assert first_unanswered(standard_3, kind, everything) == INVOLVEMENT
    assert not is_complete(standard_3, kind, everything)
    assert is_complete(standard_3, AuditKind.SELF, everything)
    done = AuditProgress(
        case_confirmed=True,
        answered_criteria=everything.answered_criteria,
        feedback_complete=True,
        involvement_complete=True,
    )
    assert first_unanswered(standard_3, kind, done) == SUMMARY


def test_criterion_step_names(standard_3: Standard) -> None:
    assert criterion_of(criterion_step("3.4")) == "3.4"
    assert criterion_of(FEEDBACK) is None
    assert criterion_position(standard_3, "3.4") == (4, 8)


def test_criterion_answer_rules(framework: Framework) -> None:
    assert check_criterion_answer(framework, "meets", "Clear record of the visit") == []
    assert check_criterion_answer(framework, "not_applicable", "") == []
    assert "Choose a rating" in check_criterion_answer(framework, None, "text")[0]
    assert "evidence" in check_criterion_answer(framework, "below", "   ")[0]
    assert "Choose one of the ratings" in check_criterion_answer(framework, "great", "x")[0]
    long = "x" * (framework.max_text_length + 1)
    assert "the most is" in check_criterion_answer(framework, "meets", long)[0]


def test_feedback_call_rules(framework: Framework, standard_3: Standard) -> None:
    def check(
        standard: Standard, contacted: list[str], said: str, why_not: str, *, shared: bool = False
    ) -> list[str]:
        return check_feedback_call(
            framework, standard, contacted, said, why_not, suitable_for_report=shared
        )

    assert check(standard_3, ["carer"], "Helpful", "") == []
    assert check(standard_3, [], "", "No phone number on file") == []
    assert "what they said" in check(standard_3, ["person"], "", "")[0]
    assert "why contact" in check(standard_3, [], "", " ")[0]
    assert "from the list" in check(standard_3, ["neighbour"], "x", "")[0]
    supervision = framework.standard(10)
    assert supervision is not None
    assert list(contact_options(supervision)) == ["supervisee"]
    assert check(supervision, ["supervisee"], "Useful", "") == []


@pytest.mark.parametrize(
    ("said", "named"),
    [
        ("Mrs B said the worker listened to her.", "Mrs B"),
        ("Her son thanked Mr. Okafor for the visits.", "Mr. Okafor"),
        ("The GP, Dr Patel, was kept informed.", "Dr Patel"),
        ("Ms O’Neill was pleased.", "Ms O’Neill"),
        ("Her daughter said the worker listened.", None),
        ("The Mrs was happy; mrs b too.", None),  # no name after the title
        ("Missed visits were put right.", None),
    ],
)
def test_words_to_be_quoted_to_the_board_must_not_name_anyone(
    framework: Framework, standard_3: Standard, said: str, named: str | None
) -> None:
    shared = check_feedback_call(
        framework, standard_3, ["carer"], said, "", suitable_for_report=True
    )
    kept = check_feedback_call(
        framework, standard_3, ["carer"], said, "", suitable_for_report=False
    )
    assert kept == []  # not quoted: the auditor's record, like evidence
    if named is None:
        assert shared == []
    else:
        assert len(shared) == 1
        assert "leave names out" in shared[0]
        assert f"“{named}”" in shared[0]


def test_involvement_rules(framework: Framework) -> None:
    today = date(2026, 11, 23)
    assert check_involvement(framework, "joint_teams", None, "", today) == []
    assert (
        check_involvement(framework, "feedback_arranged", today + timedelta(days=7), "", today)
        == []
    )
    assert "date" in check_involvement(framework, "feedback_arranged", None, "", today)[0]
    far = today + timedelta(days=400)
    assert "six months" in check_involvement(framework, "feedback_arranged", far, "", today)[0]
    assert "why" in check_involvement(framework, "not_involved", None, "", today)[0]
    assert (
        check_involvement(framework, "not_involved", None, "Worker on long-term leave", today) == []
    )
    assert "Choose how" in check_involvement(framework, "", None, "", today)[0]


@pytest.mark.parametrize(
    ("text", "ok"),
    [("1234567", True), ("ABC-12/3_4", True), ("", False), ("John Smith", False),
     ("-123", False), ("x" * 41, False), ("12;DROP", False)],
)  # fmt: skip
def test_case_reference_form(text: str, ok: bool) -> None:
    assert is_case_reference(text) is ok


def test_an_audit_all_na_must_say_why_somewhere(framework: Framework) -> None:
    na, meets = "not_applicable", "meets"
    problem = check_ratings_together(framework, {"3.1": (na, ""), "3.2": (na, " ")})
    assert problem
    assert "Every criterion is rated N/A" in problem[0]
    assert check_ratings_together(framework, {"3.1": (na, ""), "3.2": (na, "No plan yet")}) == []
    assert check_ratings_together(framework, {"3.1": (na, ""), "3.2": (meets, "Seen")}) == []
    assert check_ratings_together(framework, {"3.1": (na, ""), "3.2": (None, "")}) == []
    assert check_ratings_together(framework, {}) == []
