"""The retry loop's waits: capped, logged, and shared when the server says slow down."""

from __future__ import annotations

import asyncio
import logging

import pytest

from emoreason.generation import client as client_module
from emoreason.generation.client import ChatClient
from emoreason.generation.config import ChatGPTConfig
from emoreason.generation.cost import Budget
from emoreason.generation.errors import RerunLaterError
from emoreason.generation.faults import Failure
from emoreason.generation.ratelimit import RateLimiter


def _client(**settings: object) -> ChatClient:
    cfg = ChatGPTConfig(base_url="http://127.0.0.1:9/v1", **settings)  # type: ignore[arg-type]
    return ChatClient(cfg, "sk-test", budget=Budget(None), pricing=None, limiter=RateLimiter(None, None))


def test_a_long_backoff_is_logged_with_its_cause_and_stays_under_backoff_max(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(client_module.asyncio, "sleep", sleep)
    client = _client(backoff_base_s=40.0, backoff_max_s=50.0)
    with caplog.at_level(logging.WARNING):
        asyncio.run(client._wait(3, Failure("transient", "server_error", "502: Bad Gateway")))
    assert len(slept) == 1 and 25.0 <= slept[0] <= 50.0
    assert "before retrying (server_error: 502: Bad Gateway)" in caplog.text


def test_a_retry_after_beyond_max_wait_stops_every_caller_with_rerun_later() -> None:
    client = _client(max_wait_s=120.0)
    asked = Failure(
        "transient", "rate_limited", "429: Rate limit reached", retry_after_s=3600.0, slow_down=True
    )
    with pytest.raises(RerunLaterError, match=r"asks to wait 60 min .*generator\.max_wait_s=120"):
        asyncio.run(client._wait(0, asked))
    assert isinstance(client.stopped, RerunLaterError)


def test_a_429_within_the_cap_pauses_every_caller_once(monkeypatch: pytest.MonkeyPatch) -> None:
    client = _client(max_wait_s=120.0)
    asked = Failure("transient", "rate_limited", "429", retry_after_s=0.05, slow_down=True)

    async def two_workers() -> None:
        client_module.SENT_AT.set(client.limiter.now())
        await asyncio.gather(client._wait(0, asked), client._wait(0, asked))

    asyncio.run(two_workers())
    assert client.limiter.pauses == 1 and client.stats.retries["rate_limited"] == 2
