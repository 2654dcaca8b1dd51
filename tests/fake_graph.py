"""A local stand-in for Microsoft Graph: the users, groups and app installations the bot reads.

It answers in Graph's published shapes: group members (`/groups/{id}/transitiveMembers`,
nested groups flattened, cast to `microsoft.graph.user`) with `$select`, `$top` and
`@odata.nextLink`; `/users/delta` with `@odata.nextLink`, `@odata.deltaLink`, `@removed` and
`manager@delta`; `/users/{id}` and `/users/{id}/manager` (404 without one); `/users` with
`$filter` on `mail` or `userPrincipalName` (`eq`, joined by `or`); installing the
personal app (`POST /users/{id}/teamwork/installedApps`, 201, or 409 when installed), the
installation list and its chat (a user can be made to refuse the install, as an app
permission policy does). It checks the bearer token (401), and can refuse (403) or
throttle (429 with Retry-After), at random or by script, and counts every request.

Run on its own (`python -m tests.fake_graph --port 8999`), it serves the tests' example
tenant until stopped, for trying `pqf-bot roster sync` and `pqf-bot reach` by hand in
development; it prints the settings that point the bot at it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import re
import sys
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

DELTA_PAGE = 200
MEMBERS_PAGE = 100
LARGEST_PAGE = 999


@dataclass
class FakeUser:
    """One user in the fake tenant, with the version of its last change."""

    id: str
    displayName: str  # noqa: N815 - Graph's names
    mail: str | None
    userPrincipalName: str  # noqa: N815
    department: str | None
    jobTitle: str | None  # noqa: N815
    accountEnabled: bool = True  # noqa: N815
    manager: str | None = None
    changed: int = 0
    manager_changed: int = 0
    previous_manager: str | None = None

    def properties(self, selected: list[str] | None) -> dict[str, Any]:
        everything = {
            "id": self.id,
            "displayName": self.displayName,
            "mail": self.mail,
            "userPrincipalName": self.userPrincipalName,
            "department": self.department,
            "jobTitle": self.jobTitle,
            "accountEnabled": self.accountEnabled,
        }
        if not selected:
            return everything
        return {k: v for k, v in everything.items() if k in selected or k == "id"}


@dataclass(frozen=True)
class Fault:
    """A scripted answer for the next request whose path contains `path`."""

    path: str
    status: int
    retry_after: str | None = None
    code: str = "Injected"


@dataclass
class FakeGraph:
    """The fake tenant and its server; `url` is the base to give the client."""

    token: str = "fake-graph-token"
    throttle_rate: float = 0.0  # a share of requests answered 429
    retry_after: str = "1"
    seed: int = 0
    users: dict[str, FakeUser] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)
    forbidden: set[str] = field(default_factory=set)  # path fragments answered 403
    script: deque[Fault] = field(default_factory=deque)
    # Installations of the personal app: user id -> installation id.
    installed: dict[str, str] = field(default_factory=dict)
    # Users for whom installing is refused: user id -> (status, Graph's message).
    refuse_install: dict[str, tuple[int, str]] = field(default_factory=dict)
    installs_made: Counter[str] = field(default_factory=Counter)  # 201s, by user id
    requests: Counter[str] = field(default_factory=Counter)
    throttled: int = 0
    _version: int = 0
    _removed: dict[str, int] = field(default_factory=dict)
    _rounds: dict[tuple[int, int, str, int], list[dict[str, Any]]] = field(default_factory=dict)
    _random: random.Random = field(init=False)
    _server: TestServer | None = None

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    @property
    def url(self) -> str:
        """Return the base URL, like https://graph.microsoft.com/v1.0."""
        assert self._server is not None
        return str(self._server.make_url("/v1.0"))

    # The tenant, as a test changes it.

    def add_user(self, user_id: str, name: str, email: str, department: str | None,
                 job_title: str | None, *, manager: str | None = None,
                 enabled: bool = True) -> FakeUser:  # fmt: skip
        """Add a user (a change the next delta reports)."""
        self._version += 1
        user = FakeUser(
            user_id, name, email, email, department, job_title, enabled, manager,
            self._version, self._version if manager else 0,
        )  # fmt: skip
        self.users[user_id] = user
        self._removed.pop(user_id, None)
        return user

    def change_user(self, user_id: str, **properties: Any) -> None:
        """Change a user's properties (displayName=..., department=..., accountEnabled=...)."""
        self._version += 1
        user = self.users[user_id]
        for name, value in properties.items():
            setattr(user, name, value)
        user.changed = self._version

    def set_manager(self, user_id: str, manager: str | None) -> None:
        """Give a user a new manager, or none."""
        self._version += 1
        user = self.users[user_id]
        user.previous_manager, user.manager = user.manager, manager
        user.changed = user.manager_changed = self._version

    def delete_user(self, user_id: str) -> None:
        """Delete a user (the next delta reports them @removed)."""
        self._version += 1
        del self.users[user_id]
        self._removed[user_id] = self._version
        for members in self.groups.values():
            if user_id in members:
                members.remove(user_id)

    # The server.

    async def start(self, port: int | None = None) -> FakeGraph:
        app = web.Application()
        app.router.add_get("/v1.0/groups/{group}/transitiveMembers/microsoft.graph.user",
                           self._members)  # fmt: skip
        app.router.add_get("/v1.0/users/delta", self._delta)
        app.router.add_get("/v1.0/users", self._users)
        app.router.add_get("/v1.0/users/{user}", self._user)
        app.router.add_get("/v1.0/users/{user}/manager", self._manager)
        app.router.add_post("/v1.0/users/{user}/teamwork/installedApps", self._install)
        app.router.add_get("/v1.0/users/{user}/teamwork/installedApps", self._installations)
        app.router.add_get("/v1.0/users/{user}/teamwork/installedApps/{installation}/chat",
                           self._chat)  # fmt: skip
        app.middlewares.append(self._guard)
        self._server = TestServer(app, host="127.0.0.1", port=port)
        await self._server.start_server()
        return self

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()

    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        path = request.path.removeprefix("/v1.0")
        self.requests[_kind(path)] += 1
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _error(401, "InvalidAuthenticationToken", "Access token is empty or invalid.")
        for fault in list(self.script):
            if fault.path in path:
                self.script.remove(fault)
                if fault.status == 429:
                    self.throttled += 1
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
                return _error(fault.status, fault.code, "Injected.", headers)
        if self.throttle_rate and self._random.random() < self.throttle_rate:
            self.throttled += 1
            return _error(429, "TooManyRequests", "Throttled.", {"Retry-After": self.retry_after})
        if any(fragment in path for fragment in self.forbidden):
            return _error(403, "Authorization_RequestDenied",
                          "Insufficient privileges to complete the operation.")  # fmt: skip
        return await handler(request)

    async def _members(self, request: web.Request) -> web.Response:
        group = request.match_info["group"]
        if group not in self.groups:
            return _error(404, "Request_ResourceNotFound", f"Resource '{group}' does not exist.")
        members = self._flatten(group, set())
        top = min(int(request.query.get("$top", MEMBERS_PAGE)), LARGEST_PAGE)
        offset = int(request.query.get("$skiptoken", 0))
        selected = _selected(request)
        page = [
            {"@odata.type": "#microsoft.graph.user", **self.users[m].properties(selected)}
            for m in members[offset : offset + top]
        ]
        body: dict[str, Any] = {"value": page}
        if offset + top < len(members):
            body["@odata.nextLink"] = self._link(request, {"$skiptoken": str(offset + top)})
        return web.json_response(body)

    def _flatten(self, group: str, seen: set[str]) -> list[str]:
        seen.add(group)
        found: dict[str, None] = {}  # in order, each once
        for member in self.groups[group]:
            if member in self.groups and member not in seen:
                found.update(dict.fromkeys(self._flatten(member, seen)))
            elif member in self.users:
                found[member] = None
        return list(found)

    async def _delta(self, request: web.Request) -> web.Response:
        if "$deltatoken" in request.query:
            since, until, offset = int(request.query["$deltatoken"]), self._version, 0
            selected = request.query.get("$select", "")
        elif "$skiptoken" in request.query:
            since_text, until_text, offset_text, selected = request.query["$skiptoken"].split(
                ".", 3
            )
            since, until, offset = int(since_text), int(until_text), int(offset_text)
        else:
            since, until, offset = -1, self._version, 0
            selected = request.query.get("$select", "")
        if since > self._version:
            return _error(410, "SyncStateNotFound", "The delta token has expired.")
        fields = [f for f in selected.split(",") if f]
        key = (since, until, selected, self._version)
        if key not in self._rounds:  # worked out once per round, not once per page
            self._rounds = {key: self._changes(since, until, fields)}
        items = self._rounds[key]
        size = min(_page_size(request, DELTA_PAGE), LARGEST_PAGE)
        body: dict[str, Any] = {"value": items[offset : offset + size]}
        if offset + size < len(items):
            token = f"{since}.{until}.{offset + size}.{selected}"
            body["@odata.nextLink"] = self._link(request, {"$skiptoken": token}, keep=False)
        else:
            body["@odata.deltaLink"] = self._link(
                request, {"$deltatoken": str(until), "$select": selected}, keep=False
            )
        return web.json_response(body)

    def _changes(self, since: int, until: int, fields: list[str]) -> list[dict[str, Any]]:
        whole = since < 0
        items: list[dict[str, Any]] = []
        for user in sorted(self.users.values(), key=lambda u: u.id):
            if not whole and not since < user.changed <= until:
                continue
            item = user.properties([f for f in fields if f != "manager"] or None)
            if "manager" in fields:
                if user.manager and (whole or user.manager_changed > since):
                    item["manager@delta"] = [
                        {"@odata.type": "#microsoft.graph.user", "id": user.manager}
                    ]
                elif not whole and user.manager_changed > since and user.previous_manager:
                    item["manager@delta"] = [
                        {"id": user.previous_manager, "@removed": {"reason": "deleted"}}
                    ]
            items.append(item)
        if not whole:
            items.extend(
                {"id": user_id, "@removed": {"reason": "deleted"}}
                for user_id, version in sorted(self._removed.items())
                if since < version <= until
            )
        return items

    async def _users(self, request: web.Request) -> web.Response:
        wanted = re.findall(
            r"(mail|userPrincipalName) eq '((?:[^']|'')*)'", request.query.get("$filter", "")
        )
        if request.query.get("$filter") and not wanted:
            return _error(400, "Request_UnsupportedQuery", "Unsupported query.")
        values = {(prop, value.replace("''", "'").lower()) for prop, value in wanted}
        found = [
            user.properties(_selected(request))
            for user in sorted(self.users.values(), key=lambda u: u.id)
            if not values
            or ("mail", (user.mail or "").lower()) in values
            or ("userPrincipalName", user.userPrincipalName.lower()) in values
        ]
        return web.json_response({"value": found})

    async def _user(self, request: web.Request) -> web.Response:
        user = self.users.get(request.match_info["user"])
        if user is None:
            return _error(404, "Request_ResourceNotFound", "Resource does not exist.")
        return web.json_response(user.properties(_selected(request)))

    async def _manager(self, request: web.Request) -> web.Response:
        user = self.users.get(request.match_info["user"])
        if user is None or user.manager is None or user.manager not in self.users:
            return _error(404, "Request_ResourceNotFound", "Resource 'manager' does not exist.")
        manager = self.users[user.manager]
        return web.json_response(
            {"@odata.type": "#microsoft.graph.user", **manager.properties(_selected(request))}
        )

    async def _install(self, request: web.Request) -> web.Response:
        user_id = request.match_info["user"]
        if user_id not in self.users:
            return _error(404, "Request_ResourceNotFound", "Resource does not exist.")
        body = await request.json()
        if "teamsApp@odata.bind" not in body:
            return _error(400, "BadRequest", "teamsApp@odata.bind is required.")
        if user_id in self.refuse_install:
            status, message = self.refuse_install[user_id]
            return _error(status, "Forbidden" if status == 403 else "BadRequest", message)
        if user_id in self.installed:
            return _error(409, "Conflict", "App is already installed.")
        self.installed[user_id] = f"installation-{user_id}"
        self.installs_made[user_id] += 1
        return web.Response(status=201)

    async def _installations(self, request: web.Request) -> web.Response:
        user_id = request.match_info["user"]
        installation = self.installed.get(user_id)
        match = re.search(r"teamsApp/id eq '([^']*)'", request.query.get("$filter", ""))
        app_id = match.group(1) if match else "app"
        value = [{"id": installation, "teamsApp": {"id": app_id}}] if installation else []
        return web.json_response({"value": value})

    async def _chat(self, request: web.Request) -> web.Response:
        user_id = request.match_info["user"]
        if self.installed.get(user_id) != request.match_info["installation"]:
            return _error(404, "NotFound", "No such installation.")
        return web.json_response({"id": f"19:{user_id}_bot@unq.gbl.spaces"})

    def _link(self, request: web.Request, query: dict[str, str], *, keep: bool = True) -> str:
        merged = {**request.query, **query} if keep else query
        return str(request.url.with_query(merged))


