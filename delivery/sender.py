"""The one sender: deliver the outbox to Teams within its rate limits, retrying what can be.

Every proactive message is first written to the outbox, and so is an answer to a person
that Teams would not take during its turn (purpose "reply", see `delivery.answers`); this
sender claims due messages, sends them through the adapter and records the outcome:

- accepted: sent, with the activity id Teams returned;
- 429: tried again after Retry-After when Teams gave one (seconds or an HTTP date),
  else after an exponential back-off with jitter; the conversation is paused as long and
  the global rate slowed for a while;
- 412, 408, 5xx, a timeout or a connection error: tried again after a back-off;
- 403 (blocked or removed the app) and 404 (chat gone): undeliverable at once;
- any other 4xx: undeliverable, with the status; after `max_attempts`: undeliverable;
- an activity that cannot be made (a request card whose audit is gone): undeliverable;
- no installed chat: left pending without counting an attempt, looked at again later
  (when the person installs the app, the activity handler makes what waited due at once).

Claims (`delivery.claims`): a sender that dies leaves its messages to another sender, or
to itself restarted, within 15 s, and there are never two live claims on a message, nor
two sends of it under way at once. Rate limits (`delivery.limits`): Teams' global and
per-conversation limits, answers to people first. Different conversations are sent to
concurrently; one conversation's messages go one at a time, in order: a message is not
claimed while an earlier one to the same person waits (a late answer waits only behind
the person's earlier late answers).

The sender does not make activities itself: it is given `render`, which turns an outbox
row into the activity to send (`messages.request_cards.outbox_activity` makes a month's
request cards as they go), so the rooms above decide what a message says.

Delivery is at least once, not exactly once, in two narrow cases: Teams accepted a message
but the database never recorded it (the process died in between: it is sent again once the
claim lapses), or Teams accepted it but its answer never came (a timeout or a broken
connection: it is sent again at the retry; this is also why a turn's answer that may have
reached Teams is queued rather than lost). We prefer a duplicate to a lost audit request.
Otherwise each message is sent once: claims are exclusive, a send only starts while its
claim is sure to outlast it, and retries follow only answers that say Teams did not take
the message.

Log lines carry message, recipient and conversation row ids and status codes only: never
names, emails, Teams ids or message text.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import Activity
from sqlmodel.ext.asyncio.session import AsyncSession

from delivery.claims import Claims
from delivery.conversations import SEND_TIMEOUT, conversation_reference
from delivery.limits import Monotonic, RateLimiter, SendLimits
from delivery.outcomes import (
    UNDELIVERABLE_STATUSES,
    Delivery,
    DeliveryResult,
    UnrenderableMessageError,
    describe,
    retry_after_of,
    status_of,
)
from storage import outbox, roster
from storage.database import Database
from storage.models import OutboxMessage, TeamsConversation, utc_now

log = logging.getLogger(__name__)

# The 4xx answers worth retrying (unauthorised: our credentials or token, not the person;
# timeout; precondition failed; throttled). Every 5xx is retried too; any other 4xx makes
# a message undeliverable.
RETRY_STATUSES = frozenset({401, 408, 412, 429})

# Turns an outbox row into the activity to send, as plain JSON; raises
# UnrenderableMessageError if it cannot be made.
Render = Callable[[OutboxMessage], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class DrainReport:
    """What one `drain()` did with the messages it took."""

    sent: int = 0
    undeliverable: int = 0
    pending: int = 0  # tried, and to be tried again after a back-off longer than the wait
    not_installed: int = 0


def default_instance_id() -> str:
    """Return an id for this sender process: host and process id."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}"


@dataclass
class _Tally:
    """The latest outcome of each message a drain touched, and when retries are due."""

    track: bool = True  # `run` keeps no tally: it would grow for as long as the bot runs
    outcomes: dict[int, Delivery] = field(default_factory=dict)
    retry_at: dict[int, datetime] = field(default_factory=dict)

    def note(self, message_id: int, outcome: Delivery, retry_at: datetime | None = None) -> None:
        if not self.track:
            return
        self.outcomes[message_id] = outcome
        if retry_at is not None:
            self.retry_at[message_id] = retry_at
        else:
            self.retry_at.pop(message_id, None)

    def hand_over(self, *, due_by: datetime) -> None:
        """Forget the retries due by then: they were claimable, so someone else has them."""
        for message_id in [i for i, when in self.retry_at.items() if when <= due_by]:
            del self.retry_at[message_id]
            del self.outcomes[message_id]

    def report(self) -> DrainReport:
        counts = {outcome: 0 for outcome in Delivery}
        for outcome in self.outcomes.values():
            counts[outcome] += 1
        return DrainReport(
            sent=counts[Delivery.SENT],
            undeliverable=counts[Delivery.UNDELIVERABLE],
            pending=counts[Delivery.FAILED],
            not_installed=counts[Delivery.NOT_INSTALLED],
        )


