"""Fingerprint what the bot produces, so that a change meant to keep behaviour can show it did.

Prints one sha256 for each of:

- the outbox and the audit requests of a 10,000-staff month (October 2026, a fixed seed),
  dispatched by `pqf-bot dispatch` into a new SQLite database seeded as benchmark 2 seeds
  it; request cards are made as the sender would make them;
- the Board's report from the example history (`examples/history`) in every format, for a
  month, a period and a team, written by `pqf-bot report`: HTML, JSON and CSV byte for byte,
  XLSX by the worksheets and shared strings inside it (its zip also holds the time it was
  written);
- every card of the test suite's card gallery.

Run it before and after a change (`python -m bench.fingerprint`, about a minute) and compare.
Everything goes through the command line and the card builders, which a restructure keeps,
so the same script fingerprints both sides; only its imports follow moved code.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine
from sqlmodel import Session, select

from bench.common import ROOT, scratch
from bench.dispatch import seed_database, workforce
from practice.framework import load_framework
from storage.database import Database, sync_url
from storage.models import AuditRequest, OutboxMessage

MONTH = "2026-10"
SEED = "fingerprint"
STAFF = 10_000
REPORTS = [
    ("2023-09", "2023-09", None),
    ("2023-09", "2024-02", None),
    ("2023-09", "2023-09", "Mendip Adult Social Care Team"),
]


def _pqf_bot(database_url: str, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "admin", *args],
        env={**os.environ, "DATABASE_URL": database_url, "PQF_ENVIRONMENT": "development"},
        cwd=ROOT, check=True, capture_output=True, text=True,
    )  # fmt: skip


def _digest(parts: list[bytes]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


async def _rendered(url: str, rows: list[OutboxMessage]) -> list[dict[str, Any]]:
    from messages.request_cards import outbox_activity

    framework = load_framework()
    database = Database(url)
    try:
        return [
            await outbox_activity(database=database, framework=framework, message=row)
            for row in rows
        ]
    finally:
        await database.dispose()


def month_fingerprint(folder: Path) -> dict[str, str]:
    """Dispatch a 10,000-staff month and fingerprint its requests and outbox."""
    url = f"sqlite:///{folder / 'month.db'}"
    _pqf_bot(url, "migrate")
    seed_database(url, workforce(load_framework(), STAFF))
    _pqf_bot(url, "dispatch", "--month", MONTH, "--seed", SEED)
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as connection:
            requests = connection.execute(
                select(
                    AuditRequest.id, AuditRequest.auditor_id, AuditRequest.standard,  # type: ignore[call-overload]
                    AuditRequest.kind, AuditRequest.month, AuditRequest.case_id,
                    AuditRequest.subject_worker_id, AuditRequest.due_on, AuditRequest.status,
                ).where(AuditRequest.month == MONTH).order_by(AuditRequest.id)
            ).all()  # fmt: skip
        with Session(engine) as session:
            messages = list(
                session.exec(
                    select(OutboxMessage)
                    .where(OutboxMessage.period == MONTH)
                    .order_by(OutboxMessage.idempotency_key)
                )
            )
    finally:
        engine.dispose()
    rendered = asyncio.run(_rendered(url, messages))
    rows = [
        json.dumps(
            [m.idempotency_key, m.recipient_id, m.purpose, m.period, m.audit_id, m.activity, made],
            sort_keys=True,
        ).encode()
        for m, made in zip(messages, rendered, strict=True)
    ]
    return {
        f"requests ({len(requests)})": _digest([repr(tuple(r)).encode() for r in requests]),
        f"outbox ({len(rows)})": _digest(rows),
    }


def _xlsx_contents(path: Path) -> bytes:
    with zipfile.ZipFile(path) as workbook:
        names = sorted(n for n in workbook.namelist() if n.startswith("xl/"))
        return b"".join(name.encode() + workbook.read(name) for name in names)


def report_fingerprints(folder: Path) -> dict[str, str]:
    """Write the example history's reports in every format and fingerprint them."""
    url = f"sqlite:///{folder / 'history.db'}"
    _pqf_bot(url, "migrate")
    _pqf_bot(url, "import-staff", str(ROOT / "examples/history/staff.csv"))
    _pqf_bot(url, "import-audits", str(ROOT / "examples/history/audits-2023-09.csv"))
    found = {}
    for first, last, team in REPORTS:
        for form in ("html", "json", "csv", "xlsx"):
            out = folder / f"report-{first}-{last}-{bool(team)}.{form}"
            args = ["report", "--month", first, "--to", last, "--format", form, "--out", str(out)]
            _pqf_bot(url, *args, *(["--team", team] if team else []))
            data = _xlsx_contents(out) if form == "xlsx" else out.read_bytes()
            found[f"report {first}..{last}{' team' if team else ''} {form}"] = _digest([data])
    return found


def card_fingerprint() -> dict[str, str]:
    """Fingerprint every card of the test suite's gallery."""
    sys.path.insert(0, str(ROOT))
    from tests.card_gallery import phone_gallery

    cards = phone_gallery(load_framework())
    parts = [json.dumps([name, cards[name]], sort_keys=True).encode() for name in sorted(cards)]
    return {f"cards ({len(parts)})": _digest(parts)}


def main() -> None:
    folder = scratch("fingerprint")
    found = {**card_fingerprint(), **report_fingerprints(folder), **month_fingerprint(folder)}
    for name, digest in found.items():
        print(f"{digest}  {name}")


if __name__ == "__main__":
    main()
