"""Who may see which report and audit: the rules, the signed links, the pages and Teams."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import select

from admin.demo_data import cases_csv, staff_csv
from bot.app import create_app
from bot.links import InvalidLinkError, LinkClaims, LinkMaker, sign, verify
from bot.settings import load_settings
from practice.access import AuditAccess, Viewer, can_view_audit, report_scope
from practice.framework import Framework
from practice.report import AuditFacts, ModerationPair, ReportScope, build_report
from scheduler.jobs import Cycle, dispatch_month, sample_for_moderation
from storage import access_log
from storage.csv_import import import_cases, import_staff
from storage.database import Database
from storage.models import AuditRequest, Staff
from tests.harness import BotHarness, User, all_text
from tests.test_moderation_and_outcomes import complete
from tests.test_monthly_cycle import LONDON

SECRET = "s" * 40
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def viewer(role: str, staff_id: int = 1, team: str = "Mendip", **extra: object) -> Viewer:
    return Viewer(id=staff_id, role_code=role, team=team, active=True, **extra)  # type: ignore[arg-type]


AUDIT = AuditAccess(auditor_id=10, subject_id=20, team="Sedgemoor")


@pytest.mark.parametrize(
    ("who", "sees_audit", "scope_label"),
    [
        (viewer("PDAP"), True, "All teams"),
        (viewer("SM"), True, "All teams"),
        (viewer("DIR"), True, "All teams"),
        (viewer("SVM"), False, "Mendip"),
        (viewer("SVM", team="Sedgemoor"), True, "Sedgemoor"),
        (
            viewer("SVM", supervisee_teams=frozenset({"Sedgemoor"}), supervisees=frozenset({5})),
            True,
            "Mendip, Sedgemoor",
        ),
        (viewer("AP"), False, "Your audits and audits of your work"),
        (viewer("SW", staff_id=10), True, "Your audits and audits of your work"),  # the auditor
        (
            viewer("SW", staff_id=20),
            True,
            "Your audits and audits of your work",
        ),  # the audited worker
        (viewer("SW", staff_id=30), False, "Your audits and audits of your work"),
        (
            viewer("AP", supervisees=frozenset({20})),
            True,
            "Your audits and your team's",
        ),  # supervisor
        (viewer("MOD"), False, "Your audits, audits of your work and those drawn for moderation"),
    ],
)
def test_each_role_against_an_audit_and_the_report(
    framework: Framework, who: Viewer, sees_audit: bool, scope_label: str
) -> None:
    assert can_view_audit(framework, who, AUDIT) is sees_audit
    scope = report_scope(framework, who)
    assert scope is not None
    assert scope.label == scope_label


def test_moderators_see_sampled_audits_and_inactive_people_nothing(framework: Framework) -> None:
    sampled = AuditAccess(
        auditor_id=10, subject_id=20, team="Sedgemoor", sampled_for_moderation=True
    )
    assert can_view_audit(framework, viewer("MOD"), sampled)
    assert not can_view_audit(framework, viewer("SW"), sampled)
    gone = Viewer(id=10, role_code="PDAP", team="x", active=False)
    assert not can_view_audit(framework, gone, AUDIT)
    assert report_scope(framework, gone) is None


def test_a_moderators_report_covers_the_audits_drawn_for_moderation(framework: Framework) -> None:
    def audit(audit_id: int, auditor: int, *, sampled: bool) -> AuditFacts:
        return AuditFacts(
            audit_id=audit_id, month="2026-11", standard=3, kind="sampled", status="submitted",
            due_on=date(2026, 11, 30), submitted_on=date(2026, 11, 20), auditor_id=auditor,
            auditor_role="SVM", team="Sedgemoor", subject_id=30, ratings={"3.1": "meets"},
            sampled_for_moderation=sampled,
        )  # fmt: skip

    audits = [audit(1, 10, sampled=True), audit(2, 11, sampled=False)]
    pairs = [ModerationPair(1, 10, "3.1", "meets", "below")]
    scope = report_scope(framework, viewer("MOD", staff_id=40))
    assert scope is not None
    report = build_report(
        framework, first_month="2026-11", last_month="2026-11", audits=audits,
        moderation=pairs, scope=scope, as_of=date(2026, 12, 2),
    )  # fmt: skip
    assert report.total_completed == 1
    assert report.moderation_overall is not None
    # A drill-down still narrows it: another team's sample is not in a team's page.
    narrowed = ReportScope(scope.label, teams=frozenset({"Mendip"}), moderation_sample=True)
    assert not narrowed.includes(audits[0])
    # Nobody else sees an audit for being in the sample.
    other = report_scope(framework, viewer("SW", staff_id=40))
    assert other is not None
    assert not other.includes(audits[0])


def test_links_are_signed_and_expire() -> None:
    claims = LinkClaims("report", 7, NOW + timedelta(minutes=15), "2023-09", "2023-09")
    token = sign(claims, SECRET)
    assert verify(token, SECRET, NOW) == claims
    body, signature = token.split(".")
    for forged in (
        body + "." + signature[:-2] + "AA",  # tampered signature
        sign(LinkClaims("report", 8, claims.expires, "2023-09", "2023-09"), "another-secret" * 3),
        "not-a-token",
        "a.b.c",
    ):
        with pytest.raises(InvalidLinkError):
            verify(forged, SECRET, NOW)
    # Changing who the link is for breaks the signature.
    payload = json.loads(base64.urlsafe_b64decode(body + "=="))
    payload["v"] = 1
    edited = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidLinkError, match="altered"):
        verify(edited + "." + signature, SECRET, NOW)
    with pytest.raises(InvalidLinkError, match="expired"):
        verify(token, SECRET, NOW + timedelta(minutes=16))


# -- the pages, through HTTP ---------------------------------------------------------------------


@pytest.fixture
async def world(
    sqlite_url: str, framework: Framework
) -> AsyncIterator[tuple[TestClient, Database, dict[str, int]]]:  # type: ignore[type-arg]
    database = Database(sqlite_url)
    async with database.session() as session:
        assert (await import_staff(session=session, framework=framework, text=staff_csv())).ok
        assert (await import_cases(session=session, text=cases_csv(date(2026, 11, 2)))).ok
    cycle = Cycle(database=database, framework=framework, zone=LONDON)
    await dispatch_month(cycle, "2026-11", seed="access")
    async with database.session() as session:
        audits = list(await session.exec(select(AuditRequest)))
        ids = {s.email: s.id for s in await session.exec(select(Staff))}
    for audit in audits:
        assert audit.id is not None
        await complete(database, framework, audit.id)
    await sample_for_moderation(cycle, date(2026, 12, 1))
    settings = load_settings(
        env_file=None, DATABASE_URL=sqlite_url, PQF_RUN_SCHEDULER="false", PQF_RUN_SENDER="false",
        PQF_LINK_SECRET=SECRET, PQF_PUBLIC_URL="https://pqf.example",
    )  # fmt: skip
    client = TestClient(TestServer(create_app(settings, framework=framework, clock=lambda: NOW)))
    await client.start_server()
    yield client, database, ids  # type: ignore[misc]
    await client.close()
    await database.dispose()


def links(now: datetime = NOW) -> LinkMaker:
    return LinkMaker(public_url="https://pqf.example", secret=SECRET, minutes=15, clock=lambda: now)


def path(url: str) -> str:
    parsed = urlparse(url)
    return f"{parsed.path}?t={parse_qs(parsed.query)['t'][0]}"


async def test_report_pages_show_each_person_their_part(
    world: tuple[TestClient, Database, dict[str, int]],
) -> None:  # type: ignore[type-arg]
    client, _, ids = world
    for email, expected, absent in (
        ("isaiahl@example.com", "All teams", None),  # PDAP
        ("meganb@example.com", "Mendip Adult Social Care Team", "Sedgemoor Adult Social Care Team"),
        ("alexw@example.com", "Your audits", None),
    ):
        response = await client.get(path(links().report(ids[email], "2026-11", "2026-11")))
        assert response.status == 200, email
        page = await response.text()
        assert expected in page
        assert "PQF Standard 3" in page or "no audits" in page.lower()
        if absent:
            assert f"<td>{absent}</td>" not in page
            assert f'scope="row">{absent}<' not in page
        assert response.headers["Cache-Control"] == "no-store"
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]


async def test_tampered_expired_and_stale_links_are_refused(
    world: tuple[TestClient, Database, dict[str, int]],
) -> None:  # type: ignore[type-arg]
    client, database, ids = world
    good = path(links().report(ids["isaiahl@example.com"], "2026-11", "2026-11"))
    tampered = good[:-3] + ("A" if good[-3] != "A" else "B") + good[-2:]
    expired = path(
        links(NOW - timedelta(minutes=30)).report(ids["isaiahl@example.com"], "2026-11", "2026-11")
    )
    for bad in (tampered, expired, "/reports?t=nonsense", "/reports"):
        response = await client.get(bad)
        assert response.status == 403
        assert "cannot be opened" in await response.text()
    async with database.session() as session:
        isaiah = await session.get(Staff, ids["isaiahl@example.com"])
        assert isaiah is not None
        isaiah.active = False
        session.add(isaiah)
    removed = await client.get(good)
    assert removed.status == 403
    assert "no longer on the audit roster" in await removed.text()


def signed(payload: object) -> str:
    """Return a link token for any payload, signed with the real secret (as only we can)."""
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    mac = hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


async def test_genuine_links_with_values_out_of_range_are_refused_not_500(
    world: tuple[TestClient, Database, dict[str, int]],
) -> None:  # type: ignore[type-arg]
    client, _, ids = world
    viewer_id = ids["isaiahl@example.com"]
    soon = int((NOW + timedelta(minutes=5)).timestamp())
    report = {"k": "report", "v": viewer_id, "e": soon, "f": "2026-11", "l": "2026-11"}
    audit = {"k": "audit", "v": viewer_id, "e": soon, "a": 1}
    payloads: list[object] = [
        {**report, "e": 10**30},
        {**report, "e": -(10**30)},
        {**report, "e": 1e300},
        {**report, "e": "soon"},
        {**report, "v": 2**70},
        {**report, "v": -1},
        {**report, "v": True},
        {**report, "v": "7"},
        {**report, "f": "2026-13"},
        {**report, "f": "0000-01"},
        {**report, "l": "2026-00"},
        {**report, "f": 202611},
        {**report, "f": "2027-01"},  # first after last
        {key: value for key, value in report.items() if key != "f"},
        {**audit, "a": 2**70},
        {**audit, "a": 0},
        {**audit, "a": None},
        {**audit, "k": ["audit"]},
        {**audit, "k": "other"},
        {key: value for key, value in audit.items() if key != "a"},
        [1, 2],
        "text",
    ]
    for payload in payloads:
        token = signed(payload)
        with pytest.raises(InvalidLinkError, match="cannot be read"):
            verify(token, SECRET, NOW)
        for page in ("/reports", "/audits", "/audits.pdf"):
            response = await client.get(f"{page}?t={token}")
            assert response.status == 403, (payload, page, response.status)
            assert "This link cannot be read." in await response.text()
    # The page says each reason once, in a sentence.
    expired = signed({**report, "e": int((NOW - timedelta(minutes=1)).timestamp())})
    text = await (await client.get(f"/reports?t={expired}")).text()
    assert "This link has expired." in text
    assert "link the link" not in text.lower()
    assert (await client.get(f"/reports?t={signed(report)}")).status == 200


async def test_audit_downloads_follow_the_access_rules(
    world: tuple[TestClient, Database, dict[str, int]],
) -> None:  # type: ignore[type-arg]
    client, database, ids = world
    async with database.session() as session:
        audit = (
            await session.exec(
                select(AuditRequest).where(AuditRequest.auditor_id == ids["alexw@example.com"])
            )
        ).first()
    assert audit is not None
    assert audit.id is not None
    mine = await client.get(path(links().audit(ids["alexw@example.com"], audit.id, pdf=False)))
    assert mine.status == 200
    assert "Evidence for 3.1" in await mine.text()
    pdf = await client.get(
        path(links().audit(ids["meganb@example.com"], audit.id, pdf=True))
    )  # his supervisor
    assert pdf.status == 200
    assert (await pdf.read()).startswith(b"%PDF")
    assert "attachment" in pdf.headers["Content-Disposition"]
    stranger = await client.get(
        path(links().audit(ids["sam.green@example.com"], audit.id, pdf=False))
    )
    assert stranger.status == 403
    swapped = (
        links()
        .report(ids["alexw@example.com"], "2026-11", "2026-11")
        .replace("/reports", "/audits")
    )
    assert (await client.get(path(swapped))).status == 403
    # Who opened what is in the access log; refusals open nothing.
    async with database.session() as session:
        logged = await access_log.entries(session=session)
    assert [(e.staff_id, e.action, e.target, e.via) for e in reversed(logged)] == [
        (ids["alexw@example.com"], "audit_page", f"audit {audit.id}", "link"),
        (ids["meganb@example.com"], "audit_pdf", f"audit {audit.id}", "link"),
    ]


# -- in Teams -------------------------------------------------------------------------------------

PDAP = User("00000000-0000-0000-0000-0000000000023", "user-id-3", "Isaiah Langer")
ALEX = User("00000000-0000-0000-0000-0000000000020", "user-id-0", "Alex Wilber")


async def test_report_command_and_download_in_teams(
    world: tuple[TestClient, Database, dict[str, int]], framework: Framework
) -> None:  # type: ignore[type-arg]
    _, database, ids = world
    harness = BotHarness(database=database, framework=framework, clock=lambda: NOW)
    summary = await harness.say(PDAP, "report 2026-11")
    card = summary.card
    assert "Audit report" in all_text(card)
    assert "All teams" in all_text(card)
    url = next(a["url"] for a in card["actions"] if a["type"] == "Action.OpenUrl")
    assert "/reports?t=" in url
    mine = await harness.say(ALEX, "report")
    assert "Your audits" in all_text(mine.card)
    download = next(
        a["data"]
        for a in _all_actions(mine.card)
        if a.get("data", {}).get("pqf") == "audit.download"
    )
    links_turn = await harness.submit(ALEX, mine.card_ids[-1], download)
    assert "Download the audit" in all_text(links_turn.card)
    assert {a["title"] for a in _all_actions(links_turn.card)} == {
        "Open as a web page",
        "Download as PDF",
    }
    async with database.session() as session:
        other = (
            await session.exec(
                select(AuditRequest).where(AuditRequest.auditor_id == ids["sam.green@example.com"])
            )
        ).first()
    assert other is not None
    refused = await harness.submit(ALEX, None, {"pqf": "audit.download", "audit_id": other.id})
    assert "not one you may see" in refused.text
    bad = await harness.say(ALEX, "report last month")
    assert "couldn't read that" in bad.text
    started = time.perf_counter()
    huge = await harness.say(ALEX, "report 0001-01 to 9999-12")
    assert "can't make that report: 0001-01 is before 2000-01" in huge.text
    long = await harness.say(ALEX, "report 2010-01 to 2026-11")
    assert "a report covers at most 120 months (10 years)" in long.text
    assert time.perf_counter() - started < 5


def _all_actions(card: dict) -> list[dict]:  # type: ignore[type-arg]
    from tests.harness import actions

    return actions(card)
