"""Sync the roster from Microsoft Graph: who is in the groups, what changed, then all or nothing.

Each run reads the members of the configured groups (`transitiveMembers`, so people in
groups nested inside them count, ids only, 999 a page) and the users' changes since the last
run (`/users/delta`, following the stored `@odata.deltaLink`; the first run reads every user
once). A member new to the roster whose record the delta did not hold is read on its own
(`/users/{id}` and `/users/{id}/manager`), and so is a manager outside the groups, to name
them (and to find one a roster file put on the roster by email alone). The people the last run
could not place (unmapped, or a disabled account new to the roster) are held with their
last-read record and weighed again with the changes, so they are not read again every night
and a fixed mapping file places them. The mapping file's no_supervisor: entries are checked
each run (`no_supervisor.py`): one that does nothing is reported, never a reason to stop. The
changes are worked out by `roster_diff.diff_roster`
against the roster as it is when they are saved, and saved through the roster import's own
checks: any problem (a manager not on the roster among them) saves nothing, not even the new
delta link or the held records. With an `AppInstaller`, the nightly job then installs the
app for whoever still has no chat (`install.py`), once a night however many instances run it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
from sqlmodel.ext.asyncio.session import AsyncSession

from directory.graph import GraphClient, GraphError, TokenSource
from directory.install import AppInstaller
from directory.mapping import DirectoryMapping, load_mapping
from directory.no_supervisor import EntryFinding, judge_entries, read_for_entries
from directory.roster_diff import (
    USER_PROPERTIES,
    DirectoryUser,
    RosterChanges,
    RosterPerson,
    diff_roster,
    user_of,
)
from practice.framework import Framework
from storage.csv_import import save_staff_rows
from storage.database import Database
from storage.directory_sync import (
    change_emails,
    delta_link,
    forget_delta_link,
    held_records,
    keep_held_records,
    remember_delta_link,
    roster_rows,
)
from storage.jobs import last_run, run_once
from storage.models import utc_now

log = logging.getLogger(__name__)

SOURCE = "graph-users"
NIGHTLY_JOB = "roster-sync"
NIGHTLY_INSTALL = "app-install"
MEMBERS_PAGE = 999
# For one request (a page of 999 members can take Graph a while), connecting included.
GRAPH_TIMEOUT = aiohttp.ClientTimeout(total=100, connect=15)


@dataclass
class DirectoryRead:
    """What one run read from Graph."""

    scope: set[str]
    users: dict[str, DirectoryUser]
    removed: set[str]
    delta_link: str
    whole: bool  # whether every user was read (the first run, or after Graph dropped the link)
    # Managers outside the groups and off the roster, by id (None: not in the directory).
    managers: dict[str, DirectoryUser | None] = field(default_factory=dict)
    # no_supervisor: entries matching no one else read, as Entra ID has them (None: nobody).
    entries_found: dict[str, DirectoryUser | None] = field(default_factory=dict)


@dataclass
class SyncResult:
    """What a sync changed (or, on a dry run, would change), or why it saved nothing."""

    changes: RosterChanges
    dry_run: bool
    whole: bool
    saved: bool = False
    errors: list[str] = field(default_factory=list)
    requests: int = 0
    throttled: int = 0
    # no_supervisor: entries that do nothing (a typo, a leaver, not needed): never an error.
    entries: list[EntryFinding] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Return how many people each kind of change touched, and Graph's requests."""
        return {
            "added": len(self.changes.added),
            "updated": len(self.changes.updated),
            "deactivated": len(self.changes.deactivated),
            "unmapped": len(self.changes.unmapped),
            "manager_not_on_roster": len(self.changes.manager_missing),
            "no_supervisor_to_check": len(self.entries),
            "graph_requests": self.requests,
            "graph_throttled": self.throttled,
        }

    def as_json(self) -> dict[str, Any]:
        """Return the result for `roster sync --json`."""
        return {
            "dry_run": self.dry_run,
            "whole_directory": self.whole,
            "saved": self.saved,
            "errors": self.errors,
            **self.changes.as_json(),
            "no_supervisor_to_check": [finding.as_json() for finding in self.entries],
            "graph_requests": self.requests,
            "graph_throttled": self.throttled,
        }


