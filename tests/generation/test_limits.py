"""Retry timing, rate limits and the budget, on a fake clock where timing matters."""

from __future__ import annotations

import asyncio
import random

import pytest

from emoreason.generation.client import backoff_delay, parse_retry_after
from emoreason.generation.cost import Budget, BudgetExhaustedError, affordable
from emoreason.generation.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # a date in the past: go now
        ({}, None),
        ({"retry-after": "soon"}, None),
    ],
)
def test_retry_after_headers(headers: dict[str, str], seconds: float | None) -> None:
    assert parse_retry_after(headers) == seconds


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    rng = random.Random(0)
    for attempt, ceiling in [(0, 1.0), (1, 2.0), (3, 8.0), (10, 30.0)]:
        delays = {backoff_delay(attempt, 1.0, 30.0, rng) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered: retries do not arrive in lockstep


def test_requests_per_minute_spaces_calls_after_a_one_second_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(requests_per_minute=120, tokens_per_minute=None, clock=clock)  # 2/s, burst 2
    assert [limiter.reserve(0) for _ in range(4)] == [0.0, 0.0, 0.5, 1.0]
    clock.now += 1.0
    assert limiter.reserve(0) == 0.5  # queued behind the debt: it waits its turn, nothing is skipped


def test_tokens_per_minute_charges_each_call_its_size() -> None:
    clock = Clock()
    limiter = RateLimiter(requests_per_minute=None, tokens_per_minute=6000, clock=clock)  # 100/s
    assert limiter.reserve(100) == 0.0
    assert limiter.reserve(300) == 3.0  # larger than the bucket, still admitted after its wait


def test_a_pause_holds_every_caller_and_is_never_shortened() -> None:
    clock = Clock()
    limiter = RateLimiter(None, None, clock=clock)
    limiter.pause(2.0, sent_at=clock.now)
    limiter.pause(0.5, sent_at=clock.now)
    assert limiter.paused_until == clock.now + 2.0


def test_429s_to_requests_already_in_flight_share_the_pause_instead_of_chaining() -> None:
    clock = Clock()
    limiter = RateLimiter(None, None, clock=clock)
    in_flight_since = clock.now
    limiter.pause(2.0, sent_at=clock.now)
    clock.now += 1.9  # a slow request sent before the pause answers 429 just before it ends
    limiter.pause(2.0, sent_at=in_flight_since)
    assert limiter.paused_until == pytest.approx(1002.0) and limiter.pauses == 1
    clock.now += 0.2  # a request sent after the pause answers 429: that is a new slow-down
    limiter.pause(2.0, sent_at=clock.now - 0.05)
    assert limiter.paused_until == pytest.approx(clock.now + 2.0) and limiter.pauses == 2


def test_budget_waits_for_calls_in_flight_and_refuses_only_what_can_never_fit() -> None:
    async def scenario() -> list[str]:
        budget = Budget(limit_usd=1.0)
        events: list[str] = []
        await budget.reserve(0.6)  # call A in flight at its worst case

        async def call_b() -> None:
            await budget.reserve(0.6)  # does not fit beside A: must wait, not fail
            events.append("B started")
            await budget.settle(0.6, 0.1)

        task = asyncio.create_task(call_b())
        await asyncio.sleep(0.01)
        events.append("A settles")
        await budget.settle(0.6, 0.2)  # A cost far less than its worst case
        await task
        assert budget.spent_usd == pytest.approx(0.3)
        with pytest.raises(BudgetExhaustedError):
            await budget.reserve(0.8)  # nothing in flight and 0.3 + 0.8 > 1.0
        with pytest.raises(BudgetExhaustedError):
            await budget.reserve(0.01)  # exhausted for good: no call starts after the first refusal
        return events

    assert asyncio.run(scenario()) == ["A settles", "B started"]


def test_affordable_counts_calls_in_order_under_the_cap() -> None:
    assert affordable([0.4, 0.4, 0.4], 1.0) == 2
    assert affordable([0.4, 0.4, 0.4], None) == 3
    assert affordable([1.5], 1.0) == 0