# The tests' example tenant: examples/staff.csv as Entra ID would hold it.
STAFF = "0b9a3e0c-52f4-4a1e-9d55-3c2b8f0e1a11"
MENDIP = "0b9a3e0c-52f4-4a1e-9d55-3c2b8f0e1a12"
JO, CHRIS, AMIRA, LEE, ELLEN, RAVI, PAT = (
    f"6f0c2a4e-1b7d-4c39-9e55-0a8a9c1d2e0{n}" for n in range(1, 8)
)


def example_tenant(graph: FakeGraph) -> None:
    """Fill the fake with the example tenant (Ravi's account is disabled; Pat in no group)."""
    graph.add_user(
        JO, "Jo Morgan", "jo.morgan@somerset.example", "ASC Leadership", "Strategic Manager"
    )
    graph.add_user(CHRIS, "Chris Hall", "chris.hall@somerset.example", "ASC Mendip",
                   "Service Manager", manager=JO)  # fmt: skip
    graph.add_user(AMIRA, "Amira Khan", "Amira.Khan@somerset.example", "ASC Mendip",
                   "Social Worker", manager=CHRIS)  # fmt: skip
    graph.add_user(LEE, "Lee Turner", "lee.turner@somerset.example", " asc mendip ",
                   "Occupational Therapist", manager=CHRIS)  # fmt: skip
    graph.add_user(ELLEN, "Ellen Shaw", "ellen.shaw@somerset.example", "ASC Practice Development",
                   "Practice Development Advanced Practitioner", manager=JO)  # fmt: skip
    graph.add_user(RAVI, "Ravi Nair", "ravi.nair@somerset.example", "ASC Learning and Development",
                   "Learning and Development Advanced Practitioner", manager=JO, enabled=False)  # fmt: skip
    # In the tenant but in no roster group (yet).
    graph.add_user(PAT, "Pat Green", "pat.green@somerset.example", "ASC Mendip", "Social Worker",
                   manager=CHRIS)  # fmt: skip
    graph.groups[MENDIP] = [CHRIS, AMIRA, LEE]
    graph.groups[STAFF] = [JO, MENDIP, ELLEN, RAVI]  # the team's group nested inside


