"""The Board's pack: the suggested quotes, publishing a frozen version, publishing again."""

from __future__ import annotations

import io
import json
from datetime import date
from pathlib import Path

import pytest

from admin.cli import main
from bot.board_pack_chat import pack_month
from practice.board_pack import PackError, PackWords, shortlist
from practice.framework import Framework
from practice.month import MonthError
from practice.report import FeedbackQuote, ReportScope
from reports.board_pack import changes_since
from reports.pack_pdf import render_pack_pdf
from storage import board_packs
from storage.database import Database
from storage.report_counts import counted_facts
from storage.reporting import report_facts
from tests.conftest import ROOT
from tests.test_board_pack_chat import seed
from tests.test_monthly_cycle import LONDON

HISTORY = ROOT / "examples" / "history"


def test_the_shortlist_spreads_across_teams_and_standards_and_holds_no_name() -> None:
    quotes = [
        FeedbackQuote(n, "2024-01", standard, team, f"Quote {n}")
        for n, (standard, team) in enumerate(
            [(4, "Mendip")] * 6 + [(4, "Sedgemoor")] * 2 + [(8, "Mendip")] * 2, 1
        )
    ]
    quotes.append(FeedbackQuote(11, "2024-01", 8, "Taunton", "Sam Green was brilliant"))
    chosen = shortlist(quotes, ["Sam Green", "Priya Shah"], size=5)
    assert len(chosen) == 5
    assert all("Sam" not in q.text for q in chosen)  # never a name
    # Each standard-and-team gives one before any gives a second.
    assert {(q.standard, q.team) for q in chosen} == {
        (4, "Mendip"),
        (4, "Sedgemoor"),
        (8, "Mendip"),
    }
    assert sum(q.team == "Mendip" and q.standard == 4 for q in chosen) == 2


def test_the_shortlist_spreads_across_audits_rated_well_and_less_well() -> None:
    def quote(n: int, team: str, below: bool, standard: int = 4) -> FeedbackQuote:
        return FeedbackQuote(n, "2024-01", standard, team, f"Quote {n}", rated_below=below)

    # One team: its first quotes are all from audits rated Meets or better throughout.
    one_team = [quote(n, "Mendip", below=n > 4) for n in range(1, 7)]
    assert [q.audit_id for q in shortlist(one_team, [], size=2)] == [1, 5]
    assert [q.audit_id for q in shortlist(one_team, [], size=4)] == [1, 2, 5, 6]
    # Teams rated only one way: a round reaches first for the team that evens things out.
    teams = (
        [quote(n, "Mendip", below=False) for n in (1, 2, 3)]
        + [quote(n, "Sedgemoor", below=True) for n in (4, 5, 6)]
        + [quote(n, "Taunton", below=False) for n in (7, 8)]
    )
    chosen = shortlist(teams, [], size=4)
    assert sum(q.rated_below for q in chosen) == 2
    assert {q.team for q in chosen} == {"Mendip", "Sedgemoor", "Taunton"}
    # With only one kind there is nothing to even out: the teams' quotes in turn.
    same = [quote(n, "Mendip" if n % 2 else "Taunton", below=True) for n in range(1, 7)]
    assert [q.audit_id for q in shortlist(same, [], size=3)] == [1, 3, 2]


def test_the_shortlist_lets_the_standards_take_turns() -> None:
    quotes = [
        FeedbackQuote(n, "2024-01", 4, team, f"Quote {n}")
        for n, team in enumerate(("Mendip", "Sedgemoor", "Taunton", "Yeovil"), 1)
    ]
    quotes.append(FeedbackQuote(5, "2024-01", 8, "Yeovil", "Felt safer now"))
    chosen = shortlist(quotes, [], size=3)
    assert [(q.standard, q.team) for q in chosen] == [
        (4, "Mendip"),
        (4, "Sedgemoor"),
        (8, "Yeovil"),
    ]


async def test_quotes_say_whether_their_audit_rated_a_criterion_below(
    database: Database, framework: Framework
) -> None:
    await seed(database, framework)
    async with database.session() as session:
        facts = await report_facts(
            session=session, framework=framework, zone=LONDON, first_month="2023-09",
            last_month="2023-09",
        )  # fmt: skip
        counted = await counted_facts(
            session=session, zone=LONDON, first_month="2023-09", last_month="2023-09",
            scope=ReportScope(), as_of=None,
        )  # fmt: skip
    # Of the month's five quotes, audit 48's rated criterion 1.4 Below (examples/history).
    expected = {48: True, 51: False, 79: False, 119: False, 174: False}
    assert {q.audit_id: q.rated_below for q in facts.feedback} == expected
    assert {q.audit_id: q.rated_below for q in counted.feedback} == expected


