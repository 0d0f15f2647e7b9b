"""The optimizer and learning-rate schedule a run trains with: ``conf/optim`` and ``conf/scheduler``.

Both groups are ``_target_``s with ``_partial_: true`` (as lightning-hydra-template configures them):
``instantiate`` returns a factory still missing what only the LightningModule knows, the parameters and the
number of optimizer steps, and :func:`configure` supplies them. Any ``torch.optim`` optimizer fits the
first slot; a scheduler target is called as ``scheduler(optimizer, total_steps=...)``. Ours add what the
plain classes lack (AdamW's fused kernel chosen by device, a warmup given as a share of the run).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler
from torch.optim.optimizer import _default_to_fused_or_foreach
from transformers import get_linear_schedule_with_warmup

from emoreason.config import ConfigError

OptimizerFactory = Callable[[list[dict[str, Any]]], Optimizer]
"""``conf/optim`` instantiated: parameter groups → optimizer."""
SchedulerFactory = Callable[..., LRScheduler]
"""``conf/scheduler`` instantiated: called as ``factory(optimizer, total_steps=...)``."""


def adamw(
    params: Iterable[Any],
    lr: float = 1e-3,
    weight_decay: float = 0.01,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    fused: bool | None = None,
) -> torch.optim.AdamW:
    """``torch.optim.AdamW``, fused (one kernel over all tensors) where every parameter's device has it.

    PyTorch defaults to the slower for-each path even where a fused kernel exists (CUDA, CPU, XPU, MPS):
    on CPU one tiny_neox step measured 25.7 ms by default and 11.8 ms fused. The check is PyTorch's own
    (``_default_to_fused_or_foreach``), which otherwise runs only at the first step, where fused=True
    on an unsupported device would fail mid-training instead of falling back here. ``weight_decay`` is the
    default of every group that does not set its own (:func:`parameter_groups` sets 0 for biases and norms).
    ``fused=False`` never fuses: :func:`configure` passes it where Lightning must clip unscaled gradients.
    """
    if len(betas) != 2:
        raise ValueError(f"betas takes 2 values (the two moment decay rates), got {list(betas)}")
    groups = list(params)
    tensors = [p for group in groups for p in (group["params"] if isinstance(group, dict) else [group])]
    if fused is None:
        fused, _ = _default_to_fused_or_foreach(tensors, differentiable=False, use_fused=True)
    return torch.optim.AdamW(
        groups, lr=lr, betas=(betas[0], betas[1]), eps=eps, weight_decay=weight_decay, fused=fused or None
    )


def linear_warmup(optimizer: Optimizer, total_steps: int, warmup_ratio: float = 0.1) -> LRScheduler:
    """Linear warmup over ``warmup_ratio`` of ``total_steps`` optimizer steps, then linear decay to 0.

    Hugging Face's ``get_linear_schedule_with_warmup`` (BERT's recipe); the warmup is a share of the run so
    that a resumed run with a larger ``trainer.max_epochs`` rebuilds it for the new length.
    """
    if not 0 <= warmup_ratio <= 1:
        raise ValueError(f"warmup_ratio is a share of the run's steps, between 0 and 1; got {warmup_ratio}")
    return get_linear_schedule_with_warmup(optimizer, int(warmup_ratio * total_steps), total_steps)


def _no_decay(name: str, param: torch.Tensor) -> bool:
    """Biases and normalisation weights are not decayed (the usual transformer recipe)."""
    return param.ndim < 2 or "norm" in name.lower()


def parameter_groups(model: nn.Module) -> list[dict[str, Any]]:
    """The trainable parameters of ``model``: one group decayed at the optimizer's rate, one not.

    Empty groups (LoRA has no trainable bias or norm) are dropped: DeepSpeed drops them itself, which would
    leave the LR scheduler with more groups than the optimizer it steps.
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups: list[dict[str, Any]] = [
        {"params": [p for n, p in named if not _no_decay(n, p)]},
        {"params": [p for n, p in named if _no_decay(n, p)], "weight_decay": 0.0},
    ]
    return [group for group in groups if group["params"]]


