"""Install the personal app through Graph for people who never opened it, and store their chat.

For each active person on the roster with an Entra object id and no stored chat, the installer
asks Graph to install the app from the council's catalog (`POST /users/{id}/teamwork/
installedApps`; 409 means it already is), finds the installation and its chat (`GET
…/installedApps?$filter=teamsApp/id eq '…'`, then `…/installedApps/{id}/chat`), stores a chat
reference and wakes the person's waiting messages, so the sender delivers them at once.

The reference is made from the install alone, without waiting for Teams' installationUpdate:
Graph's chat id is the Bot Connector's conversation id for the personal chat; the service URL
is the one of the tenant's most recently stored chat, else `PQF_TEAMS_SERVICE_URL` (Teams'
global https://smba.trafficmanager.net/teams/); the bot is `28:` + its app id; and the user's
id, which only Teams' event gives, is stood in for by their Entra object id (the Connector
addresses the chat by its id). When Teams' event comes, the handler stores its reference over
this one. Graph's refusals (403, 404, 400) are recorded with its reason and tried again a day
later; throttling and passing failures (after the client's own retries) leave the person
pending, tried again after a growing wait. People are worked through one at a time, at most
`rate` a second, each at most once a run; one person's failure never stops the run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from directory.graph import GraphClient, GraphError
from storage import outbox
from storage.app_installs import people_to_install, record_install, tenant_service_url
from storage.database import Database
from storage.models import InstallState, Staff
from storage.roster import ChatReference, remember_conversation

log = logging.getLogger(__name__)

TEAMS_CHANNEL = "msteams"
# Graph's answers that will not change by asking again soon: tried again the next day.
REFUSALS = frozenset({400, 403, 404})
REFUSED_RETRY = timedelta(days=1)
FIRST_RETRY = timedelta(minutes=15)
LONGEST_RETRY = timedelta(days=1)


@dataclass
class InstallResult:
    """What one run of the installer did, person by person (by Entra object id)."""

    installed: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)  # Graph answered 409: installed before
    pending: dict[str, str] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    woken: int = 0  # waiting messages handed to the sender
    requests: int = 0
    throttled: int = 0

    def counts(self) -> dict[str, int]:
        """Return how many people each outcome touched, and Graph's requests."""
        return {
            "installed": len(self.installed),
            "already_installed": len(self.already),
            "pending": len(self.pending),
            "refused": len(self.refused),
            "messages_woken": self.woken,
            "graph_requests": self.requests,
            "graph_throttled": self.throttled,
        }


@dataclass(frozen=True)
class AppInstaller:
    """What installing needs: the app, the bot, where chats are, and how fast to go."""

    catalog_app_id: str
    bot_app_id: str
    tenant_id: str | None
    service_url: str
    rate: float = 4.0  # people a second, at most

    async def run(
        self,
        *,
        database: Database,
        client: GraphClient,
        now: Callable[[], datetime],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> InstallResult:
        """Install the app for everyone who needs it now; record each outcome as it comes."""
        async with database.session() as session:
            people = await people_to_install(session=session, now=now())
            service_url = (
                await tenant_service_url(session=session, tenant_id=self.tenant_id)
                or self.service_url
            )
        result = InstallResult()
        done: set[str] = set()
        next_start = monotonic()
        for person in people:
            aad_id = (person.aad_object_id or "").lower()
            if not aad_id or aad_id in done:
                continue
            done.add(aad_id)
            # The rate bound: start each person no sooner than 1/rate after the last.
            wait = next_start - monotonic()
            if wait > 0:
                await sleep(wait)
            next_start = max(next_start, monotonic()) + 1 / self.rate
            await self._install_one(database, client, person, service_url, now(), result)
        result.requests = client.counts.requests
        result.throttled = client.counts.throttled
        log.info(
            "app install: %d installed, %d already, %d pending, %d refused, %d graph requests",
            len(result.installed), len(result.already), len(result.pending),
            len(result.refused), result.requests,
        )  # fmt: skip
        return result

    async def _install_one(
        self,
        database: Database,
        client: GraphClient,
        person: Staff,
        service_url: str,
        when: datetime,
        result: InstallResult,
    ) -> None:
        aad_id = (person.aad_object_id or "").lower()
        try:
            chat_id, fresh = await self.install(client, aad_id)
        except GraphError as error:
            refused = error.status in REFUSALS
            reason = _reason(error)
            async with database.session() as session:
                previous = await record_install(
                    session=session, aad_object_id=aad_id, now=when, status=error.status,
                    reason=reason,
                    state=InstallState.REFUSED if refused else InstallState.PENDING,
                )  # fmt: skip
                previous.retry_at = when + (
                    REFUSED_RETRY if refused else _backoff(previous.attempts)
                )
                session.add(previous)
            (result.refused if refused else result.pending)[aad_id] = reason
            log.info("app install for staff %s: %s (%s)", person.id, error.status, error.code)
            return
        reference = ChatReference(
            teams_user_id=aad_id,
            conversation_id=chat_id,
            service_url=service_url,
            channel_id=TEAMS_CHANNEL,
            bot_id=f"28:{self.bot_app_id}",
            tenant_id=self.tenant_id,
        )
        async with database.session() as session:
            await remember_conversation(session=session, aad_object_id=aad_id, reference=reference)
            await record_install(
                session=session, aad_object_id=aad_id, state=InstallState.INSTALLED, now=when
            )
            assert person.id is not None
            result.woken += await outbox.wake(session=session, recipient_id=person.id)
        (result.installed if fresh else result.already).append(aad_id)

    async def install(self, client: GraphClient, aad_id: str) -> tuple[str, bool]:
        """Install the app for one person; return their chat's id and whether it was new."""
        bind = f"{client.base_url}/appCatalogs/teamsApps/{self.catalog_app_id}"
        status, _body = await client.request(
            "POST",
            f"users/{aad_id}/teamwork/installedApps",
            json={"teamsApp@odata.bind": bind},
            accept=frozenset({409}),
        )
        found = await client.get(
            f"users/{aad_id}/teamwork/installedApps",
            {"$expand": "teamsApp", "$filter": f"teamsApp/id eq '{self.catalog_app_id}'"},
        )
        installations: list[dict[str, Any]] = found.get("value", [])
        if not installations:
            raise GraphError(f"Graph lists no installation of the app for {aad_id}", status=404)
        chat = await client.get(
            f"users/{aad_id}/teamwork/installedApps/{installations[0]['id']}/chat"
        )
        if not chat.get("id"):
            raise GraphError("Graph gave the installation's chat without an id", status=502)
        return str(chat["id"]), status != 409


def _reason(error: GraphError) -> str:
    """Return Graph's own words for a failure, or what the client made of it."""
    return error.said or error.code or str(error)


def _backoff(attempts: int) -> timedelta:
    wait: timedelta = FIRST_RETRY * 2 ** max(attempts - 1, 0)
    return min(wait, LONGEST_RETRY)