def test_the_boards_words_are_length_limited() -> None:
    PackWords(summary="x" * 2000, commentary={1: "y" * 1500}).check()
    with pytest.raises(PackError, match="summary is longer"):
        PackWords(summary="x" * 2001).check()
    with pytest.raises(PackError, match="standard 4 is longer"):
        PackWords(commentary={4: "y" * 1501}).check()


def test_a_published_pack_is_frozen_and_publishing_again_makes_the_next_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/pqf.db")
    assert main(["migrate"]) == 0
    assert main(["import-staff", str(HISTORY / "staff.csv")]) == 0
    assert main(["import-audits", str(HISTORY / "audits-2023-09.csv")]) == 0
    month = ["--month", "2023-09"]
    capsys.readouterr()
    assert main(["board-pack", "shortlist", *month]) == 0
    suggested = [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()]
    assert 1 <= len(suggested) <= 10
    chosen = ",".join(suggested[:2])
    assert main(["board-pack", "publish", *month, "--reason", "first publication",
                 "--quotes", chosen, "--summary", "A good month.",
                 "--commentary", "1=Relationships were strong."]) == 0  # fmt: skip
    assert main(["board-pack", "show", *month, "--out", "v1.html"]) == 0
    assert main(["board-pack", "show", *month, "--format", "json", "--out", "v1.json"]) == 0
    assert main(["board-pack", "pdf", *month, "--out", "v1.pdf"]) == 0
    pages = pdf_pages((tmp_path / "v1.pdf").read_bytes())
    text = " ".join(pages)
    assert "Published Version 1: first publication" in text
    assert "Summary A good month." in text
    assert "Commentary: Relationships were strong." in text
    assert text.count("Standard 1, ") == 2  # the two quotes chosen, with their team
    for number, page in enumerate(pages, start=1):
        assert f"September 2023 · version 1 Page {number} of {len(pages)}" in page
    # No near-blank page: every page but the last is mostly full.
    assert all(len(page) > 1500 for page in pages[:-1])
    first = (tmp_path / "v1.html").read_text()
    assert first.count('<figure class="quote">') == 2
    assert "A good month." in first
    assert "Relationships were strong." in first
    assert "Version 1: first publication" in first
    pack = json.loads((tmp_path / "v1.json").read_text())
    assert pack["pack"]["quotes"] == [int(i) for i in suggested[:2]]
    assert pack["completed"]["total"] == 180
    # The Board's words are printed exactly as written, never read as markup.
    pack["pack"]["summary"] = "<b>Not bold</b> & “quoted”\nsecond line"
    assert "Summary <b>Not bold</b> & “quoted” second line" in " ".join(
        pdf_pages(render_pack_pdf(pack))
    )
    pack["pack"]["summary"] = "A good month."

    # A later import changes the live report, not the published pack.
    rows = (HISTORY / "audits-2023-09.csv").read_text().splitlines()
    changed = tmp_path / "changed.csv"
    changed.write_text("\n".join([rows[0], rows[1].replace("Exceeds", "Below")]) + "\n")
    assert main(["import-audits", str(changed)]) == 0
    assert main(["report", *month, "--format", "json", "--out", "live.json"]) == 0
    live = json.loads((tmp_path / "live.json").read_text())
    # The live report says what changed since the pack was published.
    assert main(["report", *month, "--format", "html", "--out", "live.html"]) == 0
    assert "figures for standard 1 changed." in (tmp_path / "live.html").read_text()
    assert "Since version 1 was published on " in (tmp_path / "live.html").read_text()
    assert (
        live["outcomes"][0]["criteria"][0]["counts"] != pack["outcomes"][0]["criteria"][0]["counts"]
    )
    assert main(["board-pack", "show", *month, "--out", "again.html"]) == 0
    assert (tmp_path / "again.html").read_text() == first

    # Publishing again makes version 2, with its reason; version 1 stays as it was.
    assert main(["board-pack", "publish", *month, "--reason", "a corrected import",
                 "--quotes", chosen]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["board-pack", "versions", *month]) == 0
    listed = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [(v[0], v[3]) for v in listed] == [
        ("1", "first publication"),
        ("2", "a corrected import"),
    ]
    assert main(["board-pack", "show", *month, "--version", "1", "--out", "old.html"]) == 0
    assert (tmp_path / "old.html").read_text() == first
    # The PDF of version 1 is made from its frozen figures: the same bytes as before.
    assert main(["board-pack", "pdf", *month, "--version", "1", "--out", "v1-again.pdf"]) == 0
    assert (tmp_path / "v1-again.pdf").read_bytes() == (tmp_path / "v1.pdf").read_bytes()
    assert main(["board-pack", "show", *month, "--format", "json", "--out", "v2.json"]) == 0
    second = json.loads((tmp_path / "v2.json").read_text())
    assert second["pack"]["version"] == 2
    assert (
        second["outcomes"][0]["criteria"][0]["counts"]
        == live["outcomes"][0]["criteria"][0]["counts"]
    )