def configure(
    model: nn.Module,
    optimizer: OptimizerFactory,
    scheduler: SchedulerFactory,
    total_steps: int,
    *,
    clips_amp_gradients: bool = False,
) -> OptimizerLRSchedulerConfig:
    """What ``LightningModule.configure_optimizers`` returns: the optimizer, its schedule stepped per step.

    ``total_steps`` is the run's number of optimizer steps (``trainer.estimated_stepping_batches``).
    ``clips_amp_gradients``: the trainer clips gradients under mixed precision (``16-mixed``/``bf16-mixed``
    with ``gradient_clip_val`` > 0, a GPU run's default). Lightning refuses to clip for an optimizer that
    unscales its own gradients, which a fused one does ("does not allow for gradient clipping ... Are you
    using a 'fused' optimizer?", ``MixedPrecision.clip_gradients``), so an optimizer that takes ``fused``
    is then built with ``fused=False``.
    """
    takes_fused = "fused" in inspect.signature(optimizer).parameters
    extra = {"fused": False} if clips_amp_gradients and takes_fused else {}
    built = optimizer(parameter_groups(model), **extra)
    return {
        "optimizer": built,
        "lr_scheduler": {"scheduler": scheduler(built, total_steps=total_steps), "interval": "step"},
    }


def check_factories(optimizer: OptimizerFactory, scheduler: SchedulerFactory) -> None:
    """Build both once on a one-element parameter, so a value they refuse fails before any data is read.

    Why: the signature check at start catches unknown keys and wrong types, but only the optimizer and
    scheduler know their value ranges (a negative lr, three betas, a warmup beyond the run) and a scheduler
    target that does not take ``total_steps``; otherwise these surface as a traceback once the network is
    loaded. Raises :class:`~emoreason.config.ConfigError` naming the group (exit status 2 at the CLI).
    """
    probe = nn.Parameter(torch.zeros(1))
    try:
        built = optimizer([{"params": [probe]}])
    except (ValueError, TypeError, IndexError) as error:
        raise ConfigError(f"optim: {error} (conf/optim; called as optimizer(parameter_groups))") from error
    try:
        scheduler(built, total_steps=10)
    except (ValueError, TypeError, IndexError) as error:
        hint = (
            " (a scheduler target is called as scheduler(optimizer, total_steps=...): wrap a "
            "torch.optim.lr_scheduler class in a function that takes total_steps)"
            if isinstance(error, TypeError)
            else ""
        )
        raise ConfigError(f"scheduler: {error}{hint}") from error


ADAMW_TARGET = f"{__name__}.adamw"
LINEAR_WARMUP_TARGET = f"{__name__}.linear_warmup"


def upgrade_stored_optim(config: Mapping[str, Any]) -> dict[str, Any]:
    """A stored run config (checkpoint, sweep job's ``config.yaml``) with today's ``optim`` and ``scheduler``.

    Runs from before the optimizer and schedule were ``_target_``s stored ``optim: {lr, weight_decay,
    warmup_ratio, betas, eps}``, read as AdamW with a linear warmup: the same run is ``conf/optim/adamw.yaml``
    and ``conf/scheduler/linear_warmup.yaml`` with those values. A config already in today's form, or with no
    ``optim``, comes back unchanged (as a new dict).
    """
    optim = config.get("optim")
    if not isinstance(optim, Mapping) or "_target_" in optim:
        return dict(config)
    adamw_keys = {k: v for k, v in optim.items() if k != "warmup_ratio"}
    schedule_keys = {k: v for k, v in optim.items() if k == "warmup_ratio"}
    return {
        **config,
        "optim": {"_target_": ADAMW_TARGET, "_partial_": True, **adamw_keys},
        "scheduler": {"_target_": LINEAR_WARMUP_TARGET, "_partial_": True, **schedule_keys},
    }
