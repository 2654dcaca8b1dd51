"""The answers of a turn: tried again while the turn's time allows, else left to the outbox.

Teams refuses a request for a moment with 429 (often with Retry-After), 412, 502, 503 or
504; botbuilder does not try again. `TeamsAdapter` does, within the turn's budget
(`ReplyLimits`) and Teams' limits as the sender counts them (`RequestCounter`), and hands a
message that still cannot go to the outbox (`LateReplies`), to follow a moment later.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Protocol

from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
)
from botbuilder.schema import Activity, ActivityEventNames, ActivityTypes, ResourceResponse
from botframework.connector.aio import ConnectorClient
from msrest.exceptions import ClientRequestError
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

from delivery.conversations import SEND_TIMEOUT
from delivery.outcomes import describe, retry_after_of, status_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnsweredTurn:
    """The activity a turn answers, as far as its late answers need it: who, in which chat."""

    activity_id: str | None
    aad_object_id: str | None  # of the person who wrote
    conversation_id: str | None
    # Whether it came from the person's own chat with the bot, the only chat the sender reaches.
    personal_chat: bool


class RequestCounter(Protocol):
    """Keeps the requests this process makes to Teams within Teams' limits."""

    async def reply_starting(self, conversation: str, within: float) -> bool:
        """Wait, `within` seconds at most, for room for an answer to this chat; count it."""
        ...

    def reply_finished(self, conversation: str) -> None:
        """Count an answer to this chat as finished now."""
        ...


class LateReplies(Protocol):
    """Puts an answer Teams would not take during its turn in the outbox, to follow later."""

    async def queue(
        self, turn: AnsweredTurn, answer: dict[str, Any], *, number: int, not_before: float
    ) -> bool:
        """Queue the turn's `number`th late answer, not to go before `not_before` seconds.

        Return False if it has nowhere to go (the person is not on the roster, or the turn
        is not in a personal chat): the turn then fails, as it did before there was a queue.
        """
        ...


# The answers with which Teams refuses a request for now and asks for it again (Microsoft's
# guidance for bots: 429, with Retry-After, and 412, 502, 503, 504); 408 says the request
# did not arrive in time, so it was not taken either.
REPLY_RETRY_STATUSES = frozenset({408, 412, 429, 502, 503, 504})
# Refusals that are not worth repeating within the turn but are worth sending later:
# unauthorised (our token, not the person).
REPLY_LATER_STATUSES = frozenset({401})
# Where the turn keeps what the adapter needs to know about its answers.
TURN_STARTED = "pqf.turn_started"
LATE_ANSWERS = "pqf.late_answers"


@dataclass(frozen=True)
class ReplyLimits:
    """How long a turn keeps trying to deliver its answers, and how it spaces the tries.

    Times are in seconds. Teams waits 10-15 s for the HTTP answer to the activity it posted,
    and that answer only goes once the turn's own answers are sent, so all the tries of a
    turn fit within `budget` of its start, database work included.
    """

    budget: float = 8.0
    backoff_base: float = 0.25
    backoff_cap: float = 2.0
    # Added to a Retry-After, as a share of it: throttled turns do not all come back at once.
    retry_after_jitter: float = 0.2
    # One request: to connect, and then to wait for the answer (requests' two timeouts). A
    # try is cut to what is left of the budget, but never below `least_read`.
    connect_timeout: float = 3.05
    read_timeout: float = 5.0
    least_read: float = 1.0

    def __post_init__(self) -> None:
        if self.budget <= 0 or self.backoff_base <= 0 or self.least_read <= 0:
            raise ValueError("the budget, the back-off and the least read time must be positive")


class _Refusal(Enum):
    """What a failed request to Teams allows."""

    RETRY = "retry"  # not taken, and worth trying again at once (after a pause)
    LATER = "later"  # not taken, but only worth trying again later
    UNSURE = "unsure"  # perhaps taken: the answer never came (a timeout, a broken connection)
    FINAL = "final"  # will not be taken: 403 (blocked the app), 404 (chat gone), any other 4xx


