"""The LightningModule: one method applied to one network, with AdamW, warmup/decay and F1 metrics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import lightning as L
import torch
from torch import nn
from transformers import get_linear_schedule_with_warmup

from emoreason.evaluation.metrics import f1_metrics
from emoreason.labels import LABELS

Batch = dict[str, torch.Tensor]


class TrainableMethod(Protocol):
    name: str

    def loss(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]: ...

    def scores(self, model: nn.Module, batch: Batch) -> torch.Tensor: ...


@dataclass
class OptimConfig:
    """AdamW with linear warmup then linear decay to zero (``optim`` in the config)."""

    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8


def _no_decay(name: str, param: torch.Tensor) -> bool:
    """Biases and normalisation weights are not decayed (the usual transformer recipe)."""
    return param.ndim < 2 or "norm" in name.lower()


def metric_key(stage: str, metric: str, label: str | None = None) -> str:
    """``stage/metric`` (or ``stage/f1/<label>``); '/' inside label names would split W&B sections."""
    return f"{stage}/{metric}" if label is None else f"{stage}/f1/{label.replace('/', '·')}"


class EmotionModule(L.LightningModule):
    """Trains ``model`` with ``method``'s loss; validation logs ``val/<metric>`` at threshold 0.5.

    ``extra_state`` (resolved config, tokenizer) rides along in every checkpoint, so a checkpoint alone is
    enough for evaluate.py.
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

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        loss, parts = self.method.loss(self.model, batch)
        batch_size = batch["input_ids"].shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=batch_size)
        for name, value in parts.items():
            self.log(f"train/{name}", value, batch_size=batch_size)
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        loss, _ = self.method.loss(self.model, batch)
        self.log("val/loss", loss, sync_dist=True, batch_size=batch["input_ids"].shape[0])
        self.val_metrics.update(self.method.scores(self.model, batch), batch["targets"].int())

    def on_validation_epoch_end(self) -> None:
        computed = self.val_metrics.compute()
        self.val_metrics.reset()
        for name in ("macro_f1", "micro_f1", "weighted_f1"):
            self.log(metric_key("val", name), computed[name], prog_bar=name == "macro_f1")
        for label, value in zip(LABELS, computed["per_label_f1"], strict=True):
            self.log(metric_key("val", "f1", label), value)

    def configure_optimizers(self) -> dict[str, Any]:
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        groups = [
            {"params": [p for n, p in named if not _no_decay(n, p)], "weight_decay": self.optim.weight_decay},
            {"params": [p for n, p in named if _no_decay(n, p)], "weight_decay": 0.0},
        ]
        optimizer = torch.optim.AdamW(groups, lr=self.optim.lr, betas=self.optim.betas, eps=self.optim.eps)
        total = int(self.trainer.estimated_stepping_batches)
        scheduler = get_linear_schedule_with_warmup(optimizer, int(self.optim.warmup_ratio * total), total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["emoreason"] = self.extra_state
