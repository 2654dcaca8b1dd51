"""Microsoft Graph at scale, against the stand-in Graph (tests/fake_graph.py) with 5% 429s.

1. `roster sync` of 10,000 users in one group, read 999 a page (members and delta), into an
   empty roster: wall time, Graph requests and requests a second, throttled requests, and
   people lost (enabled and mapped, in the group but not on the roster afterwards). One
   worker in 50 has a disabled account and one in 100 an unmapped job title; then a nightly
   (delta) sync after 1% of users changed, which must read none of those held people again.
2. Installing the app for 1,000 people on the roster with no chat: wall time, requests,
   throttled, people left without a chat (lost) and installs Graph saw twice for one person;
   then a second run, which must install nobody.

Graph's `Retry-After` (1 s) and the installer's rate bound are waited on a virtual clock, so
the wall time is the bot's own work and the local server's; the virtual time is how long the
same run would take against Graph at that rate. `--databases sqlite` (or postgresql) to run one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

import tests.fake_graph as fake_graph_module
from bench.common import ROOT, Stopwatch, arguments, database, scratch
from directory.graph import GraphClient, StaticToken
from directory.install import AppInstaller
from directory.mapping import load_mapping
from directory.sync import sync_roster
from practice.framework import load_framework
from storage import roster
from storage.database import Database
from storage.migrate import upgrade
from tests.fake_graph import FakeGraph

ROOT_GROUP = "0b9a3e0c-52f4-4a1e-9d55-3c2b8f0e1a11"
WHEN = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


class VirtualClock:
    """Time that passes only when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def tenant(graph: FakeGraph, size: int, *, held: bool = False) -> None:
    """Fill the fake tenant: one Strategic Manager, a Service Manager for each 100, workers.

    With `held`, one worker in 50 has a disabled account and one in 100 an unmapped title.
    """
    ids = [f"00000000-0000-4000-8000-{n:012d}" for n in range(size)]
    graph.add_user(ids[0], "Head of Service", "head@council.example", "ASC Leadership",
                   "Strategic Manager")  # fmt: skip
    for n in range(1, size):
        if n % 100 == 1:
            graph.add_user(ids[n], f"Manager {n}", f"manager{n}@council.example", "ASC Mendip",
                           "Service Manager", manager=ids[0])  # fmt: skip
        else:
            boss = ids[n - (n - 1) % 100]
            title = "Social Work Apprentice" if held and n % 100 == 2 else "Social Worker"
            graph.add_user(ids[n], f"Worker {n}", f"worker{n}@council.example", "ASC Mendip",
                           title, manager=boss, enabled=not (held and n % 50 == 0))  # fmt: skip
    graph.groups[ROOT_GROUP] = list(ids)


async def sync_bench(url: str, size: int) -> dict[str, Any]:
    framework = load_framework()
    mapping = load_mapping(_mapping_file(), role_codes=[r.code for r in framework.roles])
    graph = await FakeGraph(throttle_rate=0.05, retry_after="1", seed=15).start()
    db = Database(url)
    clock = VirtualClock()
    try:
        tenant(graph, size, held=True)
        async with aiohttp.ClientSession() as http:
            client = GraphClient(
                http=http, base_url=graph.url, tokens=StaticToken(graph.token), sleep=clock.sleep
            )
            with Stopwatch() as watch:
                result = await sync_roster(
                    database=db, client=client, framework=framework, mapping=mapping,
                    groups=[ROOT_GROUP],
                )  # fmt: skip
            # The next night: 1% of users renamed, nobody else changed.
            for user_id in list(graph.users)[1::100]:
                graph.change_user(user_id, displayName=graph.users[user_id].displayName + " Jr")
            night = GraphClient(
                http=http, base_url=graph.url, tokens=StaticToken(graph.token), sleep=clock.sleep
            )
            with Stopwatch() as night_watch:
                again = await sync_roster(
                    database=db, client=night, framework=framework, mapping=mapping,
                    groups=[ROOT_GROUP],
                )  # fmt: skip
        async with db.session() as session:
            on_roster = {s.aad_object_id for s in await roster.all_staff(session=session)}
        placeable = {
            u.id
            for u in graph.users.values()
            if u.accountEnabled and u.jobTitle != "Social Work Apprentice"
        }
        lost = len(set(graph.groups[ROOT_GROUP]) & placeable - on_roster)
        return {
            "users": size,
            "saved": result.saved,
            "errors": len(result.errors),
            "seconds": round(watch.seconds, 2),
            "graph_requests": client.counts.requests,
            "requests_per_second": round(client.counts.requests / watch.seconds, 1),
            "throttled": client.counts.throttled,
            "virtual_wait_seconds": round(clock.now, 1),
            "lost": lost,
            "disabled_held": sum(1 for u in graph.users.values() if not u.accountEnabled),
            "unmapped_held": len(result.changes.unmapped),
            "nightly": {
                "saved": again.saved,
                "seconds": round(night_watch.seconds, 2),
                "graph_requests": night.counts.requests,
                "throttled": night.counts.throttled,
                "updated": len(again.changes.updated),
                "unmapped_listed": len(again.changes.unmapped),
            },
        }
    finally:
        await db.dispose()
        await graph.close()


