"""Strategy configs compose, build the Lightning object they promise, and obey Lightning's DeepSpeed rules."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from lightning.pytorch.strategies import DDPStrategy, DeepSpeedStrategy
from omegaconf import DictConfig, OmegaConf

from emoreason.config import ConfigError
from emoreason.training.strategies import (
    LIGHTNING_OWNED_KEYS,
    ZeroSetup,
    build_strategy,
    validate_deepspeed_config,
    zero_of_deepspeed_config,
    zero_setup,
)

CONF = Path(__file__).resolve().parents[2] / "conf"

EXPECTED = {
    "auto": ("auto", ZeroSetup()),
    "ddp": (DDPStrategy, ZeroSetup()),
    "deepspeed_zero2": (DeepSpeedStrategy, ZeroSetup(stage=2)),
    "deepspeed_zero2_offload": (DeepSpeedStrategy, ZeroSetup(stage=2, offload_optimizer=True)),
    "deepspeed_zero3": (DeepSpeedStrategy, ZeroSetup(stage=3)),
    "deepspeed_zero3_offload": (
        DeepSpeedStrategy,
        ZeroSetup(stage=3, offload_optimizer=True, offload_params=True),
    ),
}


def compose_train(*overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


def test_every_shipped_strategy_file_is_covered():
    assert {p.stem for p in (CONF / "strategy").glob("*.yaml")} == set(EXPECTED)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_strategy_composes_and_builds(name):
    expected, setup = EXPECTED[name]
    cfg = compose_train(f"strategy={name}")
    built = build_strategy(cfg.strategy)
    if isinstance(expected, str):
        assert built == expected
    else:
        assert type(built) is expected
    assert zero_setup(cfg.strategy) == setup


@pytest.mark.parametrize("name", [n for n, (kind, _) in EXPECTED.items() if kind is DeepSpeedStrategy])
def test_deepspeed_strategy_gets_a_plain_dict_lightning_can_fill(name):
    strategy = build_strategy(compose_train(f"strategy={name}").strategy)
    config = strategy.config
    assert type(config) is dict  # Lightning asserts a dict; a DictConfig would fail at fit
    assert not LIGHTNING_OWNED_KEYS.keys() & config.keys()
    assert "auto" not in repr(config)
    assert strategy.zero_stage_3 == (EXPECTED[name][1].stage == 3)
    assert zero_of_deepspeed_config(config) == EXPECTED[name][1]  # what the memory plan at start reads


def test_default_train_config_uses_the_auto_strategy():
    assert build_strategy(compose_train().strategy) == "auto"


VALID = {"zero_optimization": {"stage": 2}}


@pytest.mark.parametrize("key", list(LIGHTNING_OWNED_KEYS))
def test_lightning_owned_keys_are_rejected_by_name(key):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        validate_deepspeed_config({**VALID, key: 1})


def test_auto_values_are_rejected_with_their_path():
    config = {"zero_optimization": {"stage": 3, "stage3_prefetch_bucket_size": "auto"}}
    with pytest.raises(ConfigError, match=r"'zero_optimization\.stage3_prefetch_bucket_size'"):
        validate_deepspeed_config(config)


def test_param_offload_needs_stage_3():
    config = {"zero_optimization": {"stage": 2, "offload_param": {"device": "cpu"}}}
    with pytest.raises(ConfigError, match="offload_param"):
        validate_deepspeed_config(config)


@pytest.mark.parametrize("zero", [{}, {"stage": 1}, {"stage": 0}])
def test_stage_must_be_given_and_be_2_or_3(zero):
    with pytest.raises(ConfigError, match="stage"):
        validate_deepspeed_config({"zero_optimization": zero})


def test_build_refuses_a_bad_deepspeed_config_before_building():
    cfg = compose_train("strategy=deepspeed_zero2", "+strategy.config.gradient_accumulation_steps=4")
    with pytest.raises(ConfigError, match="gradient_accumulation_steps"):
        build_strategy(cfg.strategy)


@pytest.mark.parametrize(("preset", "devices", "nodes"), [("multi_gpu", 8, 1), ("multi_node", 8, 2)])
def test_multi_gpu_presets_extend_the_default_trainer(preset, devices, nodes):
    default = compose_train().trainer
    trainer = compose_train(f"trainer={preset}").trainer
    assert (trainer.accelerator, trainer.devices, trainer.num_nodes) == ("gpu", devices, nodes)
    assert trainer.precision == "bf16-mixed"
    inherited = set(default) - {"accelerator", "devices", "precision"}
    assert all(OmegaConf.to_container(trainer)[k] == OmegaConf.to_container(default)[k] for k in inherited)


def test_slurm_launcher_asks_for_one_task_per_gpu_on_every_node():
    raw = OmegaConf.load(CONF / "launcher" / "slurm.yaml")
    assert {"override /hydra/launcher": "submitit_slurm"} in OmegaConf.to_container(raw.defaults)
    trainer = compose_train("trainer=multi_node", "trainer.num_nodes=4").trainer
    launcher = OmegaConf.merge({"trainer": trainer}, {"hydra": raw.hydra}).hydra.launcher
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (4, 8, 8)