def _kind(path: str) -> str:
    """Return a request's path with its ids replaced, for counting requests by kind."""
    if path == "/users/delta":
        return path
    return re.sub(r"/(users|groups|installedApps)/[^/]+", r"/\1/{id}", path)


def _selected(request: web.Request) -> list[str] | None:
    selected = request.query.get("$select")
    return [s for s in selected.split(",") if s] if selected else None


def _page_size(request: web.Request, default: int) -> int:
    match = re.search(r"odata\.maxpagesize=(\d+)", request.headers.get("Prefer", ""))
    return int(match.group(1)) if match else default


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message}}, status=status, headers=headers
    )


async def _serve(port: int, refuse: list[str]) -> None:
    graph = await FakeGraph().start(port)
    example_tenant(graph)
    for email in refuse:
        found = [u.id for u in graph.users.values() if (u.mail or "").lower() == email.lower()]
        for user_id in found:
            graph.refuse_install[user_id] = (403, "App is blocked by app permission policy.")
    sys.stdout.write(
        "Fake Microsoft Graph (the tests' example tenant) is listening; for the bot, set:\n"
        f"  PQF_ENVIRONMENT=development\n  PQF_GRAPH_URL={graph.url}\n"
        f"  PQF_GRAPH_TOKEN={graph.token}\n  PQF_GRAPH_GROUPS={STAFF}\n"
        "  PQF_GRAPH_MAPPING_FILE=examples/graph-mapping.yaml\n"
        "  PQF_TEAMS_CATALOG_APP_ID=catalog-app\nStop it with Ctrl+C.\n"
    )
    sys.stdout.flush()
    try:
        await asyncio.Event().wait()
    finally:
        await graph.close()


def main(argv: list[str] | None = None) -> None:
    """Serve the example tenant until stopped."""
    parser = argparse.ArgumentParser(prog="python -m tests.fake_graph", description=__doc__)
    parser.add_argument("--port", type=int, default=8999)
    parser.add_argument(
        "--refuse-install", action="append", default=[], metavar="EMAIL",
        help="refuse to install the app for this person, as an app permission policy does",
    )  # fmt: skip
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port, args.refuse_install))


if __name__ == "__main__":
    main()
