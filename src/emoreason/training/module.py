"""The LightningModule: one method applied to one network, with the configured optimizer and schedule
(:mod:`emoreason.training.optimizers`) and F1 metrics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning as L
import torch
from lightning.pytorch.plugins.precision import FSDPPrecision, MixedPrecision
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig
from torch import nn
from torch.nn.modules.module import _IncompatibleKeys

from emoreason.labels import LABELS
from emoreason.models.methods.base import Batch, Method
from emoreason.training.metrics import BestMacroF1, f1_metrics
from emoreason.training.optimizers import OptimizerFactory, SchedulerFactory, configure


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
        method: Method,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory,
        extra_state: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.method = method
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
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
        if self.method.eval_loss:
            loss, scored = self.method.loss_and_scores(self.model, batch)
            self.log("val/loss", loss, sync_dist=True, batch_size=batch_size)
        else:
            scored = self.method.detailed_scores(self.model, batch)
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

    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:
        trainer = self.trainer
        total = int(trainer.estimated_stepping_batches)
        clips = bool(trainer.gradient_clip_val) and isinstance(
            trainer.precision_plugin, MixedPrecision | FSDPPrecision
        )
        return configure(
            self.model,
            self.optimizer_factory,
            self.scheduler_factory,
            total_steps=total,
            clips_amp_gradients=clips,
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["emoreason"] = self.extra_state

    # torch declares state_dict as two overloads returning a TypeVar; this override passes every argument
    # through unchanged, which mypy cannot match against overloads without restating them.
    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
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
