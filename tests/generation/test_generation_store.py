"""The generation cache: durable appends, crash tolerance, corruption and locking, cache keys."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
from pathlib import Path

import pytest

from emoreason.data.reasoning import ReasoningRecord
from emoreason.generation.config import PromptConfig
from emoreason.generation.errors import CacheError
from emoreason.generation.prompt import PromptTemplate
from emoreason.generation.store import CacheEntry, GenerationCache, cache_key, read_entries

PROMPT = PromptTemplate.from_config(PromptConfig(version="v1", system="s", user="{text} / {labels}"))


def _entry(key: str, status: str = "ok", reasoning: str = "이유") -> CacheEntry:
    record = ReasoningRecord(id=key, text=f"text {key}", labels=("기쁨",), reasoning=reasoning)
    return CacheEntry(key=key, status=status, record=record, reason=None if status == "ok" else "truncated")  # type: ignore[arg-type]


def _append(cache: GenerationCache, *entries: CacheEntry) -> None:
    async def go() -> None:
        for entry in entries:
            await cache.append(entry)

    asyncio.run(go())


def test_appended_entries_survive_reopening_and_the_last_entry_per_key_wins(tmp_path: Path) -> None:
    path = tmp_path / "c" / "cache.jsonl"
    with GenerationCache(path) as cache:
        _append(cache, _entry("a", "failed", reasoning="잘린"), _entry("b"), _entry("a"))
    entries = read_entries(path)
    assert sorted(entries) == ["a", "b"]
    assert entries["a"].status == "ok"
    assert len(path.read_text(encoding="utf-8").splitlines()) == 3


def test_a_torn_last_line_is_dropped_on_open_and_the_next_append_starts_clean(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cache.jsonl"
    with GenerationCache(path) as cache:
        _append(cache, _entry("a"))
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"key": "b", "status": "ok", "id": "b", "te')  # kill -9 mid-write
    assert sorted(read_entries(path)) == ["a"]  # read-only readers skip it
    with caplog.at_level(logging.WARNING), GenerationCache(path) as cache:
        assert sorted(cache.entries) == ["a"]
        _append(cache, _entry("c"))
    assert "dropped a torn last line" in caplog.text
    assert sorted(read_entries(path)) == ["a", "c"]


def test_a_complete_last_line_missing_only_its_newline_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "cache.jsonl"
    path.write_text(json.dumps(_entry("a").to_json(), ensure_ascii=False), encoding="utf-8")
    with GenerationCache(path) as cache:
        _append(cache, _entry("b"))
    assert sorted(read_entries(path)) == ["a", "b"]


def test_a_corrupt_line_before_the_end_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "cache.jsonl"
    good = json.dumps(_entry("a").to_json(), ensure_ascii=False)
    path.write_text(good + "\n{broken\n" + good + "\n", encoding="utf-8")
    with pytest.raises(CacheError, match=rf"{path}:2: not valid JSON"), GenerationCache(path):
        pass


def test_two_runs_cannot_append_to_one_cache(tmp_path: Path) -> None:
    path = tmp_path / "cache.jsonl"
    with GenerationCache(path), pytest.raises(CacheError, match=r"in use by another generate\.py run"):
        GenerationCache(path).__enter__()
    with GenerationCache(path):  # released on exit
        pass


def test_cache_key_covers_model_prompt_temperature_text_and_labels() -> None:
    base = {"model": "m", "prompt": PROMPT, "temperature": 0.7, "text": "t", "labels": ("기쁨",)}
    edited = PromptTemplate(version="v1", system="s2", user=PROMPT.user)
    variants = [
        {"model": "m2"},
        {"prompt": edited},
        {"temperature": 0.2},
        {"text": "t2"},
        {"labels": ("기쁨", "놀람")},
    ]
    key = cache_key(**base)  # type: ignore[arg-type]
    assert key == cache_key(**base)  # type: ignore[arg-type]
    keys = {cache_key(**{**base, **change}) for change in variants}  # type: ignore[arg-type]
    assert len(keys) == len(variants) and key not in keys


def test_the_cache_file_gets_the_umask_mode_so_colleagues_can_share_it(tmp_path: Path) -> None:
    old = os.umask(0o002)
    try:
        with GenerationCache(tmp_path / "cache.jsonl"):
            pass
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "cache.jsonl").stat().st_mode) == 0o664