async def install_bench(url: str, size: int, rate: float) -> dict[str, Any]:
    framework = load_framework()
    mapping = load_mapping(_mapping_file(), role_codes=[r.code for r in framework.roles])
    graph = await FakeGraph(seed=17).start()
    db = Database(url)
    try:
        tenant(graph, size)
        async with aiohttp.ClientSession() as http:
            quiet = GraphClient(http=http, base_url=graph.url, tokens=StaticToken(graph.token))
            synced = await sync_roster(
                database=db, client=quiet, framework=framework, mapping=mapping,
                groups=[ROOT_GROUP],
            )  # fmt: skip
            assert synced.saved, synced.errors[:3]
            graph.throttle_rate = 0.05
            installer = AppInstaller(
                catalog_app_id="catalog-app", bot_app_id="bot", tenant_id=None,
                service_url="https://smba.trafficmanager.net/teams/", rate=rate,
            )  # fmt: skip
            figures: dict[str, Any] = {"people": size, "rate_bound_per_second": rate}
            for run in ("first", "second"):
                clock = VirtualClock()
                client = GraphClient(
                    http=http, base_url=graph.url, tokens=StaticToken(graph.token),
                    sleep=clock.sleep,
                )  # fmt: skip
                with Stopwatch() as watch:
                    result = await installer.run(
                        database=db, client=client, now=lambda: WHEN, sleep=clock.sleep,
                        monotonic=clock,
                    )  # fmt: skip
                figures[run] = {
                    **result.counts(),
                    "seconds": round(watch.seconds, 2),
                    "requests_per_second": round(result.requests / max(watch.seconds, 1e-9), 1),
                    "virtual_seconds": round(clock.now, 1),
                }
        async with db.session() as session:
            people = await roster.all_staff(session=session)
            without = 0
            for person in people:
                assert person.aad_object_id is not None
                chat = await roster.conversation_of(
                    session=session, aad_object_id=person.aad_object_id
                )
                without += chat is None
        figures["lost"] = without
        figures["installed_twice"] = sum(1 for n in graph.installs_made.values() if n > 1)
        return figures
    finally:
        await db.dispose()
        await graph.close()


def _mapping_file() -> Path:
    return ROOT / "examples" / "graph-mapping.yaml"


def main() -> None:
    args = arguments(__doc__ or "")
    logging.basicConfig(level=logging.WARNING)
    # Graph answers up to 999 a page when asked (`$top`, `Prefer: odata.maxpagesize`); the
    # stand-in's delta pages are 200 unless told otherwise.
    fake_graph_module.DELTA_PAGE = 999
    users, people = (2000, 200) if args.quick else (10_000, 1000)
    folder = scratch("directory")
    found: dict[str, Any] = {}
    for kind in args.databases.split(","):
        with database(kind, folder, "sync") as url:
            upgrade(url)
            started = time.perf_counter()
            found[f"{kind}_sync"] = asyncio.run(sync_bench(url, users))
            found[f"{kind}_sync"]["whole_seconds"] = round(time.perf_counter() - started, 2)
        with database(kind, folder, "install") as url:
            upgrade(url)
            found[f"{kind}_install"] = asyncio.run(install_bench(url, people, rate=4.0))
    text = json.dumps(found, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