def _never_connected(error: BaseException) -> bool:
    """Say whether the request failed before it could reach Teams (no connection was made)."""
    pending: list[BaseException] = [error]
    seen = 0
    while pending and seen < 12:
        current = pending.pop()
        seen += 1
        if isinstance(current, NewConnectionError | ConnectTimeoutError):
            return True
        if isinstance(current, MaxRetryError) and isinstance(
            current.reason, NewConnectionError | ConnectTimeoutError
        ):
            return True
        # msrest raises its own error in the `except` of requests', which wraps urllib3's.
        pending += [a for a in current.args if isinstance(a, BaseException)]
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
    return False


def _refusal(error: BaseException) -> _Refusal:
    status = status_of(error)
    if status in REPLY_RETRY_STATUSES:
        return _Refusal.RETRY
    if status in REPLY_LATER_STATUSES:
        return _Refusal.LATER
    if status >= 500:
        return _Refusal.UNSURE  # a 500 may come after Teams stored the message
    if status:
        return _Refusal.FINAL
    if _never_connected(error):
        return _Refusal.RETRY
    if isinstance(error, ClientRequestError | TimeoutError | OSError):
        return _Refusal.UNSURE
    return _Refusal.FINAL  # our own fault (a card that cannot be serialised): raised as before


class TeamsAdapter(CloudAdapter):  # type: ignore[misc]
    """The CloudAdapter, retrying answers Teams refuses for now and counting their requests.

    Every answer to a person and every card update of a turn passes here. Teams refuses a
    request for a moment with 429 (often with Retry-After), 412, 502, 503 or 504; botbuilder
    does not try again, and the turn used to end in "Sorry, something went wrong" with the
    person's answer saved but the next card never sent. Here such a request is tried again,
    after Retry-After (plus a little jitter) or an exponential back-off with jitter, while
    the turn's time budget (`ReplyLimits`) allows. A message that still cannot go, or whose
    request may have reached Teams unanswered, is put in the outbox (`late_replies`) and the
    turn's later messages after it, so that they arrive a moment later and in order through
    the outbox sender; the turn succeeds. An update that cannot be made is raised to its
    caller, who knows whether the card still matters. 403, 404 and other 4xx are never
    repeated. Proactive turns (the outbox sender's) are sent once: the sender keeps its own
    account of tries.

    Teams allows an app 50 requests a second per tenant and a chat 8 in 2 seconds, answers
    and proactive messages together, and refuses (and counts) what goes over. Each try of
    an answer or update waits, within the budget, for room in the outbox sender's limiter
    (`replies`), which keeps this process's requests within those limits and lets answers
    go before its own messages: without it, the quick retries of many refused answers kept
    the app over the limit (in the 40-auditor benchmark, 759 refusals for going over it
    against none now). Proactive turns are the sender's, which counts them itself.
    """

    def __init__(
        self,
        authentication: ConfigurationBotFrameworkAuthentication,
        *,
        limits: ReplyLimits | None = None,
        clock: Callable[[], datetime] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        randomness: random.Random | None = None,
    ) -> None:
        super().__init__(authentication)
        self.limits = limits or ReplyLimits()
        self.replies: RequestCounter | None = None
        self.late_replies: LateReplies | None = None
        # Told of each try's fate, for the metrics: "sent", "retried" (refused, and tried
        # again), "queued" (a message left to the outbox), "failed" (a message raised to
        # the turn) or "not_updated" (a card update given up; the card stays as it was).
        self.on_answer: Callable[[str], None] | None = None
        self._clock = clock or (lambda: datetime.now(UTC))
        self._monotonic = monotonic
        self._sleep = sleep
        # Jitter only spreads retries out; it needs no cryptographic strength.
        self._random = randomness or random.Random()  # noqa: S311

    async def run_pipeline(
        self, context: TurnContext, callback: Callable[[TurnContext], Awaitable[Any]] | None = None
    ) -> Any:
        context.turn_state.setdefault(TURN_STARTED, self._monotonic())
        return await super().run_pipeline(context, callback)

    # -- answers ------------------------------------------------------------------------

    async def send_activities(
        self, context: TurnContext, activities: list[Activity]
    ) -> list[ResourceResponse]:
        proactive = _proactive(context)
        responses: list[ResourceResponse] = []
        for activity in activities:
            if not _is_request(activity):
                responses += await super().send_activities(context, [activity])
            elif proactive:
                responses.append(await self._post(context, activity, self._send_timeout(context)))
            else:
                responses.append(await self._answer(context, activity))
        return responses

    async def _answer(self, context: TurnContext, activity: Activity) -> ResourceResponse:
        """Post one answer, trying again within the turn's budget, else leaving it to the outbox."""
        if context.turn_state.get(LATE_ANSWERS) and activity.type == ActivityTypes.message:
            # An earlier answer of this turn went to the outbox: this one follows it there.
            return await self._queue_late(context, activity, 0.0, None)
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._counted(
                    context, lambda: self._post(context, activity, self._try_timeout(context))
                )
            except Exception as error:
                refusal = _refusal(error)
                if refusal is _Refusal.FINAL:
                    self._told("failed")
                    raise
                wait = self._wait_before_retry(error, attempt)
                if refusal is _Refusal.RETRY and self._fits(context, wait):
                    self._told("retried")
                    log.info(
                        "an answer got %s (try %d); trying again in %.2f s",
                        describe(error), attempt, wait,
                    )  # fmt: skip
                    await self._sleep(wait)
                    continue
                if activity.type != ActivityTypes.message:
                    self._told("failed")
                    raise
                return await self._queue_late(context, activity, wait, error)
            self._told("sent")
            return response

    async def _queue_late(
        self, context: TurnContext, activity: Activity, not_before: float, error: Exception | None
    ) -> ResourceResponse:
        """Put an answer in the outbox; raise `error` if that cannot be done."""
        number = int(context.turn_state.get(LATE_ANSWERS) or 0)
        queued = False
        if self.late_replies is not None:
            try:
                queued = await self.late_replies.queue(
                    answered_turn(context.activity),
                    activity.serialize(),
                    number=number,
                    not_before=not_before,
                )
            except Exception as failure:
                log.error("could not queue a late answer: %s", type(failure).__name__)
        if not queued:
            self._told("failed")
            if error is not None:
                raise error
            raise RuntimeError("an answer could not follow the turn's earlier answer")
        context.turn_state[LATE_ANSWERS] = number + 1
        self._told("queued")
        log.info(
            "an answer (%s) was put in the outbox to go in %.1f s",
            describe(error) if error else "after an earlier one", not_before,
        )  # fmt: skip
        # No activity id yet: Teams gives one when the outbox sender delivers it.
        return ResourceResponse(id=None)

    async def update_activity(self, context: TurnContext, activity: Activity) -> Any:
        if _proactive(context):
            return await super().update_activity(context, activity)
        attempt = 0
        while True:
            attempt += 1
            try:
                result = await self._counted(
                    context, lambda: self._put(context, activity, self._try_timeout(context))
                )
            except Exception as error:
                refusal = _refusal(error)
                wait = self._wait_before_retry(error, attempt)
                # An update can be repeated safely: it replaces the card with the same one.
                if refusal in (_Refusal.RETRY, _Refusal.UNSURE) and self._fits(context, wait):
                    self._told("retried")
                    log.info(
                        "a card update got %s (try %d); trying again in %.2f s",
                        describe(error), attempt, wait,
                    )  # fmt: skip
                    await self._sleep(wait)
                    continue
                self._told("not_updated")
                raise
            self._told("sent")
            return result

    async def delete_activity(self, context: TurnContext, reference: Any) -> Any:
        if self.replies is None or _proactive(context):
            return await super().delete_activity(context, reference)
        deleting = super().delete_activity
        return await self._counted(context, lambda: deleting(context, reference))

    # -- one request --------------------------------------------------------------------

    async def _post(
        self, context: TurnContext, activity: Activity, limit: tuple[float, float]
    ) -> ResourceResponse:
        """Post a message to its conversation (as botbuilder does), within (connect, read) s."""
        client = _connector(context, self.BOT_CONNECTOR_CLIENT_KEY)
        activity.id = None
        if activity.reply_to_id:
            response = await client.conversations.reply_to_activity(
                activity.conversation.id, activity.reply_to_id, activity, timeout=limit
            )
        else:
            response = await client.conversations.send_to_conversation(
                activity.conversation.id, activity, timeout=limit
            )
        return response or ResourceResponse(id="")

    async def _put(
        self, context: TurnContext, activity: Activity, limit: tuple[float, float]
    ) -> ResourceResponse | None:
        """Replace a message (as botbuilder does), within (connect, read) seconds."""
        client = _connector(context, self.BOT_CONNECTOR_CLIENT_KEY)
        response = await client.conversations.update_activity(
            activity.conversation.id, activity.id, activity, timeout=limit
        )
        response_id = response.id if response and response.id else None
        return ResourceResponse(id=response_id) if response_id else None

    async def _counted(self, context: TurnContext, send: Callable[[], Awaitable[Any]]) -> Any:
        """Make one request once Teams' limits have room for it (within the budget), counted."""
        if self.replies is None:
            return await send()
        conversation = _conversation_of(context)
        # If the budget runs out first, the try goes all the same: Teams decides.
        await self.replies.reply_starting(
            conversation, self._left(context) - self.limits.least_read
        )
        try:
            return await send()
        finally:
            self.replies.reply_finished(conversation)

    # -- the turn's time ----------------------------------------------------------------

    def _left(self, context: TurnContext) -> float:
        """Return the seconds left of the turn's budget."""
        started = context.turn_state.setdefault(TURN_STARTED, self._monotonic())
        return float(started) + self.limits.budget - self._monotonic()

    def _try_timeout(self, context: TurnContext) -> tuple[float, float]:
        """Return the (connect, read) timeouts of the next try: what the budget leaves."""
        left = self._left(context)
        connect = max(self.limits.least_read, min(self.limits.connect_timeout, left / 2))
        read = max(self.limits.least_read, min(self.limits.read_timeout, left - connect))
        return connect, read

    def _send_timeout(self, context: TurnContext) -> tuple[float, float]:
        """Return the (connect, read) timeouts of a proactive send: as its sender set them."""
        seconds = context.turn_state.get(SEND_TIMEOUT)
        if not isinstance(seconds, int | float) or seconds <= 0:
            return self.limits.connect_timeout, self.limits.read_timeout
        connect = min(self.limits.connect_timeout, seconds / 4)
        return connect, seconds - connect

    def _fits(self, context: TurnContext, wait: float) -> bool:
        """Say whether a pause of `wait` and then a short try still fit in the budget."""
        return self._left(context) - wait >= self.limits.least_read

    def _wait_before_retry(self, error: Exception, attempt: int) -> float:
        """Return the pause Teams asked for (with jitter), else a back-off with jitter."""
        retry_after = retry_after_of(error, self._clock())
        if retry_after is not None:
            return retry_after * (1 + self._random.uniform(0, self.limits.retry_after_jitter))
        ceiling = min(self.limits.backoff_cap, self.limits.backoff_base * 2.0 ** (attempt - 1))
        # Between half and all of it, so the tries of many turns spread out but still grow.
        return ceiling * self._random.uniform(0.5, 1.0)

    def _told(self, outcome: str) -> None:
        if self.on_answer is not None:
            self.on_answer(outcome)