def pdf_pages(data: bytes) -> list[str]:
    from pypdf import PdfReader

    assert data.startswith(b"%PDF")
    return [" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(data)).pages]


def test_publishing_refuses_a_quote_not_marked_suitable_and_bad_commentary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/pqf.db")
    assert main(["migrate"]) == 0
    assert main(["import-staff", str(HISTORY / "staff.csv")]) == 0
    assert main(["import-audits", str(HISTORY / "audits-2023-09.csv")]) == 0
    publish = ["board-pack", "publish", "--month", "2023-09", "--reason", "first"]
    capsys.readouterr()
    assert main([*publish, "--quotes", "999999"]) == 2
    assert "audits [999999] have no quote marked suitable" in capsys.readouterr().err
    assert main([*publish, "--commentary", "4=Not audited this month"]) == 2
    assert "standard 4 has no table" in capsys.readouterr().err
    assert main(["board-pack", "show", "--month", "2023-09", "--out", "x.html"]) == 1
    assert main(["board-pack", "pdf", "--month", "2023-09", "--out", "x.pdf"]) == 1


async def test_the_draft_is_stored_and_replaced_on_each_database(database: Database) -> None:
    async with database.session() as session:
        assert await board_packs.draft_of(session=session, month="2023-09") is None
        first = board_packs.Draft((51, 48), "A good month.", {1: "Strong."}, None)
        await board_packs.save_draft(session=session, month="2023-09", draft=first, staff_id=7)
    async with database.session() as session:
        assert await board_packs.draft_of(session=session, month="2023-09") == first
        second = board_packs.Draft((79,), "", {}, (3, 1))
        await board_packs.save_draft(session=session, month="2023-09", draft=second, staff_id=8)
    async with database.session() as session:
        assert await board_packs.draft_of(session=session, month="2023-09") == second
        assert await board_packs.draft_of(session=session, month="2023-10") is None


def _figures(total: int, counts: dict[tuple[int, bool], int]) -> dict[str, object]:
    return {
        "completed": {"total": total},
        "outcomes": [
            {"standard": standard, "additional": extra,
             "criteria": [{"criterion_id": f"{standard}.1", "counts": {"below": below}}]}
            for (standard, extra), below in counts.items()
        ],
    }  # fmt: skip


def test_what_changed_since_publication_is_worked_out_from_the_figures() -> None:
    frozen = _figures(145, {(4, False): 3, (8, True): 1})
    assert changes_since(frozen, _figures(145, {(4, False): 3, (8, True): 1})) == []
    assert changes_since(frozen, _figures(148, {(4, False): 5, (8, True): 2})) == [
        "3 audits submitted",
        "figures for standards 4, 8 changed",
    ]
    # An audit removed (a corrected import), and a standard's table gone altogether.
    assert changes_since(frozen, _figures(144, {(4, False): 3})) == [
        "1 audit removed",
        "figures for standard 8 changed",
    ]


def test_the_pack_command_names_a_month_that_has_begun() -> None:
    today = date(2026, 11, 23)
    assert str(pack_month("board pack", today=today)) == "2026-10"
    assert str(pack_month("boardpack 2023-09", today=today)) == "2023-09"
    assert str(pack_month("board pack 2026-11", today=today)) == "2026-11"
    with pytest.raises(MonthError, match="has not begun"):
        pack_month("board pack 2026-12", today=today)
    with pytest.raises(MonthError):
        pack_month("board pack September", today=today)
