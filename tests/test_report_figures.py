"""The report's figures on hand-made data whose answers are known."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from practice.framework import Framework
from practice.month import short_month
from practice.report import (
    MIN_KAPPA_PAIRS,
    ActionFacts,
    AuditFacts,
    FeedbackQuote,
    ModerationPair,
    ReportScope,
    agreement,
    auditor_shifts,
    build_report,
    cohens_kappa,
    criterion_row,
    kappa_verdict,
    percent,
)

DUE = date(2023, 9, 29)


def facts(audit_id: int, ratings: dict[str, str], **extra: object) -> AuditFacts:
    values: dict[str, object] = {
        "audit_id": audit_id, "month": "2023-09", "standard": 1, "kind": "sampled",
        "status": "submitted", "due_on": DUE, "submitted_on": date(2023, 9, 20),
        "auditor_id": 100 + audit_id % 3, "auditor_role": "SVM", "team": "Mendip",
        "subject_id": 200 + audit_id, "ratings": ratings,
    }  # fmt: skip
    values.update(extra)
    return AuditFacts(**values)  # type: ignore[arg-type]


def test_percentages_round_half_up_to_one_decimal() -> None:
    assert percent(8, 179) == Decimal("4.5")  # 4.469...
    assert percent(121, 179) == Decimal("67.6")  # 67.597...
    assert percent(1, 8) == Decimal("12.5")  # exactly half way rounds up
    assert percent(1, 3) == Decimal("33.3")
    assert percent(2, 3) == Decimal("66.7")
    assert percent(0, 0) == Decimal("0.0")


def test_na_is_a_rating_and_blanks_are_left_out() -> None:
    row = criterion_row("1.1", "text", ["below", "meets", "meets", "not_applicable", "nonsense"])
    assert row.answered == 4
    assert row.counts == {"below": 1, "meets": 2, "exceeds": 0, "not_applicable": 1}
    assert row.percents == {
        "below": Decimal("25.0"), "meets": Decimal("50.0"), "exceeds": Decimal("0.0"),
        "not_applicable": Decimal("25.0"),
    }  # fmt: skip


def test_a_month_report_from_known_answers(framework: Framework) -> None:
    audits = [
        facts(1, {"1.1": "below", "1.2": "meets", "1.3": "not_applicable"}),
        facts(2, {"1.1": "meets", "1.2": "meets"}),  # 1.3 left blank
        facts(3, {"1.1": "exceeds", "1.2": "below", "1.3": "meets"}),
        facts(
            4, {"1.1": "meets", "1.2": "exceeds", "1.3": "meets"}, submitted_on=date(2023, 10, 3)
        ),
        facts(5, {}, status="in_progress", submitted_on=None),
        facts(6, {"1.1": "meets"}, voluntary=True, kind="self"),
        facts(7, {"8.1": "meets"}, standard=8, additional=True, team="Sedgemoor"),
        facts(8, {"1.1": "meets"}, month="2023-10", standard=2),  # outside the month
    ]
    report = build_report(framework, first_month="2023-09", last_month="2023-09", audits=audits)
    assert [(r.month_label, r.focus, r.completed) for r in report.completed] == [
        ("September 2023", "Working with people", 4),
        ("September 2023", "Safeguarding people (addition)", 1),
    ]
    assert report.total_completed == 5
    assert report.voluntary_completed == {1: 1}
    table = report.tables[0]
    assert table.heading == "PQF Standard 1 – Working with people (Sept 2023)"
    assert table.audits == 4
    by_id = {row.criterion_id: row for row in table.criteria}
    assert by_id["1.1"].counts == {"below": 1, "meets": 2, "exceeds": 1, "not_applicable": 0}
    assert by_id["1.1"].percents["meets"] == Decimal("50.0")
    assert by_id["1.3"].answered == 3  # one audit left it blank
    assert by_id["1.3"].percents == {
        "below": Decimal("0.0"), "meets": Decimal("66.7"), "exceeds": Decimal("0.0"),
        "not_applicable": Decimal("33.3"),
    }  # fmt: skip
    assert by_id["1.5"].answered == 0
    assert report.tables[1].heading == "Safeguarding people – additional audits (Sept 2023)"

    role = {r.group: r for r in report.completion_by_role}["Service Manager"]
    assert (role.requested, role.on_time, role.late, role.not_done) == (6, 4, 1, 1)
    assert role.rate == Decimal("83.3")
    assert {r.group for r in report.completion_by_team} == {"Mendip", "Sedgemoor"}


def test_scope_filters_for_drill_down(framework: Framework) -> None:
    audits = [
        facts(1, {"1.1": "below"}, team="Mendip", auditor_id=11, subject_id=21),
        facts(2, {"1.1": "meets"}, team="Sedgemoor", auditor_id=12, subject_id=22),
        facts(3, {"1.1": "meets"}, team="Sedgemoor", auditor_id=11, subject_id=23),
    ]

    def completed(scope: ReportScope) -> int:
        return build_report(framework, first_month="2023-09", last_month="2023-09",
                            audits=audits, scope=scope).total_completed  # fmt: skip

    assert completed(ReportScope()) == 3
    assert completed(ReportScope("Sedgemoor", teams=frozenset({"Sedgemoor"}))) == 2
    assert completed(ReportScope("as auditor", auditor_id=11)) == 2
    assert completed(ReportScope("as audited", subject_id=22)) == 1
    assert completed(ReportScope("person", person_id=22)) == 1


def test_feedback_actions_and_trend(framework: Framework) -> None:
    audits = [
        facts(1, {"1.1": "meets"}),
        facts(
            2,
            {"1.1": "below"},
            month="2024-09",
            due_on=date(2024, 9, 30),
            submitted_on=date(2024, 9, 9),
        ),
        facts(3, {"1.1": "exceeds"}, team="Elsewhere"),
    ]
    quotes = [
        FeedbackQuote(1, "2023-09", 1, "Mendip", "Kind"),
        FeedbackQuote(3, "2023-09", 1, "Elsewhere", "Other team"),
    ]
    actions = [
        ActionFacts(
            1, "4", "Risk training", "PDAP team", date(2024, 3, 1), "open", date(2023, 9, 5), None
        ),
        ActionFacts(
            2, "2", "Done long ago", "Someone", None, "closed", date(2023, 1, 1), date(2023, 2, 1)
        ),
        ActionFacts(
            3,
            "1",
            "Closed in the period",
            "Someone",
            None,
            "closed",
            date(2023, 8, 1),
            date(2023, 9, 15),
        ),
        ActionFacts(4, "1", "Logged later", "Someone", None, "open", date(2025, 1, 1), None),
    ]
    report = build_report(
        framework, first_month="2023-09", last_month="2024-09", audits=audits, feedback=quotes,
        actions=actions, scope=ReportScope("Mendip", teams=frozenset({"Mendip"})),
    )  # fmt: skip
    assert [q.text for q in report.feedback] == ["Kind"]
    # Themes that are standard numbers show as the standards' names, in number order.
    assert [(a.id, a.theme) for a in report.actions] == [
        (3, "Working with people"),
        (1, framework.standard(4).title),  # type: ignore[union-attr]
    ]
    trend = report.trend["1.1"]
    assert [(p.month_label, p.answered) for p in trend] == [("Sept 2023", 1), ("Sept 2024", 1)]
    assert trend[1].percents["below"] == Decimal("100.0")
    assert short_month("2024-01") == "Jan 2024"


def test_kappa_against_a_textbook_example() -> None:
    # 50 pairs: both yes 20, yes/no 5, no/yes 10, both no 15 → p_o 0.7, p_e 0.5, kappa 0.4
    pairs = (
        [("meets", "meets")] * 20
        + [("meets", "below")] * 5
        + [("below", "meets")] * 10
        + [("below", "below")] * 15
    )
    assert cohens_kappa(pairs) == pytest.approx(0.4)
    result = agreement(pairs)
    assert result.pairs == 50
    assert result.agreement == Decimal("70.0")
    assert result.verdict == "fair"


def test_kappa_with_four_ratings_and_perfect_agreement() -> None:
    # Fleiss's textbook-style check: perfect agreement is 1, chance-level is about 0.
    perfect = [(r, r) for r in ("below", "meets", "exceeds", "not_applicable") for _ in range(5)]
    assert cohens_kappa(perfect) == pytest.approx(1.0)
    assert kappa_verdict(1.0, 20) == "almost perfect"
    balanced = [(a, b) for a in ("below", "meets") for b in ("below", "meets") for _ in range(5)]
    assert cohens_kappa(balanced) == pytest.approx(0.0)
    assert cohens_kappa([("meets", "meets")] * 12) is None  # one rating only
    assert kappa_verdict(None, 12) == "cannot be measured (one rating used throughout)"


def test_too_few_pairs_to_judge() -> None:
    few = [("meets", "meets")] * (MIN_KAPPA_PAIRS - 1)
    result = agreement(few)
    assert result.kappa is None
    assert result.verdict == "too few to judge"
    assert agreement([*few, ("meets", "below")]).verdict != "too few to judge"


def test_auditors_moderated_markedly(framework: Framework) -> None:
    pairs = (
        [ModerationPair(i, 1, f"1.{i % 5 + 1}", "exceeds", "meets") for i in range(6)]  # lowered
        + [ModerationPair(10 + i, 2, "1.1", "meets", "meets") for i in range(6)]  # agreed
        + [ModerationPair(20 + i, 3, "1.1", "below", "meets") for i in range(3)]  # too few
        + [
            ModerationPair(30 + i, 4, "1.1", "not_applicable", "meets") for i in range(8)
        ]  # N/A aside
    )
    shifts = auditor_shifts(pairs)
    assert [(s.auditor_id, s.lowered, s.direction) for s in shifts] == [(1, 6, "lowered")]
    assert shifts[0].mean_shift == -1.0
    audits = [facts(i, {"1.1": "exceeds"}) for i in range(1, 4)]
    report = build_report(
        framework, first_month="2023-09", last_month="2023-09", audits=audits,
        moderation=[ModerationPair(1, 101, "1.1", "exceeds", "meets"), ModerationPair(99, 1, "1.1", "meets", "meets")],
    )  # fmt: skip
    assert [row.result.pairs for row in report.moderation] == [1]  # audit 99 is out of scope
    assert report.moderation_overall is not None
    assert report.moderation_overall.verdict == "too few to judge"


def test_a_team_breakdown_of_fewer_than_five_audits_carries_a_caution(
    framework: Framework,
) -> None:
    audits = [facts(n, {"1.1": "meets"}, team="Mendip") for n in range(1, 6)]
    audits += [facts(n, {"1.1": "below"}, team="Sedgemoor") for n in range(6, 10)]
    report = build_report(framework, first_month="2023-09", last_month="2023-09", audits=audits)
    assert [(r.group, r.small_numbers) for r in report.completion_by_team] == [
        ("Mendip", False),
        ("Sedgemoor", True),
    ]
    assert not report.small_numbers  # the whole service's report is not a team's
    sedgemoor = ReportScope("Sedgemoor", teams=frozenset({"Sedgemoor"}))
    small = build_report(
        framework, first_month="2023-09", last_month="2023-09", audits=audits, scope=sedgemoor
    )
    assert small.small_numbers
    mendip = ReportScope("Mendip", teams=frozenset({"Mendip"}))
    assert not build_report(
        framework, first_month="2023-09", last_month="2023-09", audits=audits, scope=mendip
    ).small_numbers


def test_an_audit_without_ratings_counts_in_audits_completed_only(framework: Framework) -> None:
    audits = [
        facts(1, {"1.1": "meets"}, imported=True),
        facts(2, {}, imported=True),  # counted, but its ratings were lost
        facts(3, {}, standard=8, additional=True, imported=True),
    ]
    report = build_report(framework, first_month="2023-09", last_month="2023-09", audits=audits)
    assert [(r.standard, r.completed) for r in report.completed] == [(1, 2), (8, 1)]
    assert report.total_completed == 3
    assert [(t.standard, t.audits) for t in report.tables] == [(1, 1)]  # no empty table
    assert [p.answered for p in report.trend["1.1"]] == [1]
