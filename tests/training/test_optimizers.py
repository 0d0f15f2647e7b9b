"""conf/optim and conf/scheduler as partial ``_target_``s: fused AdamW, undecayed biases and norms, the
warmup schedule, and stored configs from before they were targets."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch import nn

from emoreason.components import load_checkpoint_parts
from emoreason.evaluate import evaluate
from emoreason.train import train
from emoreason.training.optimizers import (
    adamw,
    configure,
    linear_warmup,
    parameter_groups,
    upgrade_stored_optim,
)
from tests.support.project import CONF_DIR, SMALL_RUN

BEFORE_TARGETS = {"lr": 5e-4, "weight_decay": 0.01, "warmup_ratio": 0.1, "betas": [0.9, 0.999], "eps": 1e-8}
"""``optim`` as every checkpoint and sweep ``config.yaml`` stored it before the optimizer became a target."""


def test_adamw_is_fused_on_cpu_and_steps_as_the_default_does():
    torch.manual_seed(0)
    weights = [nn.Parameter(torch.randn(4, 3)), nn.Parameter(torch.randn(3))]
    copies = [nn.Parameter(w.detach().clone()) for w in weights]
    fused = adamw([{"params": weights}], lr=0.1)
    plain = torch.optim.AdamW(copies, lr=0.1, weight_decay=0.01)
    assert fused.param_groups[0]["fused"] is True and plain.param_groups[0]["fused"] is None
    for _ in range(3):
        for w, c in zip(weights, copies, strict=True):
            w.grad = torch.full_like(w, 0.5) + w.detach()
            c.grad = torch.full_like(c, 0.5) + c.detach()
        fused.step()
        plain.step()
    assert all(torch.allclose(w, c, atol=1e-6) for w, c in zip(weights, copies, strict=True))


def test_adamw_falls_back_where_the_device_has_no_fused_kernel():
    on_meta = nn.Parameter(torch.empty(2, 2, device="meta"))
    assert adamw([on_meta]).param_groups[0]["fused"] is None


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)
        self.frozen = nn.Linear(4, 4).requires_grad_(False)


def test_biases_and_norms_are_not_decayed_and_frozen_weights_not_optimized():
    model = Block()
    optimizer = functools.partial(adamw, lr=0.1, weight_decay=0.05)
    built = configure(model, optimizer, linear_warmup, total_steps=10)["optimizer"]
    decayed, undecayed = built.param_groups
    assert decayed["params"] == [model.linear.weight] and decayed["weight_decay"] == 0.05
    assert undecayed["params"] == [model.linear.bias, model.norm.weight, model.norm.bias]
    assert undecayed["weight_decay"] == 0.0


def test_clipping_under_mixed_precision_builds_an_unfused_optimizer_lightning_can_clip():
    model = Block()
    plain = configure(model, adamw, linear_warmup, total_steps=10, clips_amp_gradients=True)["optimizer"]
    assert not plain.param_groups[0]["fused"] and not getattr(plain, "_step_supports_amp_scaling", False)
    assert (
        configure(model, adamw, linear_warmup, total_steps=10)["optimizer"].param_groups[0]["fused"] is True
    )
    adagrad = configure(
        model, functools.partial(torch.optim.Adagrad, lr=0.1), linear_warmup, 10, clips_amp_gradients=True
    )
    assert isinstance(
        adagrad["optimizer"], torch.optim.Adagrad
    )  # a factory without ``fused`` is called as it is


@pytest.mark.slow
@pytest.mark.shared_data
def test_a_mixed_precision_run_with_gradient_clipping_trains(compose_train, small_kote_dir, tmp_path):
    """A GPU run's defaults (bf16-mixed, gradient_clip_val 1.0) crashed at the first step with the fused
    AdamW: "does not allow for gradient clipping because it performs unscaling of gradients internally".
    Lightning runs bf16-mixed on a CPU too, so the same path is exercised here."""
    report = train(
        compose_train(
            *SMALL_RUN,
            f"paths.kote_dir={small_kote_dir}",
            f"paths.output_dir={tmp_path}",
            "data.source.max_train_rows=32",
            "trainer.max_epochs=1",
            "trainer.precision=bf16-mixed",
            "trainer.gradient_clip_val=1.0",
            "+trainer.limit_val_batches=1",
            "+trainer.limit_test_batches=1",
        )
    )
    assert report["global_step"] > 0


def test_no_empty_parameter_group_under_lora():
    """DeepSpeed drops empty groups; a scheduler built on them then fails at its first step (seen on GPU)."""

    class Adapter(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.frozen = nn.Linear(4, 4).requires_grad_(False)
            self.lora_A = nn.Parameter(torch.zeros(2, 4))  # 2-D, decayed: the no-decay group is empty

    assert [len(g["params"]) for g in parameter_groups(Adapter())] == [1]


def test_the_schedule_warms_up_over_its_share_of_the_steps_then_decays_to_zero():
    optimizer = adamw([nn.Parameter(torch.zeros(2))], lr=1.0)
    config = configure(nn.Linear(1, 1), lambda groups: optimizer, linear_warmup, total_steps=10)
    schedule = config["lr_scheduler"]
    assert schedule["interval"] == "step"
    rates = []
    for _ in range(10):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule["scheduler"].step()
    assert rates == pytest.approx([0.0, 1.0, 8 / 9, 7 / 9, 6 / 9, 5 / 9, 4 / 9, 3 / 9, 2 / 9, 1 / 9])


def test_a_stored_optim_from_before_targets_becomes_the_same_optimizer_and_schedule():
    upgraded = upgrade_stored_optim({"seed": 3, "optim": dict(BEFORE_TARGETS)})
    assert upgraded["seed"] == 3
    assert upgraded["optim"] == {
        "_target_": "emoreason.training.optimizers.adamw",
        "_partial_": True,
        "lr": 5e-4,
        "weight_decay": 0.01,
        "betas": [0.9, 0.999],
        "eps": 1e-8,
    }
    assert upgraded["scheduler"] == {
        "_target_": "emoreason.training.optimizers.linear_warmup",
        "_partial_": True,
        "warmup_ratio": 0.1,
    }
    built = configure(Block(), instantiate(upgraded["optim"]), instantiate(upgraded["scheduler"]), 20)
    group = built["optimizer"].param_groups[0]
    assert (group["weight_decay"], group["betas"], group["eps"]) == (0.01, (0.9, 0.999), 1e-8)
    assert group["lr"] == 0.0  # warmup: 0 at step 0 of int(0.1 x 20) = 2 warmup steps
    assert group["initial_lr"] == 5e-4


def test_a_config_already_in_todays_form_is_left_as_it_is():
    today = {
        "optim": {"_target_": "emoreason.training.optimizers.adamw", "_partial_": True, "lr": 1e-4},
        "scheduler": {"_target_": "emoreason.training.optimizers.linear_warmup", "_partial_": True},
    }
    assert upgrade_stored_optim(today) == today
    assert upgrade_stored_optim({"seed": 0}) == {"seed": 0}


def as_before_targets(checkpoint: Path, target: Path) -> Path:
    """A copy of ``checkpoint`` whose stored config is in the form main wrote before optim became a target."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    config = state["emoreason"]["config"]
    optim = {k: v for k, v in config["optim"].items() if not k.startswith("_")}
    config["optim"] = {**optim, "warmup_ratio": config.pop("scheduler")["warmup_ratio"]}
    assert set(config["optim"]) == set(BEFORE_TARGETS)
    torch.save(state, target)
    return target


