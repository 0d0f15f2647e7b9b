"""Every config composes, every ``_target_`` accepts its keys, and typed schemas catch typos."""

import inspect
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import get_class, get_method, instantiate
from omegaconf import OmegaConf

from emoreason.config import ConfigError, TrainConfig, validate
from emoreason.training.optimizers import configure
from tests.support.project import CONF_DIR

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


@pytest.mark.parametrize("path", sorted((CONF_DIR / "generator").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_generator_config_builds_the_generator_its_target_names(path: Path, tmp_path: Path):
    from emoreason.generation.config import load_config
    from emoreason.generation.generator import Generator

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            config_name="generate",
            overrides=[f"generator={path.stem}", "output=x", "summary_path=null", "cache_path=c"],
        )
    OmegaConf.set_struct(cfg, False)
    if OmegaConf.is_missing(cfg.generator, "source"):  # the cached generator's one required key
        cfg.generator.source = str(tmp_path / "reasoning.jsonl")
    generator = load_config(cfg).generator
    assert isinstance(generator, Generator) and isinstance(generator, get_class(cfg.generator._target_))
    assert generator.name == path.stem


def test_typos_and_wrong_types_fail_loudly(compose_train):
    cfg = compose_train()
    OmegaConf.set_struct(cfg, False)
    cfg.sead = 1
    with pytest.raises(ConfigError, match="sead"):
        validate(cfg, TrainConfig)
    cfg = compose_train("optim.lr=fast")
    with pytest.raises(ConfigError, match=r"^optim\.lr='fast' is not a float"):
        validate(cfg, TrainConfig)
    cfg = compose_train("+data.loader.batchsize=8")
    with pytest.raises(ConfigError, match="batchsize"):
        validate(cfg, TrainConfig)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "+optim.lrr=1",
            r"^optim\.lrr: emoreason\.training\.optimizers\.adamw takes no such argument; "
            r"it takes lr, weight_decay, betas, eps, fused$",
        ),
        ("optim.betas=[0.9,high]", r"^optim\.betas=\[0\.9, 'high'\] is not a tuple\[float, float\]"),
        ("scheduler.warmup_ratio=soon", r"^scheduler\.warmup_ratio='soon' is not a float"),
        ("+optim.warmup_ratio=0.2", r"^optim\.warmup_ratio: moved to scheduler\.warmup_ratio$"),
        ("optim._target_=torch.optim.Adamm", r"^optim\._target_=torch\.optim\.Adamm: cannot be imported"),
        (
            "method.inference=gnerate",
            r"^method\.inference='gnerate' is not one of generate, score \(the inference argument of "
            r"emoreason\.models\.methods\.generative\.LabelOnlyMethod\)$",
        ),
        (
            "+model.foo=1",
            r"^model\.foo: emoreason\.models\.backbones\.EmbeddedBackbone takes no such argument",
        ),
    ],
)
def test_a_target_is_checked_against_its_signature_at_start(compose_train, override, message):
    """Instantiating a ``_partial_`` node checks nothing (training would call it minutes in), and a method's
    dataclass stores any value (a misspelt ``inference`` would fail at the first evaluation)."""
    method = ("model=tiny_neox", "method=label_only") if override.startswith("method.") else ()
    with pytest.raises(ConfigError, match=message):
        validate(compose_train(*method, override), TrainConfig)


def test_the_optimizer_keys_users_type_still_reach_it(compose_train):
    cfg = validate(
        compose_train("optim.lr=1e-4", "optim.weight_decay=0.05", "scheduler.warmup_ratio=0.2"), TrainConfig
    )
    optimizer, scheduler = instantiate(cfg.optim), instantiate(cfg.scheduler)
    assert optimizer.keywords["lr"] == 1e-4 and optimizer.keywords["weight_decay"] == 0.05
    assert scheduler.keywords["warmup_ratio"] == 0.2


@pytest.mark.parametrize(
    "path",
    sorted([*CONF_DIR.glob("optim/*.yaml"), *CONF_DIR.glob("scheduler/*.yaml")]),
    ids=lambda p: f"{p.parent.name}/{p.stem}",
)
def test_every_optimizer_and_schedule_builds_for_a_model(compose_train, path):
    cfg = validate(compose_train(f"{path.parent.name}={path.stem}"), TrainConfig)
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.LayerNorm(3))
    built = configure(model, instantiate(cfg.optim), instantiate(cfg.scheduler), total_steps=10)
    assert isinstance(built["optimizer"], torch.optim.Optimizer)
    assert built["lr_scheduler"]["scheduler"].optimizer is built["optimizer"]


def test_the_classifier_pools_the_mean_except_in_the_papers_kcelectra_recipe(compose_train):
    assert instantiate(compose_train().method).pooling == "mean"
    assert instantiate(compose_train("method.pooling=token").method).pooling == "token"
    assert instantiate(compose_train("experiment=tiny_kcelectra_plain").method).pooling == "token"
    paper = compose_train("experiment=kcelectra_plain")
    method = instantiate(paper.method)
    assert method.pooling == "token" and paper.model.name_or_path == "beomi/KcELECTRA-base-v2022"
    assert method.bias_init == "uniform" and instantiate(compose_train().method).bias_init == "prior"


def test_seed_zero_is_kept(compose_train):
    assert validate(compose_train("seed=0"), TrainConfig).seed == 0
    assert validate(compose_train("seed=0"), TrainConfig).data.source.seed == 0


def test_redact_hides_credentials_but_keeps_tokenizer_settings():
    from emoreason.config import redact

    cleaned = redact(
        {
            "api_key": "sk-1",
            "model": {"tokenizer_kind": "bpe", "max_tokens": 5, "hf_token": "x"},
            "items": [{"password": "p"}],
        }
    )
    assert cleaned == {
        "api_key": "<redacted>",
        "model": {"tokenizer_kind": "bpe", "max_tokens": 5, "hf_token": "<redacted>"},
        "items": [{"password": "<redacted>"}],
    }
