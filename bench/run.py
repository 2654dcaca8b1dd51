"""Run every benchmark, one after another, and write docs/PERFORMANCE.md from their figures.

    python -m bench.run [--quick] [--only turns,dispatch,reports,living_card,cluster] [--doc PATH]
    python -m bench.run --only cluster --from-results   # a benchmark run on its own

Each benchmark runs in its own process (`python -m bench.NAME --out build/bench/NAME.json`)
with nothing else running, so one's figures are not disturbed by another's. The page lists
the machine, the versions, the date, every figure and goal, and how to reproduce them.
With --only, the other benchmarks' goals and sections are kept from the page as they were
(each section says when and at which commit it was measured).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sqlite3
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg

from bench.common import POSTGRES_ADMIN_URL, RESULTS, ROOT, commit, now_utc

BENCHMARKS = {
    "turns": ("Turn latency", 15 * 60),
    "dispatch": ("Monthly dispatch", 6 * 60),
    "reports": ("Reports at scale", 8 * 60),
    "living_card": ("One living card per audit", 4 * 60),
    "cluster": ("Three instances, one Teams budget", 25 * 60),
}
PACKAGES = ("botbuilder-core", "aiohttp", "sqlmodel", "SQLAlchemy", "psycopg", "aiosqlite",
            "APScheduler", "pydantic")  # fmt: skip
# Sections after this line in docs/PERFORMANCE.md are written by hand and kept by each run.
BY_HAND = "<!-- Written by hand below this line: `make bench` keeps it. -->"


def _postgres_version() -> str | None:
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=5) as connection:
            row = connection.execute(b"SHOW server_version").fetchone()
    except psycopg.Error:
        return None
    return str(row[0]) if row else None


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    return "unknown"


def machine(postgres: str | None) -> dict[str, str]:
    """Describe the machine and the versions the figures were measured with."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "date": now_utc(),
        "commit": commit(),
        "CPU": f"{_cpu()}, {os.cpu_count()} cores",
        "memory": _memory_gib(),
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "SQLite": sqlite3.sqlite_version,
        "PostgreSQL": postgres or "not available (PostgreSQL figures skipped)",
        **versions,
    }


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "—"
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def _table(rows: list[dict[str, Any]]) -> list[str]:
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return lines


Kept = dict[str, tuple[list[str], list[str]]]  # title: (goal rows, section lines)


def kept_sections(page: str, titles: list[str]) -> Kept:
    """Return, for each of these benchmarks on a page made before, its goal rows and section.

    A section runs from its `## title` heading to the next `## ` heading (the reproduction
    notes, or the part written by hand, follow the last).
    """
    lines = page.split(BY_HAND)[0].splitlines()
    # A section from a page written before sections said when they ran (the page's date
    # may not be the section's: sections were refreshed by hand then).
    undated = re.compile(r"^Ran in ([\d,]+) s\.$")
    kept: Kept = {}
    for title in titles:
        goals = [line for line in lines if line.startswith(f"| {_cell(title)} |")]
        heading = f"## {title}"
        if heading not in lines:
            continue
        start = lines.index(heading)
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        section = lines[start:end]
        while section and not section[-1].strip():
            section.pop()
        section = [
            undated.sub(
                r"Ran in \1 s (when, and at which commit, is in this page's history).", line
            )
            for line in section
        ]
        kept[title] = (goals, section)
    return kept


