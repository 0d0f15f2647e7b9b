"""Score a split with a trained module and turn validation/test scores into the reported figures."""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch.utils.data import DataLoader

from emoreason.evaluation.metrics import score_metrics, tune_threshold
from emoreason.training.module import EmotionModule


@torch.inference_mode()
def predict_scores(module: EmotionModule, dataloader: DataLoader) -> tuple[torch.Tensor, torch.Tensor]:
    """(scores, targets) in dataset row order, whatever order the batches came in."""
    module.eval()
    device = next(module.parameters()).device
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    scores, targets, indices = [], [], []
    with autocast:
        for batch in dataloader:
            on_device = {k: v.to(device) for k, v in batch.items()}
            scores.append(module.method.scores(module.model, on_device).float().cpu())
            targets.append(batch["targets"])
            indices.append(batch["index"])
    order = torch.argsort(torch.cat(indices))
    return torch.cat(scores)[order], torch.cat(targets)[order]


def split_report(scores: torch.Tensor, targets: torch.Tensor, threshold: float) -> dict[str, object]:
    """Figures at the tuned ``threshold`` and at the fixed 0.5, plus the row count."""
    return {
        "rows": int(scores.shape[0]),
        "tuned": score_metrics(scores, targets, threshold),
        "at_0.5": score_metrics(scores, targets, 0.5),
    }


def threshold_and_reports(
    val: tuple[torch.Tensor, torch.Tensor] | None,
    test: tuple[torch.Tensor, torch.Tensor] | None,
    threshold: float | None = None,
) -> dict[str, object]:
    """Tune the threshold on validation (unless given), then apply it once to test."""
    if threshold is None:
        if val is None:
            raise ValueError("tuning the threshold needs validation scores")
        threshold = tune_threshold(*val)
        source = "tuned on val"
    else:
        source = "given"
    report: dict[str, object] = {"threshold": threshold, "threshold_source": source}
    if val is not None:
        report["val"] = split_report(*val, threshold)
    if test is not None:
        report["test"] = split_report(*test, threshold)
    return report
