"""The LightningModule: one method applied to one network, with AdamW, warmup/decay and F1 metrics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import lightning as L
import torch
from torch import nn
from torch.nn.modules.module import _IncompatibleKeys
from torch.optim.optimizer import _default_to_fused_or_foreach
from transformers import get_linear_schedule_with_warmup

from emoreason.config import OptimConfig
from emoreason.labels import LABELS
from emoreason.models.scores import MethodScores
from emoreason.training.metrics import BestMacroF1, f1_metrics

Batch = dict[str, torch.Tensor]


class TrainableMethod(Protocol):
    """What the module calls. Optional members extend it (read with defaults by the module):

    - ``eval_loss: bool`` (default True): False when evaluation batches cannot give a loss, as for generative
      methods, whose evaluation batches hold prompts only (the reasoning a target needs is not available at
      inference); ``val/loss`` is then not logged.
    - ``detailed_scores(model, batch) -> MethodScores``: scores plus per-row figures such as
      ``unparseable_rate`` (0/1 per row), logged as ``val/<name>`` and averaged into metrics.json, and the
      text a generative method wrote for each row.
    - ``diagnostic_names: tuple[str, ...]`` (default ()): the names ``detailed_scores`` reports, so a
      callback monitoring ``val/<name>`` can be checked before training.
    - ``loss_and_scores(model, batch) -> (loss, scores)``: both from one forward, where a method's scores
      and loss come from the same outputs (the classifier's logits); validation then runs one forward
      instead of two.
    """

    name: str

    def loss(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]: ...

    def scores(self, model: nn.Module, batch: Batch) -> torch.Tensor: ...


def method_scores(method: TrainableMethod, model: nn.Module, batch: Batch) -> MethodScores:
    """``method``'s scores for ``batch``, with diagnostics and generated text where it has them."""
    detailed = getattr(method, "detailed_scores", None)
    if detailed is None:
        return MethodScores(method.scores(model, batch))
    return detailed(model, batch)


def loss_and_scores(
    method: TrainableMethod, model: nn.Module, batch: Batch
) -> tuple[torch.Tensor, MethodScores]:
    """``method``'s loss and scores for ``batch``, from one forward where the method offers that."""
    both = getattr(method, "loss_and_scores", None)
    if both is None:
        return method.loss(model, batch)[0], method_scores(method, model, batch)
    loss, scores = both(model, batch)
    return loss, MethodScores(scores)


def _no_decay(name: str, param: torch.Tensor) -> bool:
    """Biases and normalisation weights are not decayed (the usual transformer recipe)."""
    return param.ndim < 2 or "norm" in name.lower()


def adamw(groups: list[dict[str, Any]], optim: OptimConfig) -> torch.optim.AdamW:
    """AdamW on ``groups``, fused (one kernel over all tensors) where every parameter's device has it.

    PyTorch defaults to the slower for-each path even where a fused kernel exists (CUDA, CPU, XPU, MPS):
    on CPU one tiny_neox step measured 25.7 ms by default and 11.8 ms fused. The check is PyTorch's own
    (``_default_to_fused_or_foreach``), which otherwise runs only at the first step, where fused=True
    on an unsupported device would fail mid-training instead of falling back here.
    """
    params = [p for group in groups for p in group["params"]]
    fused, _ = _default_to_fused_or_foreach(params, differentiable=False, use_fused=True)
    return torch.optim.AdamW(groups, lr=optim.lr, betas=optim.betas, eps=optim.eps, fused=fused or None)


def metric_key(stage: str, metric: str, label: str | None = None) -> str:
    """``stage/metric`` (or ``stage/f1/<label>``); '/' inside label names would split W&B sections."""
    return f"{stage}/{metric}" if label is None else f"{stage}/f1/{label.replace('/', '·')}"


class EmotionModule(L.LightningModule):
    """Trains ``model`` with ``method``'s loss; validation logs ``val/<metric>`` at threshold 0.5.

    ``extra_state`` (resolved config, tokenizer) rides along in every checkpoint, so a checkpoint alone is
    enough for evaluate.py. Weights frozen when the module is built (LoRA's backbone) are left out of
    :meth:`state_dict` and may be absent when loading: they come from the backbone, not the checkpoint.
    """

    def __init__(
        self,
        model: nn.Module,
        method: TrainableMethod,
        optim: OptimConfig,
        extra_state: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.method = method
        self.optim = optim
        self.extra_state = extra_state or {}
        self.val_metrics = f1_metrics()
        self.val_best_macro_f1 = BestMacroF1()
        self.frozen_keys = frozenset(f"model.{n}" for n, p in model.named_parameters() if not p.requires_grad)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        loss, parts = self.method.loss(self.model, batch)
        batch_size = batch["input_ids"].shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=batch_size)
        for name, value in parts.items():
            self.log(f"train/{name}", value, batch_size=batch_size)
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        batch_size = batch["input_ids"].shape[0]
        if getattr(self.method, "eval_loss", True):
            loss, scored = loss_and_scores(self.method, self.model, batch)
            self.log("val/loss", loss, sync_dist=True, batch_size=batch_size)
        else:
            scored = method_scores(self.method, self.model, batch)
        self.val_metrics.update(scored.scores, batch["targets"].int())
        self.val_best_macro_f1.update(scored.scores, batch["targets"])
        for name, per_row in scored.diagnostics.items():
            self.log(f"val/{name}", per_row.float().mean(), sync_dist=True, batch_size=batch_size)

    def on_validation_epoch_end(self) -> None:
        computed = self.val_metrics.compute()
        self.val_metrics.reset()
        for name in ("macro_f1", "micro_f1", "weighted_f1"):
            self.log(metric_key("val", name), computed[name], prog_bar=name == "macro_f1")
        for label, value in zip(LABELS, computed["per_label_f1"], strict=True):
            self.log(metric_key("val", "f1", label), value)
        # What the tuned evaluation will report: the checkpoint and early-stopping criterion.
        self.log(metric_key("val", "macro_f1_tuned"), self.val_best_macro_f1.compute(), prog_bar=True)
        self.val_best_macro_f1.reset()

    def configure_optimizers(self) -> dict[str, Any]:
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        groups = [
            {"params": [p for n, p in named if not _no_decay(n, p)], "weight_decay": self.optim.weight_decay},
            {"params": [p for n, p in named if _no_decay(n, p)], "weight_decay": 0.0},
        ]
        # Empty groups (LoRA has no trainable bias or norm) are dropped: DeepSpeed drops them itself, which
        # would leave the LR scheduler with more groups than the optimizer it steps.
        groups = [group for group in groups if group["params"]]
        optimizer = adamw(groups, self.optim)
        total = int(self.trainer.estimated_stepping_batches)
        scheduler = get_linear_schedule_with_warmup(optimizer, int(self.optim.warmup_ratio * total), total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["emoreason"] = self.extra_state

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """All weights but the frozen ones: with LoRA on Polyglot, megabytes of adapters, not 11.7 GB."""
        state = super().state_dict(*args, **kwargs)
        prefix = kwargs.get("prefix", "")
        for key in self.frozen_keys:
            state.pop(prefix + key, None)
        return state

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> _IncompatibleKeys:
        """Load ``state_dict``; frozen weights may be absent (the backbone supplied them), nothing else."""
        result = super().load_state_dict(state_dict, strict=False, assign=assign)
        missing = [key for key in result.missing_keys if key not in self.frozen_keys]
        if strict and (missing or result.unexpected_keys):
            raise RuntimeError(
                f"checkpoint does not fit this model: {len(missing)} trainable weights missing "
                f"{missing[:3]}, {len(result.unexpected_keys)} unexpected {result.unexpected_keys[:3]}; "
                "was it trained with the same model, method and lora settings?"
            )
        return _IncompatibleKeys(missing, result.unexpected_keys)
