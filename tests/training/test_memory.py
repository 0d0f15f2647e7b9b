"""The planner's figures for Polyglot-ko-5.8b equal hand computation from the published architecture."""

import subprocess
import sys
from pathlib import Path

import pytest
from peft import LoraConfig, get_peft_model
from transformers import GPTNeoXForCausalLM

from emoreason.models.architectures import POLYGLOT_KO_5_8B, polyglot_ko_5_8b_config
from emoreason.training.memory import (
    GIB,
    ModelShape,
    ZeroSetup,
    model_shape,
    plan,
    trainable_params,
)
from tests.support.project import lora_settings

REPO = Path(__file__).resolve().parents[2]
KEYS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
V, H, LAYERS, HEADS, FFN = (POLYGLOT_KO_5_8B[k] for k in KEYS)
# Two untied V×h embeddings; per layer two LayerNorms (4h), QKV (3h² + 3h), output (h² + h),
# h→4h (h·i + i), 4h→h (i·h + h); a final LayerNorm (2h).
N = 2 * V * H + LAYERS * (4 * H * H + 2 * H * FFN + 9 * H + FFN) + 2 * H
LORA_R8 = LAYERS * 8 * (4 * H + 2 * H + (H + FFN) + (FFN + H))  # r·(in + out) on QKV, dense, fc1, fc2
TARGETS = tuple(lora_settings().target_modules)  # conf/lora/default.yaml: QKV, dense, fc1, fc2
R8 = {"lora_r": 8, "lora_targets": TARGETS}
NO_GPU = (0, None)
HOST = 2**50


def test_hand_count_is_the_published_parameter_count():
    assert N == 5_885_059_072  # EleutherAI's model card


def test_planner_counts_polyglot_like_the_hand_formula():
    shape = model_shape("polyglot5.8b")
    assert shape.total_params == N
    assert shape.largest_layer_params == V * H  # an embedding: what ZeRO-3 gathers at most at once
    assert trainable_params(shape, "lora", 8, TARGETS) == LORA_R8 == 14_680_064


def test_lora_count_matches_peft_and_never_adapts_the_lm_head():
    config = polyglot_ko_5_8b_config(
        vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64
    )
    model = GPTNeoXForCausalLM(config)
    shape = ModelShape.from_module("tiny", model, logits_per_token=97)
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=list(TARGETS)))
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    assert trainable_params(shape, "lora", 4, TARGETS) == trainable
    assert not any("embed_out" in n for n, p in peft_model.named_parameters() if p.requires_grad)


def test_a_lora_plan_takes_no_rank_or_targets_it_was_not_given():
    """The planner once assumed r=8 where conf/lora/default.yaml trains r=16: it now assumes nothing."""
    with pytest.raises(ValueError, match="lora_r >= 1 and lora_targets"):
        plan("polyglot5.8b", "lora", ZeroSetup(), 1, visible_gpus=NO_GPU, host_bytes=HOST)


def test_ddp_keeps_fp32_weights_and_adam_for_the_trainable_part():
    p = plan("polyglot5.8b", "lora", ZeroSetup(), 1, visible_gpus=NO_GPU, host_bytes=HOST, **R8)
    assert (p.gpu.parameters, p.gpu.gradients, p.gpu.optimizer) == (4 * N, 4 * LORA_R8, 8 * LORA_R8)
    assert p.cpu_per_node.total == 0


