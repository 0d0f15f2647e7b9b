"""The chatgpt generator in online mode, against the fake OpenAI server over real sockets."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import DictConfig

from emoreason.config import ConfigError
from emoreason.data.reasoning import read_reasoning_jsonl
from emoreason.generation.errors import FatalAPIError
from emoreason.generation.run import generate
from emoreason.generation.store import read_entries
from tests.support.fake_openai import FakeOpenAI
from tests.support.generation import API_KEY, DUPLICATE_IDS, TINY_ROWS

MakeCfg = Callable[..., DictConfig]


def _cache(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "cache.jsonl"


def test_every_item_completes_despite_faults(
    make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str, tmp_path: Path
) -> None:
    fake.inject("429", "500", "503", "slow", "drop", "429", "500")
    summary = generate(make_cfg("n=30", "generator.max_retries=8"))

    assert summary["complete"] and summary["completed"] == 30
    assert set(summary["retries"]) == {"rate_limited", "server_error", "timeout", "connection"}
    assert summary["requests"] == len(fake.chats) == 30 + 7
    records = read_reasoning_jsonl(tmp_path / "out" / "reasoning.jsonl")
    assert len(records) == 30
    assert all(r.model == "gpt-4o-mini-2024-07-18" for r in records)  # the name the API returned
    assert all(r.prompt_version == "kote-reasoning-v1" and r.finish_reason == "stop" for r in records)
    assert all(r.usage is not None and r.usage.total_tokens > 0 for r in records)
    assert summary["cost_usd"] > 0 and summary["cost_per_item_usd"] == pytest.approx(
        summary["cost_usd"] / 30, rel=1e-3
    )


def test_a_429_pauses_every_worker_for_its_retry_after(
    make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str
) -> None:
    fake.latency_s = 0.05
    fake.retry_after_ms = 500
    fake.inject("429")
    generate(make_cfg("n=40"))

    limited = next(c for c in fake.chats if c.fault == "429")
    answered = limited.arrived + fake.latency_s
    during_pause = [c for c in fake.chats if answered + 0.1 < c.arrived < answered + 0.45]
    # Without the shared pause the 3 other workers send a request every 50 ms (~20 in this window); with it,
    # at most one straggler each, sent before the 429 was processed, can arrive.
    assert len(during_pause) <= 3


def test_truncation_and_refusal_are_recorded_not_retried_and_redone_only_when_asked(
    make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str, tmp_path: Path
) -> None:
    fake.fault_for_text = {"테스트 댓글 t3번": "truncate", "테스트 댓글 t5번": "refusal"}
    calls = TINY_ROWS - 1  # n=null: every row; the duplicate pair shares a call
    summary = generate(make_cfg("n=null"))
    assert summary["failed"] == {"truncated": 1, "refusal": 1}
    assert summary["completed"] == TINY_ROWS - 2 and not summary["complete"]
    assert len(fake.chats) == calls  # one call each: no blind retry
    entries = [e for e in read_entries(_cache(tmp_path)).values() if e.status == "failed"]
    assert {e.reason for e in entries} == {"truncated", "refusal"}
    assert all(e.record.usage is not None for e in entries)  # paid for, so usage is kept

    again = generate(make_cfg("n=null"))
    assert len(fake.chats) == calls and again["requests"] == 0  # recorded failures are not retried silently
    assert again["failed"] == {"truncated": 1, "refusal": 1}

    fake.fault_for_text = {}
    fixed = generate(make_cfg("n=null", "generator.retry_failed=true", "generator.max_tokens=1024"))
    assert fixed["requests"] == 2 and fixed["complete"]
    assert sorted(text[:10] for text in fake.chat_texts()[-2:]) == ["테스트 댓글 t3번", "테스트 댓글 t5번"]


def test_a_rerun_makes_no_call_for_stored_items_and_duplicates_share_one_call(
    make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str, tmp_path: Path
) -> None:
    first = generate(make_cfg("n=null"))
    pool = TINY_ROWS  # val_holdout: the pool is all of val.tsv
    assert first["items"] == pool and first["complete"]
    assert len(fake.chats) == pool - 1  # the duplicate pair cost one call
    ids = {r.id for r in read_reasoning_jsonl(tmp_path / "out" / "reasoning.jsonl")}
    assert set(DUPLICATE_IDS) <= ids

    second = generate(make_cfg("n=null"))
    assert second["requests"] == 0 and len(fake.chats) == pool - 1
    assert second["from_cache"] == pool and second["complete"]


def test_dry_run_renders_and_prices_every_call_without_any_request(
    make_cfg: MakeCfg, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # a dry run needs no key
    summary = generate(make_cfg("n=null", "dry_run=true", "max_cost_usd=0.005"))
    assert fake.chats == [] and sum(fake.paths.values()) == 0
    assert summary["items"] == TINY_ROWS and summary["calls_needed"] == TINY_ROWS - 1  # one duplicate pair
    assert 0 < summary["estimated_cost_usd"] < summary["worst_case_cost_usd"]
    assert 0 < summary["calls_within_max_cost"] < TINY_ROWS - 1
    assert not _cache(tmp_path).exists() and not (tmp_path / "out").exists()


def test_budget_cap_stops_starting_calls_before_it_would_be_crossed(
    make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str, tmp_path: Path
) -> None:
    cap = 0.003
    summary = generate(make_cfg("n=60", f"max_cost_usd={cap}"))
    assert summary["cost_usd"] <= cap
    assert summary["not_started"]["budget"] > 0 and summary["generated"] == len(fake.chats)
    entries = read_entries(_cache(tmp_path)).values()
    worst_next = 0.15e-6 * 2000 + 0.60e-6 * 512  # any prompt here is < 2000 bytes; max_tokens 512
    assert summary["cost_usd"] + worst_next > cap  # it stopped only when one more call might not fit
    assert sum(e.cost_usd or 0 for e in entries) == pytest.approx(summary["cost_usd"], abs=1e-6)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("wrong_key", "rejected OPENAI_API_KEY"),
        ("unknown_model", "model 'gpt-nonexistent' not found"),
        ("quota", "insufficient_quota"),
    ],
)
def test_fatal_errors_abort_at_once_with_a_clear_message(
    setup: str, message: str, make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str, tmp_path: Path
) -> None:
    overrides = ["n=40"]
    if setup == "wrong_key":
        fake.api_key = "fake-key-the-server-expects-another"
    elif setup == "unknown_model":
        overrides.append("generator.model=gpt-nonexistent")
    else:
        fake.inject("quota")
    with pytest.raises(FatalAPIError, match=message) as info:
        generate(make_cfg(*overrides))
    assert API_KEY not in str(info.value)
    assert len(fake.chats) <= 4  # the calls already in flight (concurrency 4), none retried
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert summary["not_started"]["aborted"] >= 36


def test_missing_key_and_bad_values_fail_before_any_request(
    make_cfg: MakeCfg, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY is not set"):
        generate(make_cfg("n=5"))
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    with pytest.raises(ConfigError, match=r"generator\.concurrency must be a positive integer, got -1"):
        generate(make_cfg("n=5", "generator.concurrency=-1"))
    with pytest.raises(ConfigError, match=r"max_cost_usd needs a price for 'local-llm'"):
        generate(make_cfg("n=5", "generator.model=local-llm", "max_cost_usd=1"))
    assert fake.chats == []