async def read_directory(
    client: GraphClient,
    *,
    groups: Sequence[str],
    link: str | None,
    on_roster: Set[str],
    held: Mapping[str, DirectoryUser] | None = None,
) -> DirectoryRead:
    """Read the groups' members and the users' changes since `link` (all users without one).

    `held` are the records of people the last run could not place: with a delta, they stand
    for those people, brought up to date with whatever the delta says of them.
    """
    scope: set[str] = set()
    for group in groups:
        path = f"groups/{group}/transitiveMembers/microsoft.graph.user"
        try:
            async for page in client.pages(path, {"$select": "id", "$top": str(MEMBERS_PAGE)}):
                scope.update(str(member["id"]).lower() for member in page.get("value", []))
        except GraphError as error:
            if error.status == 404:
                raise GraphError(
                    f"group {group} (PQF_GRAPH_GROUPS) does not exist in this tenant",
                    status=404,
                    code=error.code,
                ) from error
            raise
    try:
        read = await _read_delta(client, link)
    except GraphError as error:
        expired = error.status == 410 or (error.status == 400 and "sync" in error.code.lower())
        if link is None or not expired:
            raise
        # Graph no longer knows the link (it expires after a while): start again.
        log.warning("graph delta link refused (%s); reading every user again", error.status)
        read = await _read_delta(client, None)
    read.scope = scope
    if not read.whole:
        for user_id, record in (held or {}).items():
            if user_id in scope and user_id not in read.removed:
                newer = read.users.get(user_id)
                read.users[user_id] = record.merged(newer) if newer else record
    newcomers = sorted(
        user_id
        for user_id in scope - on_roster - read.removed
        if user_id not in read.users or not read.users[user_id].complete
    )
    for user_id in newcomers:
        user = await _read_user(client, user_id)
        if user is not None:
            read.users[user_id] = user
    managers = {
        user.manager_id
        for user_id, user in read.users.items()
        if user_id in scope and user.manager_known and user.manager_id
    }
    # Outside the groups and off the roster (by object id): read, unless the delta held them.
    outside = sorted(
        manager_id
        for manager_id in managers - scope - on_roster
        if manager_id not in read.users or not read.users[manager_id].complete
    )
    for manager_id in outside:
        read.managers[manager_id] = await _read_user(client, manager_id, with_manager=False)
    return read


async def _read_delta(client: GraphClient, link: str | None) -> DirectoryRead:
    whole = link is None
    users: dict[str, DirectoryUser] = {}
    removed: set[str] = set()
    params = None if link else {"$select": ",".join([*USER_PROPERTIES, "manager"])}
    last: dict[str, Any] = {}
    async for page in client.pages(link or "users/delta", params):
        for item in page.get("value", []):
            user_id = str(item["id"]).lower()
            if "@removed" in item:
                removed.add(user_id)
                users.pop(user_id, None)
                continue
            removed.discard(user_id)
            manager, known = _manager_of(item, whole=whole)
            users[user_id] = user_of(item, manager=manager, manager_known=known)
        last = page
    new_link = last.get("@odata.deltaLink")
    if not new_link:
        raise GraphError("Graph's delta answer ended without an @odata.deltaLink")
    return DirectoryRead(set(), users, removed, str(new_link), whole)


def _manager_of(item: dict[str, Any], *, whole: bool) -> tuple[str | None, bool]:
    """Return (manager's id or None, whether that is known) from a delta item."""
    changes = item.get("manager@delta")
    if not changes:
        # A whole read lists every manager, so none listed means none; a later one lists
        # a manager only when it changed.
        return None, whole
    current = [c for c in changes if "@removed" not in c]
    return (str(current[-1]["id"]) if current else None), True