def test_zero2_full_finetune_on_8_gpus_equals_hand_and_deepspeed():
    p = plan("polyglot5.8b", "full", ZeroSetup(stage=2), 8, visible_gpus=NO_GPU, host_bytes=HOST)
    assert (p.gpu.parameters, p.gpu.gradients, p.gpu.optimizer) == (2 * N, 6 * N // 8, 12 * N // 8)
    assert p.deepspeed_estimate is not None
    states = p.gpu.parameters + p.gpu.gradients + p.gpu.optimizer
    assert states == p.deepspeed_estimate.gpu_per_device == 2 * N + 18 * N // 8


def test_zero3_full_finetune_on_2_nodes_equals_hand_and_deepspeed():
    p = plan("polyglot5.8b", "full", ZeroSetup(stage=3), 8, 2, visible_gpus=NO_GPU, host_bytes=HOST)
    ranks = 16
    assert (p.gpu.parameters, p.gpu.gradients, p.gpu.optimizer) == (
        2 * N // ranks + 4 * V * H,
        4 * N // ranks,
        12 * N // ranks,
    )
    assert p.deepspeed_estimate is not None
    assert p.gpu.total - p.gpu.activations == pytest.approx(p.deepspeed_estimate.gpu_per_device, abs=2)


def test_zero2_offload_moves_fp32_gradients_and_adam_to_the_host():
    zero = ZeroSetup(stage=2, offload_optimizer=True)
    p = plan("polyglot5.8b", "full", zero, 4, visible_gpus=NO_GPU, host_bytes=HOST)
    assert (p.gpu.parameters, p.gpu.gradients, p.gpu.optimizer) == (2 * N, 0, 0)
    assert p.deepspeed_estimate is not None
    assert p.gpu.parameters == p.deepspeed_estimate.gpu_per_device
    assert p.cpu_per_node.total == 4 * (4 * N // 4 + 12 * N // 4)  # four ranks' shards on one node


def test_zero3_offload_leaves_one_layer_on_the_gpu_and_18_bytes_per_parameter_on_the_host():
    zero = ZeroSetup(stage=3, offload_optimizer=True, offload_params=True)
    p = plan("polyglot5.8b", "full", zero, 1, visible_gpus=NO_GPU, host_bytes=HOST)
    assert (p.gpu.parameters, p.gpu.gradients, p.gpu.optimizer) == (4 * V * H, 0, 0)
    assert p.cpu_per_node.total == 2 * N + 4 * N + 12 * N
    assert p.deepspeed_estimate is not None
    assert p.deepspeed_estimate.cpu_per_node == int(18 * N * 1.5)  # DeepSpeed adds a 1.5 buffer factor


@pytest.mark.parametrize("checkpointing", [False, True])
def test_activations_follow_korthikanti_plus_logits(checkpointing):
    b, s = 16, 128
    layer = s * b * H * 34 + 5 * HEADS * s * s * b
    layers = LAYERS * 2 * s * b * H + layer if checkpointing else LAYERS * layer
    logits = s * b * V * 6
    p = plan(
        "polyglot5.8b",
        "full",
        ZeroSetup(stage=2),
        1,
        micro_batch_size=b,
        seq_len=s,
        gradient_checkpointing=checkpointing,
        visible_gpus=NO_GPU,
        host_bytes=HOST,
    )
    assert p.gpu.activations == layers + logits


def test_lora_dropout_keeps_a_copy_of_every_adapted_input():
    b, s = 4, 64
    kwargs = {"micro_batch_size": b, "seq_len": s, "visible_gpus": NO_GPU, "host_bytes": HOST}
    without = plan("polyglot5.8b", "lora", ZeroSetup(stage=2), 1, lora_dropout=0.0, **kwargs, **R8)
    with_dropout = plan("polyglot5.8b", "lora", ZeroSetup(stage=2), 1, lora_dropout=0.1, **kwargs, **R8)
    inputs_per_layer = H + H + H + FFN  # QKV, dense, h→4h, 4h→h
    assert with_dropout.gpu.activations - without.gpu.activations == 2 * s * b * inputs_per_layer * LAYERS


def test_full_finetune_under_ddp_does_not_fit_an_80gb_gpu_and_says_so():
    p = plan("polyglot5.8b", "full", ZeroSetup(), 1, visible_gpus=(1, 80 * GIB), host_bytes=HOST)
    assert p.fits is False
    assert any("WILL NOT FIT" in w for w in p.warnings)
    assert "fits: NO" in p.render()


def test_lora_zero2_fits_an_80gb_gpu_without_warnings():
    p = plan("polyglot5.8b", "lora", ZeroSetup(stage=2), 1, visible_gpus=(1, 80 * GIB), host_bytes=HOST, **R8)
    assert p.fits is True
    assert p.warnings == ()


def test_missing_gpus_and_host_ram_are_warned():
    zero = ZeroSetup(stage=3, offload_optimizer=True, offload_params=True)
    p = plan("polyglot5.8b", "full", zero, 8, visible_gpus=(2, 80 * GIB), host_bytes=64 * GIB)
    assert any("8 GPUs per node requested but 2 visible" in w for w in p.warnings)
    assert any("host RAM" in w for w in p.warnings)


@pytest.mark.parametrize(
    "kwargs",
    [{"stage": 1}, {"stage": 0, "offload_optimizer": True}, {"stage": 2, "offload_params": True}],
)
def test_impossible_zero_setups_are_refused(kwargs):
    with pytest.raises(ValueError):
        ZeroSetup(**kwargs)


def test_plan_memory_command_prints_the_verdict_for_the_chosen_strategy():
    cmd = [
        sys.executable,
        "plan_memory.py",
        "model=polyglot5.8b",
        "lora=none",
        "method=label_only",
        "trainer=gpu",
        "strategy=ddp",
        "gpu_memory_gib=80",
    ]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "DDP/single" in out
    assert "WILL NOT FIT" in out
    assert f"{N:,} trainable" in out


def test_kcelectra_classifier_counts_like_its_architecture():
    e = h = 768
    embeddings = 54343 * e + 512 * e + 2 * e + 2 * e  # words, positions, token types, LayerNorm
    layers = 12 * (4 * h * h + 2 * h * 3072 + 9 * h + 3072)
    head = (h * h + h) + (h * 44 + 44)  # ELECTRA's classification head: dense, then 44 labels
    assert model_shape("kcelectra").total_params == embeddings + layers + head
