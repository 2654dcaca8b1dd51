"""Teams' rate limits as the sender keeps them, on virtual time: a test says how much passes."""

from __future__ import annotations

import asyncio

import pytest

from delivery.limits import RateLimiter, SendLimits, SlidingWindows
from tests.delivery_helpers import VirtualClock, settle


def limiter_on(clock: VirtualClock, limits: SendLimits) -> RateLimiter:
    return RateLimiter(limits, clock.monotonic, clock.sleep)


async def test_a_stray_429_pauses_its_chat_but_a_rising_share_slows_everything() -> None:
    clock = VirtualClock()
    limits = SendLimits(
        global_rate=40, slowdown_share=0.15, throttle_window=5.0, throttle_minimum=2
    )
    limiter = limiter_on(clock, limits)
    paused_at = 0.0
    for number in range(40):
        chat = f"chat-{number}"
        await clock.run(limiter.acquire(chat))
        limiter.finish(chat)
        if number % 20 == 0:  # 5% of the answers, as Teams sends when it is merely busy
            limiter.throttled(chat, pause=2.0)
            paused_at = clock.now
    assert limiter.global_rate == 40
    # The throttled chat waits as asked; the others go on.
    waiting = asyncio.create_task(limiter.acquire("chat-20"))
    await clock.advance(0.2)
    assert not waiting.done()
    await clock.run(waiting)
    assert clock.now >= paused_at + 2.0
    limiter.finish("chat-20")
    # A quarter of the answers throttled: the sender is over the tenant's limit.
    for number in range(40, 50):
        chat = f"chat-{number}"
        await clock.run(limiter.acquire(chat))
        limiter.finish(chat)
        limiter.throttled(chat, pause=0.0)
    assert limiter.global_rate == 20
    # ... for a while.
    await clock.advance(limits.slowdown_seconds)
    assert limiter.global_rate == 40


async def test_a_few_429s_among_a_broadcasts_first_answers_do_not_slow_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = VirtualClock()
    limiter = limiter_on(clock, SendLimits(global_rate=40))
    sent = 0

    async def send(throttled: bool) -> None:
        nonlocal sent
        chat = f"chat-{sent}"
        sent += 1
        await clock.run(limiter.acquire(chat))
        limiter.finish(chat)
        if throttled:
            limiter.throttled(chat, pause=1.0)

    # Three of the first twenty refused, as 5% random 429s do in about one broadcast in
    # thirteen: a large share of too few answers to mean anything.
    for number in range(20):
        await send(throttled=number in (3, 9, 15))
    assert limiter.global_rate == 40
    assert limiter.slowdowns == 0
    for _ in range(30):
        await send(throttled=False)
    assert limiter.global_rate == 40
    # Over fifty answers, a rising share does slow it down, once for the while.
    for _ in range(8):
        await send(throttled=True)
    assert limiter.global_rate == 20
    assert limiter.slowdowns == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        "Teams refused 16% of the last 56 answers with 429: sending at 20.0/s for 10 s"
    ], "said once, when it slowed down"


async def test_a_slow_senders_429s_are_judged_over_its_last_answers() -> None:
    clock = VirtualClock()
    limiter = limiter_on(clock, SendLimits(global_rate=4))
    # Four a second: the five-second window holds twenty answers, too few to judge; the
    # last fifty are judged instead, however long they took.
    for number in range(60):
        chat = f"chat-{number}"
        await clock.run(limiter.acquire(chat))
        limiter.finish(chat)
        if number >= 50:
            limiter.throttled(chat, pause=0.0)
    assert clock.now > 10
    assert limiter.global_rate == 2
    assert limiter.slowdowns == 1
    # Ten 429s among the last fifty answers, though only some were in the last 5 s.
    assert limiter.throttled_share(clock.now) == 10 / 50


def test_the_share_needs_answers_to_judge_over() -> None:
    with pytest.raises(ValueError, match="throttle_answers"):
        SendLimits(throttle_answers=0)