class OutboxSender:
    """Claims due outbox messages and delivers them to Teams within its rate limits."""

    def __init__(
        self,
        *,
        database: Database,
        adapter: CloudAdapter,
        app_id: str,
        limits: SendLimits | None = None,
        clock: Callable[[], datetime] = utc_now,
        instance_id: str | None = None,
        render: Render,
        on_attempt: Callable[[Delivery, int], None] | None = None,
        monotonic: Monotonic = time.monotonic,
        rate_clock: Monotonic | None = None,
    ) -> None:
        self._database = database
        # Makes each row's activity, a request card from its audit as it is now included.
        self._render = render
        # Told of every attempt's outcome and HTTP status (0 if none): for the metrics.
        self._on_attempt = on_attempt
        self._adapter = adapter
        self._app_id = app_id
        self._limits = limits or SendLimits()
        self._clock = clock
        self._monotonic = monotonic
        self.name = (instance_id or default_instance_id())[:55]
        # What the sender writes in the rows it claims: its name and a token of this start,
        # so that a restarted process (in a container, often with the same host name and
        # process id) or a second one given the same name never takes another's claims as
        # its own.
        self.instance_id = f"{self.name}#{secrets.token_hex(4)}"
        self._claims = Claims(self._limits.lease, monotonic, asyncio.sleep)
        # Teams' rate limits are counted on `rate_clock` (seconds, like `monotonic`, which it
        # is by default): a test whose people answer at machine speed runs it ahead, as its
        # fake Teams does, to stand for the time people take over each card.
        self._limiter = RateLimiter(self._limits, rate_clock or monotonic, asyncio.sleep)
        # Jitter only spreads retries out; it needs no cryptographic strength.
        self._random = random.Random()  # noqa: S311
        self._slots = asyncio.Semaphore(self._limits.concurrency)
        self._sending: set[asyncio.Task[DeliveryResult]] = set()

    @property
    def limits(self) -> SendLimits:
        return self._limits

    @property
    def limiter(self) -> RateLimiter:
        """The limits this sender keeps (answers to people can be counted in them too)."""
        return self._limiter

    # -- the loops ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Send due messages until `stop` is set; sends under way are finished first."""
        log.info("outbox sender %s started", self.instance_id)
        await self._pump(_Tally(track=False), stop=stop)
        log.info("outbox sender %s stopped", self.instance_id)

    async def drain(self, *, max_wait: float = 60.0) -> DrainReport:
        """Send everything due now, waiting out retries due within `max_wait` seconds."""
        tally = _Tally()
        deadline = self._monotonic() + max_wait
        while True:
            started = self._clock()
            await self._pump(tally, stop=None)
            # A retry that was due and yet not ours to claim went to another sender.
            tally.hand_over(due_by=started)
            if not tally.retry_at:
                break
            delay = (min(tally.retry_at.values()) - self._clock()).total_seconds()
            if self._monotonic() + delay > deadline:
                break
            # A little past the time, so the claim's `next_attempt_at <= now` holds.
            await asyncio.sleep(max(0.0, delay) + 0.01)
        return tally.report()

    async def _pump(self, tally: _Tally, *, stop: asyncio.Event | None) -> None:
        """Claim and send until stopped (with `stop`) or until nothing is claimable."""
        groups: set[asyncio.Task[None]] = set()
        heartbeat = asyncio.create_task(self._keep_claims(), name="outbox-heartbeat")
        try:
            while stop is None or not stop.is_set():
                claimed = 0
                # Claim only while conversations are waiting for a free slot: what one
                # sender holds and cannot send yet, another could.
                if len(groups) < self._limits.concurrency:
                    try:
                        claimed = await self._claim_and_start(tally, groups)
                    except Exception as error:
                        if stop is None:
                            raise
                        log.error("outbox claim failed: %s", type(error).__name__)
                if claimed:
                    continue
                if not groups and stop is None:
                    return
                waiters: set[asyncio.Future[Any]] = set(groups)
                if stop is not None:
                    waiters.add(asyncio.ensure_future(stop.wait()))
                try:
                    await asyncio.wait(
                        waiters,
                        timeout=self._limits.poll_interval,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    for waiter in waiters - groups:
                        waiter.cancel()
        finally:
            for group in groups:
                group.cancel()
            await asyncio.gather(*groups, return_exceptions=True)
            # A send once started is finished and recorded, even when stopping; its claim
            # is kept alive meanwhile.
            await asyncio.gather(*self._sending, return_exceptions=True)
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)

    async def _keep_claims(self) -> None:
        """Renew the claims this sender holds, every heartbeat, for as long as it runs."""
        while True:
            await asyncio.sleep(self._limits.heartbeat)
            await self._renew_claims()

    async def _renew_claims(self) -> None:
        """Extend every claim held by a lease from now; forget those another sender took."""
        held = self._claims.held()
        if not held:
            return
        since = self._monotonic()
        now = self._clock()
        try:
            async with self._database.session() as session:
                renewed = await outbox.renew_claims(
                    session=session,
                    message_ids=held,
                    instance_id=self.instance_id,
                    now=now,
                    until=now + timedelta(seconds=self._limits.lease),
                )
        except Exception as error:
            # Sends stop once what is left of the claims is too short for one (the fence).
            log.warning("could not renew %d outbox claims: %s", len(held), type(error).__name__)
            return
        lost = self._claims.renewed(renewed, asked=held, since=since)
        if lost:
            log.warning("outbox sender %s lost %d claims", self.instance_id, len(lost))

    async def _claim_and_start(self, tally: _Tally, groups: set[asyncio.Task[None]]) -> int:
        """Claim a batch of due messages and start one task per person; return how many."""
        since = self._monotonic()
        now = self._clock()
        async with self._database.session() as session:
            messages = await outbox.claim_due(
                session=session,
                instance_id=self.instance_id,
                now=now,
                lease=timedelta(seconds=self._limits.lease),
                limit=self._limits.batch_size,
            )
            by_recipient: dict[int, list[OutboxMessage]] = {}
            for message in messages:
                by_recipient.setdefault(message.recipient_id, []).append(message)
            conversations = await self._conversations_of(session, list(by_recipient))
        self._claims.took([m.id for m in messages if m.id is not None], since=since)
        for recipient_id, queue in by_recipient.items():
            group = asyncio.create_task(
                self._send_queue(recipient_id, queue, conversations.get(recipient_id), tally),
                name=f"outbox-recipient-{recipient_id}",
            )
            groups.add(group)
            group.add_done_callback(groups.discard)
        return len(messages)

    async def _conversations_of(
        self, session: AsyncSession, recipient_ids: list[int]
    ) -> dict[int, TeamsConversation]:
        """Return the installed personal chat of each recipient who has one."""
        staff = await roster.staff_by_ids(session=session, ids=recipient_ids)
        found: dict[int, TeamsConversation] = {}
        for staff_id, person in staff.items():
            if person.aad_object_id:
                conversation = await roster.conversation_of(
                    session=session, aad_object_id=person.aad_object_id
                )
                if conversation is not None:
                    found[staff_id] = conversation
        return found

    async def _send_queue(
        self,
        recipient_id: int,
        queue: list[OutboxMessage],
        conversation: TeamsConversation | None,
        tally: _Tally,
    ) -> None:
        """Send one person's claimed messages in order; give back the rest on a failure."""
        unsent = 0  # queue[unsent:] have not been handed to a send
        try:
            if conversation is None:
                await self._not_installed(recipient_id, queue, tally)
                unsent = len(queue)
                return
            async with self._slots:
                for message in queue:
                    assert message.id is not None
                    await self._limiter.acquire(conversation.conversation_id)
                    send = asyncio.create_task(self._send_claimed(message, conversation))
                    unsent += 1
                    self._sending.add(send)
                    send.add_done_callback(self._sending.discard)
                    # Shielded: when stopping, a send under way is finished and recorded.
                    result = await asyncio.shield(send)
                    tally.note(message.id, result.outcome, result.retry_at)
                    if result.outcome not in (Delivery.SENT, Delivery.UNDELIVERABLE):
                        return  # the rest wait behind this one, to keep the order
        except Exception as error:
            log.error(
                "outbox messages of recipient %s failed: %s", recipient_id, type(error).__name__
            )
        finally:
            rest = [m.id for m in queue[unsent:] if m.id is not None]
            if rest:
                await self._give_back(rest)

    async def _give_back(self, message_ids: list[int]) -> None:
        self._claims.drop(message_ids)
        try:
            async with self._database.session() as session:
                await outbox.release(
                    session=session, message_ids=message_ids, instance_id=self.instance_id
                )
        except Exception as error:
            # They come back when the lease lapses.
            log.warning("could not give back %d claims: %s", len(message_ids), type(error).__name__)

    async def _not_installed(
        self, recipient_id: int, queue: list[OutboxMessage], tally: _Tally
    ) -> None:
        until = self._clock() + timedelta(seconds=self._limits.not_installed_delay)
        ids = [m.id for m in queue if m.id is not None]
        self._claims.drop(ids)
        async with self._database.session() as session:
            await outbox.defer_until_installed(
                session=session, message_ids=ids, instance_id=self.instance_id, until=until
            )
        for message_id in ids:
            tally.note(message_id, Delivery.NOT_INSTALLED)
        log.info(
            "recipient %s has no installed chat; %d messages wait until %s",
            recipient_id,
            len(ids),
            f"{until:%Y-%m-%d %H:%M}",
        )

    # -- one message --------------------------------------------------------------------

    async def deliver(self, message_id: int) -> DeliveryResult:
        """Claim one pending message and send it now, whatever its retry time."""
        since = self._monotonic()
        now = self._clock()
        async with self._database.session() as session:
            message = await outbox.claim_one(
                session=session,
                message_id=message_id,
                instance_id=self.instance_id,
                now=now,
                lease=timedelta(seconds=self._limits.lease),
            )
            if message is None:
                return DeliveryResult(message_id, Delivery.FAILED, "not pending")
            conversations = await self._conversations_of(session, [message.recipient_id])
        self._claims.took([message_id], since=since)
        conversation = conversations.get(message.recipient_id)
        if conversation is None:
            await self._not_installed(message.recipient_id, [message], _Tally(track=False))
            return DeliveryResult(message_id, Delivery.NOT_INSTALLED)
        await self._limiter.acquire(conversation.conversation_id)
        return await self._send_claimed(message, conversation)

    async def _send_claimed(
        self, message: OutboxMessage, conversation: TeamsConversation
    ) -> DeliveryResult:
        """Send one claimed message (the limiter already let it through) and record it."""
        assert message.id is not None
        key = conversation.conversation_id
        activity: Activity | None = None
        failure: BaseException | None = None
        try:
            try:
                # Made first: the time a send may take is then the request's alone.
                activity = await self._activity_of(message)
            except Exception as error:
                failure = error
            if not await self._claim_holds(message.id):
                self._limiter.cancel(key)
                log.warning("outbox message %s: claim lost before sending", message.id)
                return DeliveryResult(message.id, Delivery.FAILED, "claim lost")
        except BaseException:
            self._limiter.cancel(key)
            raise
        activity_id: str | None = None
        if activity is None:
            self._limiter.cancel(key)  # nothing was sent
        else:
            try:
                # The adapter cuts the request off at `send_timeout`; this only backs it up.
                activity_id = await asyncio.wait_for(
                    self._post(activity, conversation), self._limits.send_timeout + 1
                )
            except Exception as error:
                failure = error
            finally:
                self._limiter.finish(key)
        result = await self._record(message, conversation, activity_id, failure)
        if self._on_attempt is not None:
            self._on_attempt(result.outcome, status_of(failure) if failure else 200)
        return result

    async def _claim_holds(self, message_id: int) -> bool:
        """Say whether the claim is sure to outlast a send, waiting for a heartbeat if need be."""
        needed = self._limits.send_timeout + self._limits.fence_margin
        while True:
            left = self._claims.left(message_id)
            if left is None:
                return False
            if left >= needed:
                return True
            if left <= 0:
                # Never renewed in time: another sender may have it now. This one fences
                # itself off from the message rather than risk sending it twice.
                self._claims.drop([message_id])
                return False
            await self._claims.next_renewal(left)

    async def _activity_of(self, message: OutboxMessage) -> Activity:
        """Return the activity to send for an outbox message, as `render` makes it."""
        return Activity().deserialize(await self._render(message))

    async def _post(self, activity: Activity, conversation: TeamsConversation) -> str | None:
        """Send an activity to the person's chat; return Teams' activity id."""
        sent: list[str | None] = []
        failures: list[Exception] = []

        async def send(context: TurnContext) -> None:
            context.turn_state[SEND_TIMEOUT] = self._limits.send_timeout
            try:
                response = await context.send_activity(activity)
            except Exception as error:
                # Raised here, botbuilder would hand it to on_turn_error, which apologises
                # to the person and swallows it; we want it.
                failures.append(error)
                return
            sent.append(response.id if response else None)

        await self._adapter.continue_conversation(
            conversation_reference(conversation), send, self._app_id
        )
        if failures:
            raise failures[0]
        if not sent:
            raise RuntimeError("the adapter did not run the send")
        return sent[0]

    async def _record(
        self,
        message: OutboxMessage,
        conversation: TeamsConversation,
        activity_id: str | None,
        failure: BaseException | None,
    ) -> DeliveryResult:
        """Write the outcome of one attempt to the outbox and return it."""
        assert message.id is not None
        now = self._clock()
        attempt = message.attempts + 1
        self._claims.drop([message.id])
        if failure is None:
            async with self._database.session() as session:
                recorded = await outbox.record_sent(
                    session=session, message_id=message.id, activity_id=activity_id, now=now
                )
            if not recorded:
                log.warning("outbox message %s was sent by another sender too", message.id)
            log.info("outbox message %s sent (attempt %d)", message.id, attempt)
            return DeliveryResult(message.id, Delivery.SENT)

        if isinstance(failure, UnrenderableMessageError):
            return await self._undeliverable(message, str(failure))
        status, detail = status_of(failure), describe(failure)
        if status in UNDELIVERABLE_STATUSES or (
            400 <= status < 500 and status not in RETRY_STATUSES
        ):
            return await self._undeliverable(message, detail)
        if attempt >= self._limits.max_attempts:
            return await self._undeliverable(
                message, f"gave up after {attempt} attempts (last: {detail})"
            )
        retry_after = retry_after_of(failure, now) if status == 429 else None
        if retry_after is not None:
            delay = min(retry_after, self._limits.retry_after_cap)
        else:
            delay = self._backoff(attempt)
        if status == 429:
            self._limiter.throttled(conversation.conversation_id, delay)
        retry_at = now + timedelta(seconds=delay)
        async with self._database.session() as session:
            recorded = await outbox.record_retry(
                session=session,
                message_id=message.id,
                instance_id=self.instance_id,
                error=detail,
                next_attempt_at=retry_at,
            )
        log.info(
            "outbox message %s: %s on attempt %d; next try in %.1f s",
            message.id,
            detail,
            attempt,
            delay,
        )
        if not recorded:
            log.warning("outbox message %s: claim lost before recording", message.id)
        return DeliveryResult(message.id, Delivery.FAILED, detail, retry_at)

    async def _undeliverable(self, message: OutboxMessage, error: str) -> DeliveryResult:
        assert message.id is not None
        async with self._database.session() as session:
            recorded = await outbox.record_undeliverable(
                session=session, message_id=message.id, instance_id=self.instance_id, error=error
            )
        log.warning("outbox message %s undeliverable: %s", message.id, error)
        if not recorded:
            log.warning("outbox message %s: claim lost before recording", message.id)
        return DeliveryResult(message.id, Delivery.UNDELIVERABLE, error)

    def _backoff(self, attempt: int) -> float:
        """Return an exponential back-off with jitter for the attempt that just failed."""
        ceiling = min(self._limits.backoff_cap, self._limits.backoff_base * 2.0 ** (attempt - 1))
        # Between half and all of it, so retries spread out but still grow.
        return ceiling * self._random.uniform(0.5, 1.0)
