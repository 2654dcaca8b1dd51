"""A local stand-in for the Bot Connector service: records what the bot sends to Teams.

It can also behave like Teams under load: enforce Teams' rate limits (answering 429 to a
caller that exceeds them), inject faults (429 with and without Retry-After, 412, 502, 503,
504, slow answers, dropped connections, 403 for blocked conversations) and stall, holding
requests unanswered, so a test can kill the sender while requests are in flight.

Only a POST answered with a 2xx counts as delivered. A request whose caller went away
before it was answered is not delivered (we model Teams accepting a message when it
answers), and a slow answer ends in 504, so a request the caller gave up on is never
delivered behind its back.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

# Teams' limits for one bot: per conversation, and per app per tenant (Microsoft docs).
TEAMS_CONVERSATION_LIMITS: tuple[tuple[int, float], ...] = (
    (7, 1.0),
    (8, 2.0),
    (60, 30.0),
    (1800, 3600.0),
)
TEAMS_GLOBAL_LIMIT: tuple[int, float] = (50, 1.0)


@dataclass(frozen=True)
class Fault:
    """One injected answer: an HTTP status, maybe Retry-After, maybe after a delay.

    Status 0 drops the connection without answering.
    """

    status: int
    retry_after: str | None = None
    delay: float = 0.0

    @property
    def kind(self) -> str:
        if self.delay:
            return "slow"
        if self.status == 429:
            return "429+retry-after" if self.retry_after else "429"
        return "drop" if self.status == 0 else str(self.status)


@dataclass
class FaultPlan:
    """Random faults, each a fraction of the POSTs, drawn from a seeded generator."""

    seed: int = 0
    throttle_with_retry_after: float = 0.0
    retry_after: str = "1"
    throttle: float = 0.0
    server_error: float = 0.0  # one of server_errors
    server_errors: tuple[int, ...] = (502, 503, 504)
    precondition_failed: float = 0.0  # 412
    slow: float = 0.0
    slow_delay: float = 2.0
    drop: float = 0.0
    # Whether card updates (PUTs) draw faults too, as Teams throttles them like any call.
    updates: bool = False
    # Whether replies within a turn (POSTs naming the activity they answer) draw faults, or
    # only messages the bot sends of its own accord (POSTs to the conversation).
    replies: bool = True
    _random: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def draw(self) -> Fault | None:
        """Return the fault for the next request, or None to answer it normally."""
        roll = self._random.random()
        for fraction, fault in (
            (self.throttle_with_retry_after, Fault(429, self.retry_after)),
            (self.throttle, Fault(429)),
            (self.server_error, Fault(self._random.choice(self.server_errors))),
            (self.precondition_failed, Fault(412)),
            (self.slow, Fault(504, delay=self.slow_delay)),
            (self.drop, Fault(0)),
        ):
            if roll < fraction:
                return fault
            roll -= fraction
        return None


@dataclass
class Recorded:
    """One call the bot made to the Connector, and how it was answered."""

    method: str
    conversation_id: str
    activity_id: str | None
    body: dict[str, Any]
    authorization: str | None
    status: int = 0  # 0 until answered
    # Why it was not simply accepted: "limit" (over Teams' rate limits), "blocked",
    # "abandoned" (the caller went away first) or an injected fault's kind.
    fault: str = ""
    arrived: float = 0.0  # the connector's clock (time.monotonic()) when the request arrived
    arrived_at: datetime | None = None  # wall-clock time, for HTTP-date Retry-After
    id: str | None = None  # the id Teams gave a message it accepted
    # A reply within a turn: a POST answering an activity Teams sent the bot (`incoming`).
    # botbuilder names an activity in proactive sends too: its own continuation event's.
    is_reply: bool = False
    over: str = ""  # for a "limit" refusal: which limit, "global" or "conversation"

    @property
    def delivered(self) -> bool:
        return self.method == "POST" and 200 <= self.status < 300


@dataclass
class FakeConnector:
    """Answers the Connector's conversation endpoints and keeps every call."""

    calls: list[Recorded] = field(default_factory=list)
    enforce_limits: bool = False
    global_limit: tuple[int, float] = TEAMS_GLOBAL_LIMIT
    conversation_limits: tuple[tuple[int, float], ...] = TEAMS_CONVERSATION_LIMITS
    faults: FaultPlan | None = None
    # Faults for the next POSTs, whatever they carry, used up in order.
    script: deque[Fault] = field(default_factory=deque)
    # Faults for the next PUTs (card updates), used up in order.
    script_updates: deque[Fault] = field(default_factory=deque)
    # Faults for the first attempts of the message with this text, used up in order.
    script_by_text: dict[str, list[Fault]] = field(default_factory=dict)
    blocked: set[str] = field(default_factory=set)  # conversation ids answered 403
    # The clock Teams' rate limits are counted on (seconds). A test may run it ahead of
    # time.monotonic() to stand for people taking a few seconds over each card.
    clock: Callable[[], float] = time.monotonic
    # The ids of the activities Teams sent the bot (a test's people add theirs): a POST
    # answering one of them is a reply within that turn.
    incoming: set[str] = field(default_factory=set)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))  # type: ignore[type-arg]
    _server: TestServer | None = None
    _arrivals: deque[float] = field(default_factory=deque)
    _conversation_arrivals: dict[str, deque[float]] = field(
        default_factory=lambda: defaultdict(deque)
    )
    _flowing: asyncio.Event = field(default_factory=asyncio.Event)
    _held: list[web.Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._flowing.set()

    @property
    def url(self) -> str:
        assert self._server is not None
        return str(self._server.make_url("/"))

    @property
    def sent(self) -> list[dict[str, Any]]:
        """Return the activities delivered (new messages answered 2xx), oldest first."""
        return [c.body for c in self.calls if c.delivered]

    @property
    def updated(self) -> list[dict[str, Any]]:
        """Return the activities that replaced earlier ones."""
        return [c.body for c in self.calls if c.method == "PUT" and 200 <= c.status < 300]

    def cards(self) -> list[dict[str, Any]]:
        """Return the Adaptive Cards posted, oldest first."""
        return [body["attachments"][0]["content"] for body in self.sent if body.get("attachments")]

    def texts(self) -> list[str]:
        return [body["text"] for body in self.sent if body.get("text")]

    def delivered(self) -> Counter[tuple[str, str]]:
        """Count the messages delivered, by conversation id and text."""
        return Counter(
            (c.conversation_id, c.body.get("text", "")) for c in self.calls if c.delivered
        )

    def delivered_texts(self, conversation_id: str) -> list[str]:
        """Return the texts delivered to one conversation, in the order they arrived."""
        return [
            c.body.get("text", "")
            for c in self.calls
            if c.delivered and c.conversation_id == conversation_id
        ]

    def faults_answered(self) -> Counter[str]:
        """Count the answers that were not a plain acceptance, by reason."""
        return Counter(c.fault for c in self.calls if c.fault)

    @property
    def limit_rejections(self) -> int:
        """Return how many requests were refused for exceeding Teams' rate limits."""
        return sum(1 for c in self.calls if c.fault == "limit")

    def attempts_of(self, text: str) -> list[Recorded]:
        """Return every POST that carried this text, in the order they arrived."""
        return [c for c in self.calls if c.method == "POST" and c.body.get("text") == text]

    # -- stalling ---------------------------------------------------------------------

    def stall(self) -> None:
        """Hold every request from now on without answering it."""
        self._flowing.clear()

    def unstall(self) -> None:
        """Answer the held requests (unless their caller went away) and stop holding."""
        self._flowing.set()

    @property
    def held(self) -> int:
        """Return how many requests are being held unanswered."""
        return len(self._held)

    @property
    def held_connected(self) -> int:
        """Return how many held requests still have their caller connected."""
        return sum(1 for r in self._held if _connected(r))

    # -- the endpoints ----------------------------------------------------------------

    async def _post(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        call = self._record("POST", request, body)
        if (refused := self._refuse(call)) is not None:
            return refused
        if not self._flowing.is_set():
            self._held.append(request)
            try:
                await self._flowing.wait()
            except asyncio.CancelledError:  # aiohttp cancels the handler when the caller goes
                call.status, call.fault = 499, "abandoned"
                raise
            finally:
                self._held.remove(request)
        fault = self._next_fault(body, reply=call.is_reply)
        if fault is not None:
            return await self._inject(call, fault, request)
        if not _connected(request):
            call.status, call.fault = 499, "abandoned"
            return web.Response(status=499)
        call.status = 201
        call.id = f"activity-{next(self._ids)}"
        return web.json_response({"id": call.id}, status=201)

    async def _put(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        call = self._record("PUT", request, body)
        if (refused := self._refuse(call)) is not None:
            return refused
        fault = self.script_updates.popleft() if self.script_updates else None
        if fault is None and self.faults is not None and self.faults.updates:
            fault = self.faults.draw()
        if fault is not None:
            return await self._inject(call, fault, request)
        call.status = 200
        return web.json_response({"id": call.activity_id})

    def _record(self, method: str, request: web.Request, body: dict[str, Any]) -> Recorded:
        answering = request.match_info.get("activity")
        call = Recorded(
            method, request.match_info["conversation"], answering,
            body, request.headers.get("Authorization"),
            arrived=self.clock(), arrived_at=datetime.now(UTC),
            is_reply=method == "POST" and answering in self.incoming,
        )  # fmt: skip
        self.calls.append(call)
        return call

    def _refuse(self, call: Recorded) -> web.Response | None:
        """Answer 429 over the rate limits, 403 to a blocked conversation, else None."""
        if self.enforce_limits and self._over_limits(call):
            call.status, call.fault = 429, "limit"
            return web.json_response(_error("Throttled", "too many requests"), status=429)
        if call.conversation_id in self.blocked:
            call.status, call.fault = 403, "blocked"
            return web.json_response(
                _error("MessageWritesBlocked", "the user blocked the bot"), status=403
            )
        return None

    def _over_limits(self, call: Recorded) -> bool:
        # Every request counts against the limits, refused ones too, as in Teams.
        now = call.arrived
        over_global = _count(self._arrivals, now, [self.global_limit])
        conversation = self._conversation_arrivals[call.conversation_id]
        over_conversation = _count(conversation, now, self.conversation_limits)
        call.over = "conversation" if over_conversation else "global" if over_global else ""
        return over_conversation or over_global

    def _next_fault(self, body: dict[str, Any], *, reply: bool) -> Fault | None:
        scripted = self.script_by_text.get(body.get("text", ""))
        if scripted:
            return scripted.pop(0)
        if self.script:
            return self.script.popleft()
        if self.faults is None or (reply and not self.faults.replies):
            return None
        return self.faults.draw()

    async def _inject(self, call: Recorded, fault: Fault, request: web.Request) -> web.Response:
        call.fault = fault.kind
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.status == 0:
            call.status = 0
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)  # never reaches the caller
        call.status = fault.status
        headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
        return web.json_response(
            _error("Injected", call.fault), status=fault.status, headers=headers
        )

    async def start(self) -> FakeConnector:
        app = web.Application()
        app.router.add_post("/v3/conversations/{conversation}/activities", self._post)
        app.router.add_post("/v3/conversations/{conversation}/activities/{activity}", self._post)
        app.router.add_put("/v3/conversations/{conversation}/activities/{activity}", self._put)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        return self

    async def close(self) -> None:
        self.unstall()
        if self._server is not None:
            await self._server.close()


def _count(arrivals: deque[float], now: float, limits: Sequence[tuple[int, float]]) -> bool:
    """Add an arrival; return whether it exceeds any of the (count, seconds) limits."""
    arrivals.append(now)
    horizon = max(seconds for _, seconds in limits)
    while arrivals and arrivals[0] <= now - horizon:
        arrivals.popleft()
    return any(sum(1 for t in arrivals if t > now - seconds) > count for count, seconds in limits)


def _connected(request: web.Request) -> bool:
    return request.transport is not None and not request.transport.is_closing()


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}
