"""The calls-in-flight window: places handed out in order, what a 429 means, AIMD on a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from emoreason.generation.ratelimit import LIMIT_WINDOW, CallWindow


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_window_admits_at_most_its_size_and_hands_places_over_in_arrival_order() -> None:
    async def scenario() -> tuple[list[str], int]:
        window = CallWindow(2)
        entered: list[str] = []
        most = 0

        async def call(name: str, hold: asyncio.Event) -> None:
            nonlocal most
            await window.enter()
            entered.append(name)
            most = max(most, window.in_flight)
            await hold.wait()
            window.leave()

        holds = {name: asyncio.Event() for name in "abcd"}
        tasks = [asyncio.create_task(call(name, holds[name])) for name in "abcd"]
        await asyncio.sleep(0.01)
        assert entered == ["a", "b"]  # c and d wait for a place
        holds["b"].set()
        await asyncio.sleep(0.01)
        assert entered == ["a", "b", "c"]  # b's place went to the first in line
        for hold in holds.values():
            hold.set()
        await asyncio.gather(*tasks)
        assert window.in_flight == 0
        return entered, most

    assert asyncio.run(scenario()) == (["a", "b", "c", "d"], 2)


def test_a_retry_that_has_waited_its_backoff_goes_before_new_calls() -> None:
    async def scenario() -> list[str]:
        window = CallWindow(1)
        await window.enter()
        entered: list[str] = []

        async def call(name: str, retry: bool) -> None:
            await window.enter(retry=retry)
            entered.append(name)
            window.leave()

        new = asyncio.create_task(call("new", retry=False))
        await asyncio.sleep(0.01)
        retried = asyncio.create_task(call("retry", retry=True))
        await asyncio.sleep(0.01)
        window.leave()
        await asyncio.gather(new, retried)
        return entered

    assert asyncio.run(scenario()) == ["retry", "new"]


def test_a_caller_cancelled_while_waiting_takes_no_place_with_it() -> None:
    async def scenario() -> int:
        window = CallWindow(1)
        await window.enter()
        waiting = asyncio.create_task(window.enter())
        await asyncio.sleep(0.01)
        waiting.cancel()
        window.leave()
        await asyncio.wait_for(window.enter(), timeout=1)  # the place is free, not lost to the cancelled one
        return window.in_flight

    assert asyncio.run(scenario()) == 1


def test_a_lone_429_pauses_everyone_but_a_rare_one_among_many_answers_delays_only_its_own_call() -> None:
    clock = Clock()
    window = CallWindow(64, clock=clock)
    assert window.slow_down(sent_at=clock.now)  # the first answer of a run is a 429: obey it everywhere
    for _ in range(LIMIT_WINDOW):
        window.answered()
    assert not window.slow_down(sent_at=clock.now)  # 1 in 50: a server's occasional refusal
    assert window.size == 64 and window.cuts == 0  # neither halves the calls in flight


def test_a_sustained_run_of_429s_halves_the_window_once_per_round_and_answers_grow_it_back() -> None:
    clock = Clock()
    window = CallWindow(16, clock=clock)
    for _ in range(LIMIT_WINDOW):
        window.answered()
    sent = clock.now
    clock.now += 1.0
    shared = [window.slow_down(sent_at=sent) for _ in range(12)]  # 12 of the last 50 answers refused
    assert shared == [False] * 9 + [True] * 3  # from the 10th (20%) on, a limit every caller obeys
    assert window.size == 8 and window.cuts == 1  # one cut: all 12 answer calls sent before it
    clock.now += 1.0
    assert window.slow_down(sent_at=clock.now - 0.5)  # a call sent after the cut is refused too
    assert window.size == 4 and window.cuts == 2
    for _ in range(4 + 5 + 6 + 7):  # one round of answers at each size: +1 call per round
        window.answered()
    assert window.size == pytest.approx(8.0, abs=0.3)
    for _ in range(500):
        window.answered()
    assert window.size == 16  # never above generator.concurrency
