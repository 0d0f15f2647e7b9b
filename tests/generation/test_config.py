"""Config validation and the prompt: mistakes fail before any call, naming the key."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from emoreason.config import ConfigError
from emoreason.generation.config import ChatGPTConfig, Mode, PromptConfig, load_config
from emoreason.generation.prompt import PromptTemplate
from tests.support.project import CONF_DIR

MakeCfg = Callable[..., DictConfig]


def _edited(cfg: DictConfig, key: str, value: object) -> DictConfig:
    OmegaConf.set_struct(cfg, False)  # what a hand-edited YAML or a programmatic caller can produce
    OmegaConf.update(cfg, key, value, merge=False, force_add=True)
    return cfg


def test_defaults_are_the_documented_ones(make_cfg: MakeCfg) -> None:
    settings = load_config(make_cfg())
    generator = settings.generator
    assert isinstance(generator, ChatGPTConfig)
    assert (settings.n, generator.model, generator.mode) == (10_000, "gpt-4o-mini", Mode.online)
    assert generator.prices["gpt-4o-mini"].input == 0.15 and generator.prices["gpt-4o-mini"].output == 0.60


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("generator.concurency", 4, "generator.concurency: Key 'concurency' not in 'ChatGPTGenerator'"),
        ("generator.temperature", "warm", "generator.temperature: Value 'warm'"),
        ("generator.mode", "bulk", "generator.mode: Invalid value 'bulk', expected one of [online, batch]"),
        ("generator.max_tokens", 0, "generator.max_tokens must be a positive integer, got 0"),
        ("generator.prices.gpt-4o-mini.output", -1, "generator.prices.gpt-4o-mini.output must be ≥ 0"),
        ("generator.api_key", "sk-x", "read only from the OPENAI_API_KEY environment variable"),
        (
            "generator",
            {"name": "claude"},
            "generator.name must be one of ['cached', 'chatgpt'], got 'claude'",
        ),
        ("max_cost_usd", -5, "max_cost_usd must be positive"),
        (
            "data.source.split_scheme",
            "random",
            "data.source.split_scheme must be one of auto, official, val_holdout, got 'random'",
        ),
        ("data.source.holdout_size", 0, "data.source.holdout_size must be at least 1, got 0"),
        ("kote_dir", "/k", "kote_dir: renamed to data.source.root"),
        ("nn", 5, "nn: Key 'nn' not in 'GenerateConfig'"),
    ],
)
def test_bad_values_are_errors_naming_the_key(
    make_cfg: MakeCfg, key: str, value: object, message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(_edited(make_cfg(), key, value))


def test_the_kote_source_is_the_data_groups_and_kote_dir_still_finds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KOTE_DIR", str(tmp_path / "kote"))
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        generate_cfg = compose(config_name="generate", overrides=["output=x", "summary_path=null", "seed=3"])
        train_cfg = compose(config_name="train", overrides=["data=kote_plain", "seed=3"])
    source = load_config(generate_cfg).source
    assert source == instantiate(train_cfg.data.source)  # the split train.py draws, seed included
    assert (source.root, source.seed, source.split_scheme) == (str(tmp_path / "kote"), 3, "auto")


def test_the_cached_generator_requires_a_source(make_cfg: MakeCfg, tmp_path: Path) -> None:
    cfg = _edited(make_cfg(), "generator", {"name": "cached"})
    with pytest.raises(ConfigError, match=r"generator\.source: .*missing mandatory value: source"):
        load_config(cfg)


def test_the_prompt_template_must_use_exactly_text_and_labels() -> None:
    for user in ("댓글: {text}", "댓글: {text} {label}", "댓글: {text} {labels} {"):
        with pytest.raises(ConfigError, match=r"prompt\.user"):
            PromptTemplate.from_config(PromptConfig(version="v", system="s", user=user))
    ok = PromptTemplate.from_config(
        PromptConfig(version="v", system="{not a field}", user="{text}|{labels}|{{x}}")
    )
    assert ok.render("글", ("기쁨", "놀람")) == [
        {"role": "system", "content": "{not a field}"},
        {"role": "user", "content": "글|기쁨, 놀람|{x}"},
    ]


@pytest.mark.shared_data
def test_the_default_prompt_is_the_one_the_shared_sample_documents(
    make_cfg: MakeCfg, shared_reasoning_jsonl: Path
) -> None:
    documented = (shared_reasoning_jsonl.parent / "prompt.md").read_text(encoding="utf-8")
    system = documented.split("System:\n", 1)[1].split("\n\nUser:\n", 1)[0]
    user = documented.split("User:\n", 1)[1].replace('{labels, joined with ", "}', "{labels}").rstrip("\n")
    prompt = PromptTemplate.from_config(load_config(make_cfg()).prompt)
    assert (prompt.system, prompt.user) == (system, user)
