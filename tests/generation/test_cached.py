"""The cached generator: reasoning from an existing file, with every network connection made to fail."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from emoreason.data.reasoning import read_reasoning_jsonl
from emoreason.generation.cached import MissingReasoningError
from emoreason.generation.errors import GenerationError
from emoreason.generation.run import generate
from tests.support.fake_openai import FakeOpenAI
from tests.support.project import CONF_DIR

MakeCfg = Callable[..., DictConfig]


def _cached_cfg(tmp_path: Path, kote_dir: Path, source: Path, *overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(
            config_name="generate",
            overrides=[
                "generator=cached",
                f"generator.source={source}",
                f"data.source.root={kote_dir}",
                "data.source.split_scheme=val_holdout",
                "data.source.holdout_size=10",
                "data.source.download=false",
                "data.source.verify_checksums=false",
                f"output={tmp_path / 'reasoning.jsonl'}",
                f"summary_path={tmp_path / 'summary.json'}",
                "progress=false",
                *overrides,
            ],
        )


@pytest.mark.shared_data
def test_serves_the_shared_sample_offline(
    tmp_path: Path,
    kote_dir: Path,
    shared_reasoning_jsonl: Path,
    no_network: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    cfg = _cached_cfg(tmp_path, kote_dir, shared_reasoning_jsonl, "n=null", "generator.allow_missing=true")
    summary = generate(cfg)
    assert summary["completed"] == 1000 and summary["skipped_missing"] == 4000 and summary["requests"] == 0
    assert summary["complete"]  # allow_missing: skipping is what was asked for
    served = {r.id: r for r in read_reasoning_jsonl(tmp_path / "reasoning.jsonl")}
    assert served == {r.id: r for r in read_reasoning_jsonl(shared_reasoning_jsonl)}


@pytest.mark.shared_data
def test_misses_are_an_error_with_the_count_and_first_ids(
    tmp_path: Path, kote_dir: Path, shared_reasoning_jsonl: Path, no_network: None
) -> None:
    expected = r"^\d+ of 50 sampled comments have no reasoning .*first ids: \d+"
    with pytest.raises(MissingReasoningError, match=expected):
        generate(_cached_cfg(tmp_path, kote_dir, shared_reasoning_jsonl, "n=50"))
    assert not (tmp_path / "reasoning.jsonl").exists()


def test_serves_a_generation_cache_and_rejects_a_file_from_other_data(
    make_cfg: MakeCfg,
    fake: FakeOpenAI,
    api_key: str,
    tmp_path: Path,
    tiny_kote_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    generate(make_cfg("n=20"))
    generated = read_reasoning_jsonl(tmp_path / "out" / "reasoning.jsonl")
    calls = len(fake.chats)
    monkeypatch.delenv("OPENAI_API_KEY")
    summary = generate(_cached_cfg(tmp_path, tiny_kote_dir, tmp_path / "cache" / "cache.jsonl", "n=20"))
    assert summary["complete"] and summary["completed"] == 20 and len(fake.chats) == calls
    assert read_reasoning_jsonl(tmp_path / "reasoning.jsonl") == generated

    edited = [record.to_json() for record in generated]
    edited[0]["text"] += " (edited)"
    other = tmp_path / "other.jsonl"
    other.write_text("".join(json.dumps(o, ensure_ascii=False) + "\n" for o in edited), encoding="utf-8")
    with pytest.raises(GenerationError, match=rf"1 records in {other} disagree .*first: {edited[0]['id']}"):
        generate(_cached_cfg(tmp_path, tiny_kote_dir, other, "n=20"))