async def _read_user(
    client: GraphClient, user_id: str, *, with_manager: bool = True
) -> DirectoryUser | None:
    """Return a user's record (and who their manager is, if asked), None if gone."""
    try:
        item = await client.get(f"users/{user_id}", {"$select": ",".join(USER_PROPERTIES)})
    except GraphError as error:
        if error.status == 404:
            return None  # gone between the two requests
        raise
    if not with_manager:
        return user_of(item, manager_known=False)
    status, manager = await client.request(
        "GET", f"users/{user_id}/manager", params={"$select": "id"}, accept=frozenset({404})
    )
    manager_id = str(manager["id"]) if status != 404 and "id" in manager else None
    return user_of(item, manager=manager_id, manager_known=True)


async def sync_roster(
    *,
    database: Database,
    client: GraphClient,
    framework: Framework,
    mapping: DirectoryMapping,
    groups: Sequence[str],
    dry_run: bool = False,
    whole: bool = False,
) -> SyncResult:
    """Bring the roster in line with the groups' members in Graph; on a dry run, change nothing."""
    if whole and not dry_run:
        async with database.session() as session:
            await forget_delta_link(session=session, source=SOURCE)
    read = await _read(database, client, mapping, groups=groups, whole=whole)
    async with database.session() as session:
        result = await _save(
            session, read=read, client=client, framework=framework, mapping=mapping,
            dry_run=dry_run,
        )  # fmt: skip
        if result.errors:
            await session.rollback()
    return result


class RosterSyncError(Exception):
    """The nightly sync found problems and changed nothing; `roster sync --dry-run` lists them."""


async def nightly_roster_sync(
    *,
    database: Database,
    client: GraphClient,
    framework: Framework,
    mapping_file: Path,
    groups: Sequence[str],
    instance: str,
    day: date,
) -> dict[str, Any]:
    """Sync the roster once for `day`, however many instances try; return what it changed."""
    mapping = load_mapping(mapping_file, role_codes=[r.code for r in framework.roles])
    done = await last_run(database, job=NIGHTLY_JOB, period=day.isoformat())
    if done is not None and done.status == "done":
        return {}
    read = await _read(database, client, mapping, groups=groups, whole=False)

    async def work(session: AsyncSession, _seed: str | None) -> dict[str, Any]:
        result = await _save(
            session, read=read, client=client, framework=framework, mapping=mapping,
            dry_run=False,
        )  # fmt: skip
        for finding in result.entries:
            # The line in the mapping file, not the email: `roster sync --dry-run` names it.
            log.warning("roster sync: %s (the sync goes on)", finding.log_line())
        if result.errors:
            # Problems name people: the log says only how many (the command shows them).
            raise RosterSyncError(
                f"roster sync changed nothing: {len(result.errors)} problems; "
                "`pqf-bot roster sync --dry-run` lists them"
            )
        return result.counts()

    outcome = await run_once(
        database, job=NIGHTLY_JOB, period=day.isoformat(), instance=instance, work=work
    )
    return outcome.summary if outcome.ran else {}


def nightly_job(
    *,
    database: Database,
    framework: Framework,
    graph_url: str,
    tokens: TokenSource,
    groups: Sequence[str],
    mapping_file: Path,
    instance: str,
    installer: AppInstaller | None = None,
) -> Callable[[date], Awaitable[dict[str, Any]]]:
    """Return the scheduler's nightly roster sync (then the app install, if given)."""

    async def run(day: date) -> dict[str, Any]:
        async with aiohttp.ClientSession(timeout=GRAPH_TIMEOUT) as http:
            client = GraphClient(http=http, base_url=graph_url, tokens=tokens)
            synced = await nightly_roster_sync(
                database=database, client=client, framework=framework,
                mapping_file=mapping_file, groups=groups, instance=instance, day=day,
            )  # fmt: skip
            if installer is not None and await _claim_install(database, instance, day):
                installed = await installer.run(database=database, client=client, now=utc_now)
                synced = {**synced, **{f"install_{k}": v for k, v in installed.counts().items()}}
            return synced

    return run


