"""Batch mode against the fake Files and Batches APIs: merge, half price, resume without paying twice."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import DictConfig

from emoreason.data.reasoning import read_reasoning_jsonl
from emoreason.generation.run import generate
from emoreason.generation.store import read_entries
from tests.support.fake_openai import FakeOpenAI

MakeCfg = Callable[..., DictConfig]
BATCH = "generator.mode=batch"


def _state(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "cache.jsonl.batch.json"


def test_batch_results_merge_into_the_cache_at_half_the_price(
    make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str, tmp_path: Path
) -> None:
    summary = generate(make_cfg("n=20", BATCH))
    assert summary["complete"] and summary["generated"] == 20
    assert fake.paths["/v1/files"] == 1 and fake.paths["/v1/batches"] == 1
    assert fake.chat_texts() == [] and len(fake.chat_texts(via_batch=True)) == 20  # no online call
    entries = list(read_entries(tmp_path / "cache" / "cache.jsonl").values())
    assert {e.mode for e in entries} == {"batch"}
    for entry in entries:
        usage = entry.record.usage
        assert usage is not None
        standard = (usage.prompt_tokens * 0.15 + usage.completion_tokens * 0.60) / 1e6
        assert entry.cost_usd == pytest.approx(standard / 2)
    assert len(read_reasoning_jsonl(tmp_path / "out" / "reasoning.jsonl")) == 20
    assert not _state(tmp_path).exists()


def test_an_interrupted_batch_is_resumed_not_paid_again(
    make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str, tmp_path: Path
) -> None:
    fake.batch_delay_s = 0.3
    submitted = generate(make_cfg("n=20", BATCH, "generator.batch_wait=false"))
    state = json.loads(_state(tmp_path).read_text(encoding="utf-8"))
    assert state["batch_id"] and submitted["batches"][0]["status"] != "completed"
    assert submitted["waiting"] == {"batch_pending": 20} and not submitted["complete"]

    # A crash between creating the batch and saving its id: the rerun must find it, not create another.
    state["batch_id"] = None
    _state(tmp_path).write_text(json.dumps(state), encoding="utf-8")
    resumed = generate(make_cfg("n=20", BATCH))
    assert resumed["complete"] and resumed["generated"] == 20
    assert fake.paths["/v1/files"] == 1 and fake.paths["/v1/batches"] == 1  # one upload, one batch created
    assert not _state(tmp_path).exists()
    assert generate(make_cfg("n=20", BATCH))["requests"] == 0 and fake.paths["/v1/batches"] == 1


def test_batch_error_lines_are_kept_apart_by_kind(
    make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str, tmp_path: Path
) -> None:
    fake.fault_for_text = {"테스트 댓글 t3번": "500", "테스트 댓글 t5번": "truncate"}
    summary = generate(make_cfg("n=null", BATCH))
    assert summary["failed"] == {"batch_server_error": 1, "truncated": 1}

    fake.fault_for_text = {}
    online = generate(make_cfg("n=null"))  # the transient failure is retried, the truncation is not
    assert online["requests"] == 1 and fake.chat_texts()[0].startswith("테스트 댓글 t3번")
    assert online["failed"] == {"truncated": 1}


def test_batch_respects_the_budget_by_submitting_only_what_fits(
    make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str
) -> None:
    summary = generate(make_cfg("n=30", BATCH, "max_cost_usd=0.002"))
    assert 0 < summary["generated"] < 30 and summary["not_started"]["budget"] == 30 - summary["generated"]
    assert summary["cost_usd"] <= 0.002
