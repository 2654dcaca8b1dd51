"""Other people's turns while a ten-year report is made: their p50 and p99, idle and loaded.

One SQLite database holds ten years of history (bench.reports: 2,000 staff, about 228,000
audits, months 2016-09 to 2026-07) and the turn benchmark's auditors, each with audits in
progress, plus one Practice Development Advanced Practitioner, who may see the whole report.
The real bot (`pqf-bot serve`, development mode, scheduler and sender off) runs in a child
process; a fake Bot Connector in this process answers at once.

For each way of making reports (PQF_REPORT_WORKERS=2, the default: worker processes; and 0:
on the bot's own event loop, as before reports moved off it) the auditors take turns at a
Poisson rate of 10 a second for a window with nothing else going on ("idle"), then for a
window while the practitioner asks `report 2016-09 to 2026-08` in Teams and opens the link it
gives, one after the other, over and over ("ten-year report"); three rounds of the two,
alternating, so that a change in the machine's other load falls on both. Latency is from
sending a turn's POST to its answer. Prints one line per window, the windows of each kind
pooled, and the ratio of loaded to idle p99 (goal: under 2). Takes about 15 minutes.

    .venv/bin/python -m bench.report_load [--quick] [--workers 2,0] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from bench.common import percentile, scratch
from bench.reports import load
from bench.turns import (
    BOT_ACCOUNT,
    TENANT,
    Auditor,
    Child,
    Connector,
    Load,
    _bot_env,
    _cases_csv,
    _cli,
    _request_audits,
    _staff_csv,
    people,
)
from practice.framework import load_framework

AUDITORS = 50
RATE = 10.0  # turns per second, offered by all the auditors together
REPORT = "report 2016-09 to 2026-08"  # 120 months: the longest a report may cover
REPORTER = {"email": "pdap@bench.example", "aad": str(uuid.UUID(int=7, version=4))}


@dataclass
class Window:
    """One measured window: the other people's turns, and the reports made meanwhile."""

    workers: int
    load: str
    turns: list[float] = field(default_factory=list)
    failed: int = 0
    reports: list[float] = field(default_factory=list)  # seconds per report (command or page)

    def line(self) -> str:
        p50, p99 = percentile(self.turns, 0.5) * 1000, percentile(self.turns, 0.99) * 1000
        made = f"{len(self.reports)} reports, {sum(self.reports):.1f} s" if self.reports else "-"
        return (
            f"workers={self.workers} {self.load:<16} turns={len(self.turns):4d} "
            f"failed={self.failed} p50={p50:7.1f} ms p99={p99:7.1f} ms "
            f"max={max(self.turns) * 1000:7.1f} ms  reports: {made}"
        )


def prepare(folder: Path, url: str, each: int) -> dict[int, list[int]]:
    """Load the history, add the auditors and the practitioner; return audit ids by auditor."""
    started = time.perf_counter()
    load("sqlite", url, load_framework(None), 10)
    print(f"[report_load] ten years loaded in {time.perf_counter() - started:.0f} s", flush=True)
    auditors = people(AUDITORS)
    staff = _staff_csv(auditors) + (
        f"{REPORTER['email']},Practice Development AP,PDAP,Bench Team 00,,{REPORTER['aad']}\n"
    )
    (folder / "staff.csv").write_text(staff, encoding="utf-8")
    (folder / "cases.csv").write_text(_cases_csv(auditors), encoding="utf-8")
    _cli(folder, url, "import-staff", str(folder / "staff.csv"))
    _cli(folder, url, "import-cases", str(folder / "cases.csv"))
    return asyncio.run(_request_audits(url, auditors, each))


def _report_activity(service_url: str, number: int) -> bytes:
    return json.dumps(
        {
            "type": "message",
            "id": f"report-{number}",
            "text": REPORT,
            "timestamp": datetime.now(UTC).isoformat(),
            "channelId": "msteams",
            "serviceUrl": service_url,
            "from": {"id": "29:pdap", "aadObjectId": REPORTER["aad"], "name": "PDAP"},
            "conversation": {
                "id": "personal-pdap",
                "conversationType": "personal",
                "tenantId": TENANT,
            },
            "recipient": BOT_ACCOUNT,
            "channelData": {"tenant": {"id": TENANT}},
        }
    ).encode()


