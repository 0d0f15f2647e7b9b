"""The memory plan printed when training starts is read off the live network, strategy and Trainer."""

import logging
from types import SimpleNamespace

import pytest
from hydra import compose, initialize_config_dir
from lightning.pytorch.accelerators import CPUAccelerator, CUDAAccelerator
from transformers import GPTNeoXForCausalLM

from emoreason.labels import NUM_LABELS
from emoreason.models.architectures import polyglot_ko_5_8b_config
from emoreason.models.heads import DecoderClassifier
from emoreason.models.lora import LoraSettings
from emoreason.training import callbacks
from emoreason.training.callbacks import MemoryPlanPrinter
from emoreason.training.memory import ModelShape, plan, plan_network
from emoreason.training.strategies import build_strategy
from tests.support.project import CONF_DIR

V, H, FFN = 97, 32, 64
TARGETS = ("dense", "query_key_value")
NO_GPU = (0, None)
HOST = 2**50


def tiny_causal_lm() -> GPTNeoXForCausalLM:
    config = polyglot_ko_5_8b_config(
        vocab_size=V, hidden_size=H, num_hidden_layers=2, num_attention_heads=4, intermediate_size=FFN
    )
    return GPTNeoXForCausalLM(config)


def with_adapters(network: GPTNeoXForCausalLM, r: int = 4) -> GPTNeoXForCausalLM:
    return LoraSettings(r=r, alpha=8, dropout=0.1, target_modules=list(TARGETS)).inject(network)


def counts(network):
    params = list(network.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def test_a_lora_causal_lm_is_planned_like_the_same_model_planned_by_name():
    plain = tiny_causal_lm()
    by_formula = plan(
        ModelShape.from_module("tiny", plain, logits_per_token=V),
        "lora",
        micro_batch_size=4,
        seq_len=16,
        lora_r=4,
        lora_dropout=0.1,
        lora_targets=TARGETS,
        visible_gpus=NO_GPU,
        host_bytes=HOST,
    )
    live_network = with_adapters(tiny_causal_lm())
    live = plan_network(live_network, micro_batch_size=4, seq_len=16, visible_gpus=NO_GPU, host_bytes=HOST)
    total, trainable = counts(live_network)
    assert live.scope == "lora" and (live.total_params, live.trainable_params) == (total, trainable)
    assert trainable == by_formula.trainable_params  # adapters only: r·(in + out) per adapted linear
    assert total == by_formula.total_params + trainable  # the adapters add to N
    assert live.gpu.activations == by_formula.gpu.activations  # vocabulary logits + LoRA dropout inputs
    assert (live.gpu.gradients, live.gpu.optimizer) == (by_formula.gpu.gradients, by_formula.gpu.optimizer)


def test_adapters_are_not_listed_as_linears_and_wrapped_layers_keep_their_names():
    plain = ModelShape.from_module("x", tiny_causal_lm(), logits_per_token=V)
    adapted = ModelShape.from_module("x", with_adapters(tiny_causal_lm()), logits_per_token=V)
    assert adapted.linears == plain.linears


def test_a_classifier_head_trains_and_no_vocabulary_logits_are_counted():
    lm_plan = plan_network(
        with_adapters(tiny_causal_lm()), micro_batch_size=4, seq_len=16, visible_gpus=NO_GPU, host_bytes=HOST
    )
    classifier = DecoderClassifier(with_adapters(tiny_causal_lm()), NUM_LABELS)
    classifier_plan = plan_network(
        classifier, micro_batch_size=4, seq_len=16, visible_gpus=NO_GPU, host_bytes=HOST
    )
    head = H * NUM_LABELS + NUM_LABELS
    assert classifier_plan.trainable_params == lm_plan.trainable_params + head == counts(classifier)[1]
    assert lm_plan.gpu.activations - classifier_plan.gpu.activations == 16 * 4 * V * (2 + 4)


def test_gradient_checkpointing_is_read_off_the_network():
    network = tiny_causal_lm()
    kwargs = {"micro_batch_size": 4, "seq_len": 16, "visible_gpus": NO_GPU, "host_bytes": HOST}
    before = plan_network(network, **kwargs)
    network.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    after = plan_network(network, **kwargs)
    assert (before.gradient_checkpointing, after.gradient_checkpointing) == (False, True)
    assert after.gpu.activations < before.gpu.activations
    assert before.scope == "full" and before.trainable_params == before.total_params


def fake_trainer(strategy="auto", **overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"strategy={strategy}"])
    fields = {
        "is_global_zero": True,
        "precision": "bf16-mixed",
        "strategy": build_strategy(cfg.strategy),
        "num_devices": 1,
        "num_nodes": 1,
        "accelerator": CPUAccelerator(),
    }
    return SimpleNamespace(**(fields | overrides))


def plan_logged(trainer, caplog, network=None):
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="emoreason"):
        MemoryPlanPrinter(micro_batch_size=4, seq_len=64).setup(trainer, network or tiny_causal_lm(), "fit")
    return caplog.records


def test_the_strategy_devices_and_nodes_come_from_the_trainer(caplog):
    trainer = fake_trainer("deepspeed_zero3_offload", num_devices=8, num_nodes=2)
    (record,) = plan_logged(trainer, caplog)
    assert record.levelno == logging.INFO
    assert "ZeRO-3 + offload(optimizer, params), 8 GPU(s) x 2 node(s), micro-batch 4 x 64 tokens" in (
        record.getMessage()
    )
    assert "DeepSpeed estimator" in record.getMessage()  # a full fine-tune under ZeRO


def test_only_rank_zero_prints(caplog):
    assert plan_logged(fake_trainer(is_global_zero=False), caplog) == []


@pytest.mark.parametrize(("strategy", "precision"), [("auto", "bf16-true"), ("deepspeed_zero2", "32-true")])
def test_precisions_the_planner_does_not_model_are_said_so(caplog, strategy, precision):
    (record,) = plan_logged(fake_trainer(strategy, precision=precision), caplog)
    assert f"not modelled for precision {precision}" in record.getMessage()


def test_a_plan_that_does_not_fit_the_visible_gpu_is_a_warning(caplog, monkeypatch):
    monkeypatch.setattr(callbacks, "visible_gpu_memory", lambda: (1, 2**20))
    (record,) = plan_logged(fake_trainer(accelerator=CUDAAccelerator()), caplog)
    assert record.levelno == logging.WARNING
    assert "WILL NOT FIT" in record.getMessage() and "visible GPU: 0.00 GiB; fits: NO" in record.getMessage()


def test_on_cpu_the_gpu_fit_is_not_checked(caplog):
    (record,) = plan_logged(fake_trainer(precision="32-true"), caplog)
    assert record.levelno == logging.INFO and "no GPU visible: fit not checked" in record.getMessage()
