"""The sender's account of its claims: how long each is sure to last, on virtual time."""

from __future__ import annotations

import asyncio

import pytest

from delivery.claims import Claims
from delivery.limits import SendLimits
from tests.delivery_helpers import VirtualClock, settle


def test_a_claim_is_sure_for_a_lease_from_when_it_was_asked_for() -> None:
    now = [100.0]
    claims = Claims(lease=12.0, monotonic=lambda: now[0], sleep=VirtualClock().sleep)
    claims.took([1, 2, 3], since=100.0)
    now[0] = 105.0
    assert claims.left(1) == 7.0
    # A renewal sent at 106 comes back at 107 with 1 and 3: 2 was taken by another sender.
    claims.drop([3])  # meanwhile 3 is recorded as sent ...
    claims.took([3], since=106.5)  # ... and, say, claimed afresh for a retry
    now[0] = 107.0
    assert claims.renewed({1}, asked=[1, 2, 3], since=106.0) == [2]
    assert claims.left(1) == 11.0
    assert claims.left(2) is None
    assert claims.left(3) == 11.5, "a later claim is not undone by an earlier renewal"
    assert sorted(claims.held()) == [1, 3]


def test_the_default_lease_lets_another_sender_take_over_within_15_seconds() -> None:
    limits = SendLimits()
    # A killed sender's claims run at most a lease from its last heartbeat; another
    # sender looks for lapsed claims every poll interval.
    assert limits.lease + limits.poll_interval <= 12.0
    # A living sender renews well before a claim is too short to start a send on.
    assert limits.lease - limits.heartbeat >= limits.send_timeout + limits.fence_margin
    with pytest.raises(ValueError, match="lease must outlast"):
        SendLimits(lease=10.0, send_timeout=8.0)


async def test_a_send_waits_for_the_next_renewal_at_most_as_long_as_it_may() -> None:
    clock = VirtualClock()
    claims = Claims(lease=12.0, monotonic=clock.monotonic, sleep=clock.sleep)
    claims.took([1], since=clock.now)
    renewal = asyncio.create_task(claims.next_renewal(3.0))
    await clock.advance(2.5)
    assert not renewal.done()
    assert claims.renewed({1}, asked=[1], since=clock.now) == []
    await settle()
    assert renewal.done(), "a renewal ends the wait"
    no_renewal = asyncio.create_task(claims.next_renewal(3.0))
    await clock.advance(2.5)
    assert not no_renewal.done()
    await clock.advance(0.5)
    assert no_renewal.done(), "without one, the wait ends when asked"