@pytest.mark.slow
@pytest.mark.shared_data
def test_a_checkpoint_from_before_targets_evaluates_and_resumes(compose_train, small_kote_dir, tmp_path):
    def run(name: str, *overrides: str) -> dict:
        out = f"paths.output_dir={tmp_path / name}"
        rows = ("data.source.max_train_rows=64", "+trainer.limit_test_batches=1")
        return train(compose_train(*SMALL_RUN, f"paths.kote_dir={small_kote_dir}", *rows, out, *overrides))

    first = run("first", "trainer.max_epochs=1", "optim.lr=3e-4")
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    old = as_before_targets(last, tmp_path / "old.ckpt")

    today, before = load_checkpoint_parts(last), load_checkpoint_parts(old)
    assert before.cfg.optim == today.cfg.optim and before.cfg.scheduler == today.cfg.scheduler
    assert before.module.optimizer_factory.keywords["lr"] == 3e-4

    def tag(ckpt: Path) -> dict:
        overrides = [
            f"ckpt_path={ckpt}",
            "text='아 진짜 어이가 없네'",
            "threshold=0.3",
            f"paths.output_dir={tmp_path}",
        ]
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return evaluate(compose(config_name="evaluate", overrides=overrides))["tagged"]

    assert tag(old) == tag(last)

    resumed = run("second", f"ckpt_path={old}", "trainer.max_epochs=2", "optim.lr=3e-4")
    steps = [
        torch.load(tmp_path / r / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
        for r in ("first", "second")
    ]
    assert steps[1] == 2 * steps[0] > 0 and resumed["seed"] == first["seed"]
