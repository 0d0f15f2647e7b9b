"""Every config composes, every ``_target_`` accepts its keys, and typed schemas catch typos."""

import inspect
from pathlib import Path

import pytest
from conftest import CONF_DIR
from hydra.utils import get_class, get_method
from omegaconf import OmegaConf

from emoreason.config import ConfigError, TrainConfig, validate

PRIMARY = {"train", "evaluate", "generate", "plan_memory"}
NOT_TRAIN_GROUPS = {"hydra", "paths", "generator", "prompt", "launcher", "sweep"}


def group_options():
    for path in sorted(CONF_DIR.glob("*/*.yaml")):
        group = path.parent.name
        if group not in NOT_TRAIN_GROUPS:
            yield group, path.stem


@pytest.mark.parametrize(("group", "option"), list(group_options()))
def test_every_train_option_composes_and_validates(compose_train, group, option):
    cfg = compose_train(f"{group}={option}")
    validate(cfg, TrainConfig)


def _targets(node, where):
    if isinstance(node, dict):
        if "_target_" in node:
            yield where, node
        for key, value in node.items():
            yield from _targets(value, f"{where}.{key}")


def _accepts(target: str, keys: set[str]) -> set[str]:
    try:
        obj = get_class(target)
        fn = obj.__init__
    except (ImportError, ValueError):
        fn = get_method(target)
    params = inspect.signature(fn).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return set()
    return keys - set(params)


@pytest.mark.parametrize("path", sorted(CONF_DIR.rglob("*.yaml")), ids=lambda p: str(p.relative_to(CONF_DIR)))
def test_every_target_accepts_its_keys(path: Path):
    raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    raw.pop("defaults", None)  # Hydra's composition directive, not a constructor argument
    for where, node in _targets(raw, path.stem):
        keys = {k for k in node if not k.startswith("_")}
        assert not _accepts(node["_target_"], keys), f"{path}:{where}: {node['_target_']} rejects keys"


def test_typos_and_wrong_types_fail_loudly(compose_train):
    cfg = compose_train()
    OmegaConf.set_struct(cfg, False)
    cfg.sead = 1
    with pytest.raises(ConfigError, match="sead"):
        validate(cfg, TrainConfig)
    cfg = compose_train("optim.lr=fast")
    with pytest.raises(ConfigError, match="lr"):
        validate(cfg, TrainConfig)
    cfg = compose_train("+data.loader.batchsize=8")
    with pytest.raises(ConfigError, match="batchsize"):
        validate(cfg, TrainConfig)


def test_seed_zero_is_kept(compose_train):
    assert validate(compose_train("seed=0"), TrainConfig).seed == 0
    assert validate(compose_train("seed=0"), TrainConfig).data.source.seed == 0


def test_redact_hides_credentials_but_keeps_tokenizer_settings():
    from emoreason.config import redact

    cleaned = redact({"api_key": "sk-1", "model": {"tokenizer_kind": "bpe", "max_tokens": 5, "hf_token": "x"},
                      "items": [{"password": "p"}]})  # fmt: skip
    assert cleaned == {"api_key": "<redacted>", "model": {"tokenizer_kind": "bpe", "max_tokens": 5,
                       "hf_token": "<redacted>"}, "items": [{"password": "<redacted>"}]}  # fmt: skip
