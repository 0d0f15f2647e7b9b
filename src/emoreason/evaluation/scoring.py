"""Score a split with a trained module and turn validation/test scores into the reported figures."""

from __future__ import annotations

from collections import defaultdict
from contextlib import nullcontext

import torch
from torch.utils.data import DataLoader

from emoreason.evaluation.metrics import score_metrics, tune_threshold
from emoreason.training.module import EmotionModule, method_scores


class ScoredSplit(tuple):
    """A split's ``(scores, targets)``, unpacking as that pair, plus the method's ``diagnostics``.

    Diagnostics are split-level means of per-row figures some methods report besides label scores
    (generative methods: ``unparseable_rate``, ``generated_tokens``); they land in the split's section of
    metrics.json. ``generated`` is the text a generative method wrote for each row (None for a classifier).
    A tuple subclass so every caller that unpacks ``scores, targets`` keeps working.
    """

    diagnostics: dict[str, float]
    generated: list[str] | None

    def __new__(
        cls,
        scores: torch.Tensor,
        targets: torch.Tensor,
        diagnostics: dict[str, float] | None = None,
        generated: list[str] | None = None,
    ) -> ScoredSplit:
        split = super().__new__(cls, (scores, targets))
        split.diagnostics = dict(diagnostics or {})
        split.generated = generated
        return split


@torch.inference_mode()
def predict_scores(module: EmotionModule, dataloader: DataLoader) -> ScoredSplit:
    """(scores, targets) in dataset row order, whatever order the batches came in, with diagnostics."""
    module.eval()
    device = next(module.parameters()).device
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    scores, targets, indices = [], [], []
    per_row: dict[str, list[torch.Tensor]] = defaultdict(list)
    generated: list[str] = []
    with autocast:
        for batch in dataloader:
            on_device = {k: v.to(device) for k, v in batch.items()}
            scored = method_scores(module.method, module.model, on_device)
            scores.append(scored.scores.float().cpu())
            targets.append(batch["targets"])
            indices.append(batch["index"])
            for name, values in scored.diagnostics.items():
                per_row[name].append(values.float().cpu())
            generated.extend(scored.generated or [])
    order = torch.argsort(torch.cat(indices))
    means = {name: float(torch.cat(values).mean()) for name, values in per_row.items()}
    texts = [generated[i] for i in order.tolist()] if generated else None
    return ScoredSplit(torch.cat(scores)[order], torch.cat(targets)[order], means, texts)


def split_report(split: tuple[torch.Tensor, torch.Tensor], threshold: float) -> dict[str, object]:
    """Figures at the tuned ``threshold`` and at the fixed 0.5, the row count and any diagnostics."""
    scores, targets = split
    return {
        "rows": int(scores.shape[0]),
        "tuned": score_metrics(scores, targets, threshold),
        "at_0.5": score_metrics(scores, targets, 0.5),
        **getattr(split, "diagnostics", {}),
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
        report["val"] = split_report(val, threshold)
    if test is not None:
        report["test"] = split_report(test, threshold)
    return report
