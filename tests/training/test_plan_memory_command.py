"""plan_memory.py plans the run train.py would start with the same overrides (conf/plan_memory.yaml)."""

from __future__ import annotations

import importlib.util

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException, InstantiationException

from emoreason.cli import is_user_error
from emoreason.config import ConfigError
from emoreason.training.memory import backbone_shape, trainable_params
from tests.support.project import CONF_DIR, REPO

spec = importlib.util.spec_from_file_location("plan_memory_entry", REPO / "plan_memory.py")
plan_memory = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plan_memory)


def compose_plan(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="plan_memory", overrides=list(overrides))


def test_polyglot_is_planned_as_train_py_trains_it_lora_r16_and_strategy_auto():
    cfg = compose_plan("model=polyglot5.8b", "trainer=gpu")
    result = plan_memory.plan_of(cfg)
    shape = backbone_shape(dict(cfg.model), generative=False)
    assert cfg.lora.r == 16 and cfg.strategy._args_ == ["auto"]  # what train.py composes
    assert result.scope == "lora" and result.zero.stage == 0
    targets = ("query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h")
    assert tuple(cfg.lora.target_modules) == targets
    assert result.trainable_params == trainable_params(shape, "lora", 16, targets)
    assert result.trainable_params != trainable_params(shape, "lora", 8, targets)
    assert result.gradient_checkpointing  # conf/model/polyglot5.8b.yaml turns it on
    assert (result.micro_batch_size, result.seq_len) == (
        cfg.data.loader.batch_size,
        cfg.data.loader.max_length,
    )


def test_lora_none_strategy_devices_and_a_generative_method_reach_the_plan():
    overrides = ["model=polyglot5.8b", "lora=none", "method=label_only", "trainer=multi_gpu"]
    cfg = compose_plan(*overrides, "trainer.devices=8", "strategy=deepspeed_zero3", "gpu_memory_gib=80")
    result = plan_memory.plan_of(cfg)
    assert result.scope == "full" and result.zero.stage == 3 and result.devices == 8
    assert result.trainable_params == result.total_params
    assert result.gpu_capacity == 80 * 1024**3
    lm = backbone_shape(dict(cfg.model), generative=True)
    assert result.total_params == lm.total_params and lm.logits_per_token == 30080


def test_lora_overrides_reach_the_plan_as_they_reach_training():
    cfg = compose_plan("model=polyglot5.8b", "trainer=gpu", "lora.r=4", "lora.target_modules=[dense]")
    shape = backbone_shape(dict(cfg.model), generative=False)
    assert plan_memory.plan_of(cfg).trainable_params == trainable_params(shape, "lora", 4, ("dense",))
    with pytest.raises(InstantiationException, match="rank") as refused:  # as train.py refuses it
        plan_memory.plan_of(compose_plan("model=polyglot5.8b", "trainer=gpu", "+lora.rank=4"))
    assert is_user_error(refused.value)


def test_the_default_plan_is_train_pys_default_model():
    result = plan_memory.plan_of(compose_plan())
    assert result.model == "tiny-electra" and result.scope == "full"


def test_a_group_given_twice_is_refused_not_ignored():
    with pytest.raises(ConfigCompositionException, match="model appears more than once"):
        compose_plan("+model=tiny_electra")


def test_deepspeed_on_cpu_precision_names_the_way_out():
    with pytest.raises(ConfigError, match="trainer=gpu"):
        plan_memory.plan_of(compose_plan("model=polyglot5.8b", "strategy=deepspeed_zero2"))