async def _claim_install(database: Database, instance: str, day: date) -> bool:
    """Return whether this instance is the one to install tonight (once, under the lock).

    The install itself runs after the claim, not inside it: it writes person by person, and
    SQLite has one writer. A run cut short leaves the rest to the next night (or `reach
    --install`), which finds them again: nobody with a stored chat is installed for.
    """

    async def claim(_session: AsyncSession, _seed: str | None) -> dict[str, Any]:
        return {"claimed_by": instance}

    outcome = await run_once(
        database, job=NIGHTLY_INSTALL, period=day.isoformat(), instance=instance, work=claim
    )
    return outcome.ran


async def _read(
    database: Database,
    client: GraphClient,
    mapping: DirectoryMapping,
    *,
    groups: Sequence[str],
    whole: bool,
) -> DirectoryRead:
    async with database.session() as session:
        link = None if whole else await delta_link(session=session, source=SOURCE)
        roster = {r["email"]: r["aad_object_id"] for r in await roster_rows(session=session)}
        held = {
            user_id: DirectoryUser.of_record(user_id, record)
            for user_id, record in (await held_records(session=session, source=SOURCE)).items()
        }
    on_roster = set(roster.values()) - {""}
    read = await read_directory(client, groups=groups, link=link, on_roster=on_roster, held=held)
    entries = await read_for_entries(
        client, mapping, roster=roster, scope=read.scope, users=read.users,
        held=list(held.values()),
    )  # fmt: skip
    for user_id, record in entries.managers.items():
        user = read.users.get(user_id)
        read.users[user_id] = user.merged(record) if user else record
        manager_id = record.manager_id
        known = read.scope | on_roster | set(read.users) | set(read.managers)
        if manager_id and manager_id not in known:
            # A manager known to the roster by email alone is found by Graph's record.
            read.managers[manager_id] = await _read_user(client, manager_id, with_manager=False)
    read.entries_found = entries.found
    return read


async def _save(
    session: AsyncSession,
    *,
    read: DirectoryRead,
    client: GraphClient,
    framework: Framework,
    mapping: DirectoryMapping,
    dry_run: bool,
) -> SyncResult:
    """Work out the changes against the roster as it is now and save them; the caller commits."""
    # On problems the result lists them and the caller must roll back: some may be written.
    roster = [RosterPerson.of_row(row) for row in await roster_rows(session=session)]
    changes = diff_roster(
        roster=roster, scope=read.scope, users=read.users, removed=read.removed, mapping=mapping,
        managers=read.managers,
    )  # fmt: skip
    result = SyncResult(
        changes,
        dry_run=dry_run,
        whole=read.whole,
        requests=client.counts.requests,
        throttled=client.counts.throttled,
        # As a roster file naming an unknown supervisor: all or nothing.
        errors=[missing.problem() for missing in changes.manager_missing],
        entries=judge_entries(mapping, roster=roster, changes=changes, found=read.entries_found),
    )
    if dry_run or result.errors:
        return result
    renamed = [(old.email, new.email) for old, new in changes.updated if old.email != new.email]
    result.errors = await change_emails(session=session, changes=renamed)
    rows = [(f"user {p.aad_object_id}", p.as_row()) for p in changes.rows]
    if rows and not result.errors:
        result.errors = (
            await save_staff_rows(session=session, framework=framework, rows=rows)
        ).errors
    if result.errors:
        return result
    # The held records carry whoever is unmapped past the new link, to be weighed again.
    await remember_delta_link(session=session, source=SOURCE, link=read.delta_link)
    held = {user_id: user.as_record() for user_id, user in changes.held.items()}
    await keep_held_records(session=session, source=SOURCE, records=held)
    result.saved = True
    log.info(
        "roster sync: %d added, %d updated, %d deactivated, %d unmapped, %d held, "
        "%d graph requests",
        len(changes.added),
        len(changes.updated),
        len(changes.deactivated),
        len(changes.unmapped),
        len(held),
        client.counts.requests,
    )
    return result