async def test_the_global_rate_is_kept_with_a_small_burst() -> None:
    clock = VirtualClock()
    limiter = limiter_on(clock, SendLimits(global_rate=10, global_burst=5))
    started: list[float] = []
    for number in range(25):
        chat = f"chat-{number}"
        await clock.run(limiter.acquire(chat))
        started.append(clock.now)
        limiter.finish(chat)
    assert started[4] == started[0], "a burst of five goes at once"
    assert all(started[i + 10] - started[i] > 1.0 for i in range(len(started) - 10))
    assert started[-1] - started[0] < 2.5, "and then ten a second"


async def test_answers_to_people_take_their_room_in_the_global_limit_first() -> None:
    clock = VirtualClock()
    limiter = limiter_on(clock, SendLimits(global_rate=10))
    for number in range(10):  # ten answers to people under way: the limit is used up
        await limiter.reply_starting(f"chat {number}", within=0)
    waiting = asyncio.create_task(limiter.acquire("chat"))
    await clock.advance(5.0)  # however long the answers take
    assert not waiting.done()
    for number in range(10):
        limiter.reply_finished(f"chat {number}")
    finished = clock.now
    await clock.advance(0.9)
    assert not waiting.done(), "Teams counts them for a second after they went"
    await clock.run(waiting)
    assert clock.now - finished >= 1.0
    limiter.finish("chat")


async def test_answers_wait_for_room_within_the_limits_and_for_a_pause_teams_asked_for() -> None:
    now = [100.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    limits = SendLimits(global_rate=3, per_conversation=((2, 1.0),), window_margin=0.0)
    limiter = RateLimiter(limits, monotonic=lambda: now[0], sleep=sleep)

    async def answer(chat: str) -> None:
        assert await limiter.reply_starting(chat, within=5.0)
        limiter.reply_finished(chat)

    await answer("chat")
    await answer("chat")
    assert now[0] == 100.0
    await answer("chat")
    assert now[0] == 101.0, "the chat's third waits until its first has left the window"
    await answer("other chat")
    await answer("other chat")
    assert now[0] == 101.0
    await answer("a third chat")
    assert now[0] == 102.0, "and the fourth in a second waits for the global limit (3/s)"
    # A chat Teams paused (a 429 with Retry-After to the outbox) holds answers too, while
    # the turn's time allows.
    limiter.throttled("a third chat", pause=3.0)
    assert not await limiter.reply_starting("a third chat", within=1.0)  # it goes all the same
    limiter.reply_finished("a third chat")
    assert now[0] == 103.0
    await answer("a third chat")
    assert now[0] == 105.0


async def test_the_outbox_lets_answers_waiting_for_room_go_first() -> None:
    clock = VirtualClock()
    limiter = limiter_on(clock, SendLimits(global_rate=2, window_margin=0.0))
    for _ in range(2):  # the global limit used up by answers in flight
        assert await limiter.reply_starting("busy chat", within=0)
    waiting_answer = asyncio.create_task(limiter.reply_starting("chat", within=5.0))
    await settle()
    outbox_message = asyncio.create_task(limiter.acquire("another chat"))
    limiter.reply_finished("busy chat")  # room for one, a second later
    assert await clock.run(waiting_answer)
    assert not outbox_message.done(), "the outbox took the room an answer was waiting for"
    limiter.reply_finished("chat")
    limiter.reply_finished("busy chat")
    await clock.run(outbox_message)
    limiter.finish("another chat")


async def test_answers_counted_while_nothing_is_sent_are_forgotten_in_time() -> None:
    clock = VirtualClock()
    window = SlidingWindows([(5, 0.05)], 0.0, clock.monotonic, clock.sleep)
    for _ in range(1000):  # a busy day's answers, with no message waiting to be sent
        window.started(1)
        window.finish()
    assert window.counted() == 1000
    await clock.advance(0.06)
    window.started(1)
    window.finish()
    assert window.counted() == 1, "the answers older than the window are not kept"
