"""The retry loop's waits (capped, logged, shared when 429s show a limit), its transport, its imports."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp
import httpx2
import openai
import pytest
from omegaconf import DictConfig

from emoreason.generation import client as client_module
from emoreason.generation.client import ChatClient, timed_out
from emoreason.generation.config import ChatGPTConfig
from emoreason.generation.cost import Budget
from emoreason.generation.errors import RerunLaterError
from emoreason.generation.faults import Failure
from emoreason.generation.ratelimit import LIMIT_WINDOW, RateLimiter
from emoreason.generation.run import generate
from tests.support.fake_openai import FakeOpenAI, ServerThread
from tests.support.generation import base_overrides
from tests.support.project import REPO

MakeCfg = Callable[..., DictConfig]


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


def test_a_rare_429_waits_its_own_retry_after_without_pausing_the_other_callers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(client_module.asyncio, "sleep", sleep)
    client = _client(max_wait_s=120.0)
    for _ in range(LIMIT_WINDOW):
        client.window.answered()  # 50 answers, then one 429: a server's occasional refusal, not a limit
    asked = Failure("transient", "rate_limited", "429", retry_after_s=1.0, slow_down=True)
    asyncio.run(client._wait(0, asked))
    assert client.limiter.pauses == 0 and client.limiter.paused_until == 0.0  # nobody else waits
    assert len(slept) == 1 and 1.0 <= slept[0] <= 1.1  # this call does, for its full Retry-After


def test_every_retry_after_is_honoured_while_429s_come_at_random(
    make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str
) -> None:
    fake.latency_s = 0.02
    fake.retry_after_ms = 300
    fake.fault_rate, fake.random_faults = 0.15, ("429",)
    summary = generate(make_cfg("n=60", "generator.concurrency=8", "generator.max_retries=10"))
    assert summary["complete"] and summary["retries"]["rate_limited"] >= 3
    for number, chat in enumerate(fake.chats):
        if chat.fault != "429":
            continue
        answered = chat.arrived + fake.latency_s
        retry = next(c for c in fake.chats[number + 1 :] if c.text == chat.text)
        assert retry.arrived - answered >= 0.3 - 0.01  # never before the server said (clock rounding aside)


def test_a_refused_connection_is_told_apart_from_a_timeout() -> None:
    """The SDK's aiohttp transport reports both as ``ConnectTimeout``; only a real timeout is one."""
    refused = aiohttp.ClientConnectionError("Cannot connect to host 127.0.0.1:9")
    timeout = aiohttp.ServerTimeoutError("Timeout on reading data from socket")
    for cause, expected in ((refused, False), (timeout, True), (None, True)):
        transport = httpx2.ConnectTimeout(str(cause))
        transport.__cause__ = cause
        error = openai.APITimeoutError(request=httpx2.Request("POST", "http://127.0.0.1:9/v1"))
        error.__cause__ = transport
        assert timed_out(error) is expected


def test_generate_py_imports_no_torch_from_start_to_exit(
    fake_server: ServerThread, tiny_kote_dir: Path, tmp_path: Path, api_key: str
) -> None:
    """torch costs 2 s to import and generation needs none of it: no module on this path may import it."""
    overrides = base_overrides(tmp_path, tiny_kote_dir, fake_server.base_url)
    command = [
        sys.executable,
        "-X",
        "importtime",
        "generate.py",
        *overrides,
        f"hydra.run.dir={tmp_path}",
        "n=5",
    ]
    run = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    imported = {line.rsplit("|", 1)[1].strip() for line in run.stderr.splitlines() if "import time:" in line}
    assert {"openai", "emoreason.generation.client"} <= imported  # the whole run was traced
    assert sorted(m for m in imported if m.split(".")[0] == "torch") == []