async def reporter(bot_url: str, connector: Connector, stop: asyncio.Event, window: Window) -> None:
    """Ask for the ten-year report and open its link, again and again until stopped."""
    number = 0
    async with aiohttp.ClientSession() as session:
        while not stop.is_set():
            number += 1
            started = time.perf_counter()
            async with session.post(
                f"{bot_url}/api/messages", data=_report_activity(connector.url, number),
                headers={"Content-Type": "application/json"},
            ) as response:  # fmt: skip
                await response.read()
                if response.status not in (200, 201):
                    raise RuntimeError(f"the report command answered {response.status}")
            window.reports.append(time.perf_counter() - started)
            body = connector.cards.get("personal-pdap", ("", b""))[1].decode()
            found = re.search(r'"url":\s*"([^"]+/reports\?t=[^"]+)"', body)
            if found is None:
                raise RuntimeError(f"no report link in the card: {body[:300]}")
            if stop.is_set():
                break
            started = time.perf_counter()
            async with session.get(found[1]) as page:
                await page.read()
                if page.status != 200:
                    raise RuntimeError(f"the report page answered {page.status}")
            window.reports.append(time.perf_counter() - started)


async def measure(
    bot: Child, ids: dict[int, list[int]], workers: int, plan: tuple[float, float, int]
) -> list[Window]:
    """Measure the auditors' turns idle, then while the ten-year report is made, in rounds."""
    warmup, seconds, rounds = plan
    connector = await Connector().start()
    auditors = [Auditor(p, ids[p.index], echo=False) for p in people(AUDITORS)]
    load_ = Load(bot.url, connector, auditors)
    windows = []
    try:
        async with load_.session():
            await load_.everyone_once()
            for name in ("idle", "ten-year report") * rounds:
                window = Window(workers, name)
                stop = asyncio.Event()
                task = None
                if name != "idle":
                    task = asyncio.create_task(reporter(bot.url, connector, stop, window))
                    await asyncio.sleep(1)  # the first report is under way
                samples, _ = await load_.open_loop(RATE, warmup, seconds)
                stop.set()
                if task is not None:
                    await task
                window.turns = [s.seconds for s in samples if s.ok]
                window.failed = sum(1 for s in samples if not s.ok)
                print(window.line(), flush=True)
                windows.append(window)
    finally:
        await connector.close()
    return windows


def main() -> None:
    """Run the measurement and print it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="short windows, for trying")
    parser.add_argument("--workers", default="2,0", help="PQF_REPORT_WORKERS values to compare")
    parser.add_argument("--rounds", type=int, help="rounds of idle then loaded windows")
    options = parser.parse_args()
    # (warm-up s, window s, rounds of idle then loaded), and audits asked of each auditor.
    plan, each = ((2.0, 15.0, 1), 4) if options.quick else ((5.0, 45.0, 3), 12)
    if options.rounds:
        plan = (plan[0], plan[1], options.rounds)
    random.seed(1)
    folder = scratch("report_load")
    url = f"sqlite:///{folder / 'history.db'}"
    ids = prepare(folder, url, each)
    results: list[Window] = []
    for workers in (int(w) for w in options.workers.split(",")):
        env = {**_bot_env(url), "PQF_REPORT_WORKERS": str(workers)}
        bot = Child(f"bot-{workers}", [sys.executable, "-m", "admin", "serve"], env,
                    folder / f"bot-{workers}.log")  # fmt: skip
        bot.env["PQF_PUBLIC_URL"] = bot.url
        with bot:
            results += asyncio.run(measure(bot, ids, workers, plan))
    for workers in sorted({w.workers for w in results}, reverse=True):
        pooled = {}
        for name in ("idle", "ten-year report"):
            windows = [w for w in results if w.workers == workers and w.load == name]
            pooled[name] = Window(workers, f"{name} (all)", [t for w in windows for t in w.turns],
                                  sum(w.failed for w in windows),
                                  [r for w in windows for r in w.reports])  # fmt: skip
            print(pooled[name].line())
        ratio = percentile(pooled["ten-year report"].turns, 0.99) / percentile(
            pooled["idle"].turns, 0.99
        )
        print(f"workers={workers}: p99 with a ten-year report / idle p99 = {ratio:.2f} (goal < 2)")


if __name__ == "__main__":
    main()