def render(facts: dict[str, str], results: list[dict[str, Any]], failures: list[str],
           quick: bool, kept: Kept | None = None) -> str:  # fmt: skip
    """Return docs/PERFORMANCE.md (with `kept`: those benchmarks' goals and sections as
    they were, in the benchmarks' order)."""
    kept = kept or {}
    order = [title for title, _ in BENCHMARKS.values()]
    ran = {result["title"] for result in results}
    earlier = [title for title in order if title in kept and title not in ran]
    quick_note = " **This was a `--quick` run: smaller loads than the goals ask for.**"
    lines = [
        "# Performance",
        "",
        "Figures from `make bench` (`python -m bench.run`), which runs each benchmark in turn on",
        "an otherwise idle machine and writes this page. They are measurements of this machine,",
        "not promises: run it on yours to compare." + (quick_note if quick else ""),
        "",
        "## Machine and versions",
        "",
        "| | |",
        "|---|---|",
        *[f"| {key} | {_cell(value)} |" for key, value in facts.items()],
        "",
        *(
            [
                "",
                "Each section below says when and at which commit it ran: this run made "
                + (", ".join(r["title"] for r in results) or "none")
                + "; the others are kept from earlier runs.",
            ]
            if earlier
            else []
        ),
        "",
        "## Goals",
        "",
        "| benchmark | goal | target | measured | met |",
        "|---|---|---|---|---|",
    ]
    goals: dict[str, list[str]] = {title: kept[title][0] for title in earlier}
    sections: dict[str, list[str]] = {title: kept[title][1] for title in earlier}
    for result in results:
        title = result["title"]
        stamp = result.get("measured") or facts
        when = f" on {stamp['date']} at commit {stamp['commit']}" if "date" in stamp else ""
        goals[title] = []
        for goal in result["goals"]:
            met = "yes" if goal["met"] else "**no**"
            note = f" ({goal['note']})" if goal["note"] else ""
            goals[title].append(f"| {_cell(title)} | {_cell(goal['goal'])} "
                                f"| {_cell(goal['target'])} | {_cell(goal['measured'])}"
                                f"{_cell(note)} | {met} |")  # fmt: skip
        section = [f"## {title}", "", f"Ran in {result['seconds']:.0f} s{when}."]
        for name, rows in result["tables"].items():
            section += ["", f"### {name}", "", *_table(rows)]
        if result["notes"]:
            section += ["", "Notes:", ""]
            section += [f"- {note}" for note in result["notes"]]
        sections[title] = section
    titles = [t for t in order if t in sections] + [t for t in sections if t not in order]
    for title in titles:
        lines += goals[title]
    for failure in failures:
        lines.append(f"| {failure} | did not complete | | | **no** |")
    for title in titles:
        lines += ["", *sections[title]]
    lines += [
        "",
        "## How to reproduce",
        "",
        "```sh",
        "make bench                      # everything, then this page (20-30 minutes)",
        "python -m bench.run --quick     # smaller loads, for trying",
        "python -m bench.turns --databases sqlite   # one benchmark, one database",
        "python -m bench.run --only cluster         # one benchmark; the others' sections kept",
        "python -m bench.cluster --out build/bench/cluster.json &&",
        "  python -m bench.run --only cluster --from-results   # the page from that run",
        "```",
        "",
        "PostgreSQL is used at `PQF_BENCH_POSTGRES_URL` (default: `PQF_TEST_POSTGRES_URL`, then",
        "`postgresql://postgres@127.0.0.1:5432/postgres`); each benchmark creates its own",
        "databases there and drops them. Raw results are in `build/bench/*.json`.",
        "",
    ]
    return "\n".join(lines)


def by_hand(doc: Path) -> str:
    """Return the sections written by hand at the end of the page, which a new run keeps."""
    existing = doc.read_text(encoding="utf-8") if doc.exists() else ""
    return "\n" + existing[existing.index(BY_HAND) :] if BY_HAND in existing else ""


def main() -> int:
    """Run the benchmarks and write the page; exit 1 if any benchmark failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller loads, for trying")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated names")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "PERFORMANCE.md")
    parser.add_argument(
        "--from-results", action="store_true",
        help="run nothing: write the page from build/bench/NAME.json as the benchmarks left "
        "it (after `python -m bench.NAME --out build/bench/NAME.json`)",
    )  # fmt: skip
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")

    postgres = _postgres_version()
    databases = "sqlite,postgresql" if postgres else "sqlite"
    if not postgres:
        print(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: SQLite only.", flush=True)
    facts = machine(postgres)
    results: list[dict[str, Any]] = []
    failures: list[str] = []
    started = time.monotonic()
    for name in names:
        title, limit = BENCHMARKS[name]
        out = RESULTS / f"{name}.json"
        if args.from_results:
            if not out.exists():
                print(f"== {title}: no {out.relative_to(ROOT)} to write the page from", flush=True)
                failures.append(title)
            else:
                results.append(json.loads(out.read_text(encoding="utf-8")))
            continue
        out.unlink(missing_ok=True)
        command = [sys.executable, "-m", f"bench.{name}", "--out", str(out),
                   "--databases", databases, *(["--quick"] if args.quick else [])]  # fmt: skip
        print(f"== {title}: {' '.join(command[1:])}", flush=True)
        began = time.monotonic()
        try:
            done = subprocess.run(command, cwd=ROOT, timeout=limit, check=False)
            ok = done.returncode == 0 and out.exists()
        except subprocess.TimeoutExpired:
            ok = False
            print(f"== {title} took longer than {limit} s and was stopped", flush=True)
        if not ok:
            failures.append(title)
            continue
        result = json.loads(out.read_text(encoding="utf-8"))
        result["seconds"] = result.get("seconds") or time.monotonic() - began
        results.append(result)
    args.doc.parent.mkdir(parents=True, exist_ok=True)
    existing = args.doc.read_text(encoding="utf-8") if args.doc.exists() else ""
    others = [title for name, (title, _) in BENCHMARKS.items() if name not in names]
    page = render(facts, results, failures, args.quick, kept_sections(existing, others))
    args.doc.write_text(page + by_hand(args.doc), encoding="utf-8")
    missed = sum(1 for r in results for g in r["goals"] if not g["met"])
    print(f"== wrote {args.doc} in {time.monotonic() - started:.0f} s: "
          f"{sum(len(r['goals']) for r in results)} goals, {missed} missed, "
          f"{len(failures)} benchmarks failed", flush=True)  # fmt: skip
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