def _is_request(activity: Activity) -> bool:
    """Say whether the adapter sends the activity to Teams (an answer's) at all."""
    # A delay is a pause, an invoke response the HTTP answer itself, a trace shown only
    # in the Bot Framework Emulator: none is a request to Teams.
    return activity.type not in ("delay", ActivityTypes.invoke_response, ActivityTypes.trace)


def answered_turn(activity: Activity) -> AnsweredTurn:
    """Return what the turn's late answers need to know of the activity it answers."""
    person = activity.from_property
    conversation = activity.conversation
    return AnsweredTurn(
        activity_id=activity.id,
        aad_object_id=person.aad_object_id if person else None,
        conversation_id=conversation.id if conversation else None,
        personal_chat=conversation is not None
        and conversation.conversation_type in (None, "personal"),
    )


def _conversation_of(context: TurnContext) -> str:
    conversation = context.activity.conversation if context.activity else None
    return str(conversation.id) if conversation is not None and conversation.id else ""


def _connector(context: TurnContext, key: str) -> ConnectorClient:
    client = context.turn_state.get(key)
    if client is None:
        raise RuntimeError("the turn has no Connector client")
    return client


def _proactive(context: TurnContext) -> bool:
    activity = context.activity
    return (
        activity is not None
        and activity.type == ActivityTypes.event
        and activity.name == ActivityEventNames.continue_conversation
    )
