"""``generate()`` as a whole: inputs never overwritten, unknown cost said so, a price hint that Hydra parses,
think blocks cut and counted."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from emoreason.config import ConfigError
from emoreason.data.reasoning import read_reasoning_jsonl
from emoreason.generation.config import load_config
from emoreason.generation.run import generate
from tests.support.fake_openai import FakeOpenAI
from tests.support.project import CONF_DIR

MakeCfg = Callable[..., DictConfig]


@pytest.mark.parametrize("model", ["gpt-4.1-mini", "llama3.1:8b", "qwen/qwen3 (a):8b=x,y"])
def test_the_price_hint_is_an_override_hydra_accepts(
    model: str, make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str
) -> None:
    with pytest.raises(ConfigError) as info:
        generate(make_cfg(f"generator.model={_escaped(model)}", "max_cost_usd=1"))
    override = re.search(r"add '(.+?)' with its USD", str(info.value))
    assert override is not None, str(info.value)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            config_name="generate",
            overrides=["output=x", "summary_path=null", override[1].replace("0.0", "0.25")],
        )
    price = load_config(cfg).generator.prices[model]
    assert (price.input, price.output) == (0.25, 0.25)
    assert fake.chats == []


def _escaped(value: str) -> str:
    return "".join(f"\\{c}" if c in "\\()[]{}:=, " else c for c in value)


def test_no_usage_makes_the_cost_unknown_not_zero(make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str) -> None:
    fake.usage_style = "none"
    summary = generate(make_cfg("n=20", "max_cost_usd=0.002"))
    assert summary["cost_usd"] is None and summary["calls_without_cost"] == summary["generated"] > 0
    assert summary["not_started"]["budget"] > 0  # each call counted at its worst case, so the cap holds
    assert summary["dataset_cost_usd"] is None


def test_think_blocks_are_stripped_and_counted(
    make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str, tmp_path: Path
) -> None:
    fake.inject("think", "think")
    summary = generate(make_cfg("n=6"))
    assert summary["complete"] and summary["think_blocks_stripped"] == 2
    records = read_reasoning_jsonl(tmp_path / "out" / "reasoning.jsonl")
    assert all("<think>" not in r.reasoning and "find the cue words" not in r.reasoning for r in records)


@pytest.mark.parametrize("link", [False, True])
def test_an_output_that_is_the_cached_source_is_refused_and_the_source_kept(
    link: bool, tmp_path: Path, tiny_kote_dir: Path, make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str
) -> None:
    generate(make_cfg("n=20"))
    source = tmp_path / "out" / "reasoning.jsonl"
    before = source.read_bytes()
    output = source
    if link:
        output = tmp_path / "alias.jsonl"
        os.symlink(source, output)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            config_name="generate",
            overrides=[
                "generator=cached",
                f"generator.source={source}",
                f"data.source.root={tiny_kote_dir}",
                "data.source.split_scheme=val_holdout",
                "data.source.holdout_size=10",
                "data.source.download=false",
                "n=5",
                f"output={output}",
                "summary_path=null",
                "progress=false",
            ],
        )
    with pytest.raises(ConfigError, match=r"^output: .* is generator\.source; writing it would destroy"):
        generate(cfg)
    assert source.read_bytes() == before


@pytest.mark.parametrize("target", ["cache", "state", "kote"])
def test_an_output_that_is_the_runs_cache_or_an_input_is_refused(
    target: str, make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str, tmp_path: Path, tiny_kote_dir: Path
) -> None:
    path = {
        "cache": tmp_path / "cache" / "cache.jsonl",
        "state": tmp_path / "cache" / "cache.jsonl.batch.json",
        "kote": tiny_kote_dir / "val.tsv",
    }[target]
    key = "summary_path" if target == "state" else "output"
    with pytest.raises(ConfigError, match=rf"^{key}: "):
        generate(make_cfg("n=5", f"{key}={path}"))
    assert fake.chats == []


def test_the_dataset_card_may_overwrite_neither_the_summary_nor_an_input(
    make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str, tmp_path: Path
) -> None:
    """summary_path=<the output's card> exited 0, the summary replaced by the card written after it."""
    card = tmp_path / "out" / "reasoning.card.md"  # output's card, as base_overrides sets output
    with pytest.raises(
        ConfigError, match=r"^summary_path: .* is also output's dataset card reasoning\.card\.md"
    ):
        generate(make_cfg("n=5", f"summary_path={card}"))
    cache = tmp_path / "cache" / "kept.card.md"
    with pytest.raises(
        ConfigError, match=rf"^output: its dataset card {cache} is cache_path; writing it would destroy"
    ):
        generate(make_cfg("n=5", f"cache_path={cache}", f"output={cache.with_name('kept.jsonl')}"))
    assert fake.chats == []
