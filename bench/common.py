"""What every benchmark shares: its result file, goals, percentiles, databases, memory."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "build" / "bench"
POSTGRES_ADMIN_URL = (
    os.environ.get("PQF_BENCH_POSTGRES_URL")
    or os.environ.get("PQF_TEST_POSTGRES_URL")
    or "postgresql://postgres@127.0.0.1:5432/postgres"
)


@dataclass
class Goal:
    """One goal of the issue: what was wanted, what was measured, and whether it was met."""

    goal: str
    target: str
    measured: str
    met: bool
    note: str = ""


@dataclass
class Result:
    """A benchmark's figures (rows of a table per section), its goals and its notes."""

    name: str
    title: str
    seconds: float = 0.0
    # section title -> rows (each row a dict of column -> value, in column order)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    goals: list[Goal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # When and at which commit it ran ("date", "commit"); stamped by `write`.
    measured: dict[str, str] = field(default_factory=dict)

    def table(self, section: str, row: dict[str, Any]) -> None:
        """Add a row to a section's table, and print it."""
        self.tables.setdefault(section, []).append(row)
        print(f"[{self.name}] {section}: " + ", ".join(f"{k}={v}" for k, v in row.items()),
              flush=True)  # fmt: skip

    def goal(self, goal: str, target: str, measured: str, met: bool, note: str = "") -> None:
        """Record a goal's outcome, and print it."""
        self.goals.append(Goal(goal, target, measured, met, note))
        print(f"[{self.name}] goal {'MET' if met else 'MISSED'}: {goal}: {measured} "
              f"(target {target}){' - ' + note if note else ''}", flush=True)  # fmt: skip

    def write(self, path: Path) -> None:
        """Write the result as JSON for `bench.run` to gather into docs/PERFORMANCE.md."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if not self.measured:
            self.measured = {"date": now_utc(), "commit": commit()}
        path.write_text(json.dumps(asdict(self), indent=2, default=str), encoding="utf-8")


def now_utc() -> str:
    """Return the time now as the page shows it."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def commit() -> str:
    """Return the commit checked out (and whether files differ from it)."""
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    if done.returncode != 0:
        return "unknown"
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    return done.stdout.strip() + (" (with uncommitted changes)" if dirty else "")


def arguments(description: str) -> argparse.Namespace:
    """Parse the options every benchmark takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a smaller, faster run (for trying)")
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    parser.add_argument(
        "--databases", default="sqlite,postgresql",
        help="comma-separated: sqlite, postgresql (default both)",
    )  # fmt: skip
    return parser.parse_args()


def percentile(values: Sequence[float], fraction: float) -> float:
    """Return the value below which `fraction` of the values lie (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    # (less a hair, so that 0.95 × 100 is rank 95 whatever floating point makes of it)
    rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered) - 1e-9)))
    return ordered[rank - 1]


def peak_rss_mb(pid: int) -> float:
    """Return a running process's peak resident memory (VmHWM) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def _admin(sql: str) -> None:
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5) as connection:
        connection.execute(sql.encode())


@contextmanager
def database(kind: str, folder: Path, label: str) -> Iterator[str]:
    """Yield the URL of a new, empty database of this kind; remove it afterwards."""
    if kind == "sqlite":
        path = folder / f"{label}.db"
        for leftover in folder.glob(f"{label}.db*"):
            leftover.unlink()
        yield f"sqlite:///{path}"
        return
    if kind != "postgresql":
        raise ValueError(f"unknown database kind {kind!r}")
    name = f"pqf_bench_{label}_{uuid.uuid4().hex[:8]}"
    _admin(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Stopwatch:
    """Time a block: `with Stopwatch() as watch: ...; watch.seconds`."""

    def __enter__(self) -> Stopwatch:
        self._start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *_: object) -> None:
        self.seconds = time.perf_counter() - self._start


def scratch(name: str) -> Path:
    """Return an empty scratch folder for a benchmark under build/bench/."""
    folder = RESULTS / "scratch" / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def free_port() -> int:
    """Return a TCP port nobody is listening on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
