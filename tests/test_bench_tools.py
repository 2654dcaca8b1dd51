"""The benchmark tools themselves (not timings): percentiles and the PERFORMANCE.md page."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from bench.common import Result, percentile
from bench.run import BENCHMARKS, BY_HAND, by_hand, kept_sections, render
from tests.conftest import ROOT


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.50) == 50.0
    assert percentile(values, 0.95) == 95.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([7.0], 0.99) == 7.0
    assert math.isnan(percentile([], 0.5))


def test_the_page_lists_machine_goals_tables_and_failures() -> None:
    result = Result(name="turns", title="Turn latency", seconds=12.0)
    result.table("Closed loop", {"database": "sqlite", "turns_per_s": 123.456, "turns": 12000})
    result.goal("saturation vs echo", ">= 0.67", "0.71", True)
    result.goal("p99 vs echo", "<= 1.5", "1.9", False, note="see the profile")
    result.notes.append("200 auditors, 20 s each")
    page = render(
        {"CPU": "test | cpu"},
        [result.__dict__ | {"goals": [g.__dict__ for g in result.goals]}],
        ["Reports at scale"],
        quick=True,
    )
    assert "| CPU | test \\| cpu |" in page
    assert "| Turn latency | saturation vs echo | >= 0.67 | 0.71 | yes |" in page
    assert "| Turn latency | p99 vs echo | <= 1.5 | 1.9 (see the profile) | **no** |" in page
    assert "| Reports at scale | did not complete | | | **no** |" in page
    assert "| database | turns_per_s | turns |" in page
    assert "| sqlite | 123.5 | 12,000 |" in page
    assert "- 200 auditors, 20 s each" in page
    assert "--quick" in page


@pytest.mark.parametrize("name", ["run", *BENCHMARKS])
def test_every_benchmark_explains_itself(name: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", "--help"], cwd=ROOT, capture_output=True,
        text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "--quick" in done.stdout


def test_a_new_page_keeps_the_sections_written_by_hand(tmp_path: Path) -> None:
    doc = tmp_path / "PERFORMANCE.md"
    assert by_hand(doc) == ""
    doc.write_text(f"# Performance\n\nold figures\n\n{BY_HAND}\n\n## By hand\n\n| a |\n")
    kept = by_hand(doc)
    assert kept == f"\n{BY_HAND}\n\n## By hand\n\n| a |\n"
    assert "old figures" not in kept


def test_a_run_of_some_benchmarks_keeps_the_others_as_they_were() -> None:
    def result_of(title: str, measured: str) -> dict[str, object]:
        result = Result(name=title, title=title, seconds=5.0)
        result.table("Figures", {"measured": measured})
        result.goal("a goal", ">= 1", measured, True)
        return result.__dict__ | {"goals": [g.__dict__ for g in result.goals]}

    titles = [title for title, _ in BENCHMARKS.values()]
    first, last = titles[0], titles[-1]
    facts = {"date": "2026-12-01 02:00 UTC", "commit": "abc1234"}
    before = render(facts, [result_of(first, "1"), result_of(last, "2")], [], quick=False)
    page = before + f"\n{BY_HAND}\n\n## By hand\n"
    # Only the last benchmark runs again: the first's goal and section stay, in order.
    later = {"date": "2026-12-02 03:00 UTC", "commit": "def5678"}
    after = render(later, [result_of(last, "3")], [], quick=False,
                   kept=kept_sections(page, [first]))  # fmt: skip
    assert f"| {first} | a goal | >= 1 | 1 | yes |" in after
    assert f"| {last} | a goal | >= 1 | 3 | yes |" in after
    assert f"| {last} | a goal | >= 1 | 2 | yes |" not in after
    assert "Ran in 5 s on 2026-12-01 02:00 UTC at commit abc1234." in after
    assert "Ran in 5 s on 2026-12-02 03:00 UTC at commit def5678." in after
    assert after.index(f"## {first}") < after.index(f"## {last}") < after.index("## How to")
    assert "## By hand" not in after, "the part written by hand is added by main, once"
    # A section from before sections said when they ran says where to look instead.
    older = page.replace("Ran in 5 s on 2026-12-01 02:00 UTC at commit abc1234.", "Ran in 5 s.")
    kept = kept_sections(older, [first])
    assert "Ran in 5 s (when, and at which commit, is in this page's history)." in kept[first][1]
