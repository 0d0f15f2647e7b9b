"""Group commit in the generation cache: appends share fsyncs, none is acknowledged before its own."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import DictConfig

from emoreason.data.reasoning import ReasoningRecord
from emoreason.generation import store as store_module
from emoreason.generation.run import generate
from emoreason.generation.store import CacheEntry, GenerationCache, read_entries
from tests.support.fake_openai import FakeOpenAI, ServerThread
from tests.support.generation import TINY_ROWS, base_overrides
from tests.support.project import REPO


def _entry(key: str) -> CacheEntry:
    record = ReasoningRecord(id=key, text=f"text {key}", labels=("기쁨",), reasoning="이유")
    return CacheEntry(key=key, status="ok", record=record)


def test_appends_during_an_fsync_share_the_next_one_and_none_returns_before_its_line_is_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced_bytes = [0]  # how much of the file the last finished fsync covered
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        size = os.fstat(fd).st_size
        time.sleep(0.05)  # a disk: long enough for other appends to queue up behind it
        real_fsync(fd)
        synced_bytes[0] = size

    monkeypatch.setattr(store_module.os, "fsync", slow_fsync)
    path = tmp_path / "cache.jsonl"
    unsynced_on_return: list[str] = []

    async def append(cache: GenerationCache, key: str) -> None:
        await cache.append(_entry(key))
        if f'"key": "{key}"'.encode() not in path.read_bytes()[: synced_bytes[0]]:
            unsynced_on_return.append(key)

    async def scenario(cache: GenerationCache) -> None:
        await asyncio.gather(*(append(cache, f"k{i}") for i in range(40)))

    with GenerationCache(path) as cache:
        asyncio.run(scenario(cache))
        fsyncs = cache.fsyncs
    assert unsynced_on_return == []  # no append counted done before an fsync covering its line
    assert 2 <= fsyncs <= 4  # the first line alone, then the ones that queued meanwhile (not 40)
    assert sorted(read_entries(path)) == sorted(f"k{i}" for i in range(40))


def test_a_failed_fsync_fails_every_append_of_its_group_and_none_counts_as_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    async def scenario(cache: GenerationCache) -> list[BaseException | None]:
        return await asyncio.gather(
            *(cache.append(_entry(f"k{i}")) for i in range(5)), return_exceptions=True
        )

    with GenerationCache(tmp_path / "cache.jsonl") as cache:
        monkeypatch.setattr(store_module.os, "fsync", broken_fsync)  # the disk fails after opening
        outcomes = asyncio.run(scenario(cache))
        assert cache.entries == {}
    assert all(isinstance(o, OSError) for o in outcomes)


def test_kill_9_with_grouped_fsyncs_then_rerun_loses_nothing_and_repeats_no_stored_call(
    make_cfg: Callable[..., DictConfig],
    fake: FakeOpenAI,
    fake_server: ServerThread,
    tiny_kote_dir: Path,
    tmp_path: Path,
    api_key: str,
) -> None:
    fake.latency_s = 0.05
    cache = tmp_path / "cache" / "cache.jsonl"
    overrides = base_overrides(tmp_path, tiny_kote_dir, fake_server.base_url)
    command = [sys.executable, "generate.py", *overrides, f"hydra.run.dir={tmp_path / 'run'}", "n=null"]
    command.append("generator.concurrency=16")  # 16 answers every 50 ms: appends arrive in groups
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (cache.exists() and len(cache.read_bytes().splitlines()) >= 20):
        assert process.poll() is None, "generate.py ended before it could be killed"
        assert time.monotonic() < deadline, "generate.py stored nothing within 60 s"
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()

    stored = read_entries(cache)
    stored_texts = {entry.record.text for entry in stored.values()}
    calls_before = len(fake.chats)
    assert 20 <= len(stored) < TINY_ROWS - 1

    summary = generate(make_cfg("n=null", "generator.concurrency=16"))
    new_calls = fake.chat_texts()[calls_before:]
    assert stored_texts.isdisjoint(new_calls)  # nothing already stored is requested again
    assert len(new_calls) == TINY_ROWS - 1 - len(stored)  # and everything else exactly once
    assert summary["complete"] and summary["generated"] + summary["from_cache"] == TINY_ROWS
