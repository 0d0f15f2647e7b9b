"""Multi-label F1 metrics (torchmetrics) and the validation-tuned decision threshold.

The threshold is chosen on validation scores only and then applied, once, to test: tuning on test would
inflate every number we report. Both the tuned and the fixed-0.5 figures are reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import MultilabelF1Score

from emoreason.labels import LABELS, NUM_LABELS

THRESHOLD_GRID = tuple(round(0.01 * i, 2) for i in range(1, 100))


def f1_metrics(threshold: float = 0.5, num_labels: int = NUM_LABELS) -> MetricCollection:
    """macro/micro/weighted F1 and per-label F1 at ``threshold``; syncs across DDP ranks by itself."""
    f1 = partial(MultilabelF1Score, num_labels=num_labels, threshold=threshold, zero_division=0)
    return MetricCollection(
        {
            "macro_f1": f1(average="macro"),
            "micro_f1": f1(average="micro"),
            "weighted_f1": f1(average="weighted"),
            "per_label_f1": f1(average="none"),
        }
    )


def summarise(computed: dict[str, torch.Tensor], labels: Sequence[str] = LABELS) -> dict[str, object]:
    """Plain floats from a computed :func:`f1_metrics`, per-label F1 keyed by label name."""
    per_label = computed["per_label_f1"].tolist()
    return {
        "macro_f1": float(computed["macro_f1"]),
        "micro_f1": float(computed["micro_f1"]),
        "weighted_f1": float(computed["weighted_f1"]),
        "per_label_f1": dict(zip(labels, per_label, strict=True)),
    }


def score_metrics(scores: torch.Tensor, targets: torch.Tensor, threshold: float) -> dict[str, object]:
    """All F1 figures of ``scores`` (probabilities) against 0/1 ``targets`` at ``threshold``.

    ``macro_f1`` averages every label; one without a gold row in ``targets`` has F1 0 there (zero_division=0,
    as sklearn's), which on a small file drags the average down for labels the file cannot test.
    ``macro_f1_supported`` averages the labels with at least one gold row (None when none has one).
    """
    suite = f1_metrics(threshold, scores.shape[1])
    computed = suite(scores.float(), targets.int())
    supported = label_support(targets) > 0
    figures = summarise(computed)
    per_label = computed["per_label_f1"][supported]
    figures["macro_f1_supported"] = float(per_label.mean()) if supported.any() else None
    return figures


def label_support(targets: torch.Tensor) -> torch.Tensor:
    """Gold rows per label: ``targets`` (rows × labels, 0/1) summed over rows, as int64."""
    return targets.long().sum(0)


def macro_f1_by_threshold(
    scores: torch.Tensor, targets: torch.Tensor, grid: Sequence[float] = THRESHOLD_GRID
) -> torch.Tensor:
    """Macro-F1 at every threshold of ``grid`` in one vectorised pass (zero_division=0, like sklearn's)."""
    thresholds = torch.tensor(grid, dtype=scores.dtype).view(-1, 1, 1)
    predicted = scores.unsqueeze(0) > thresholds  # strict, as torchmetrics thresholds
    gold = targets.bool().unsqueeze(0)
    tp = (predicted & gold).sum(1).float()
    fp = (predicted & ~gold).sum(1).float()
    fn = (~predicted & gold).sum(1).float()
    denominator = 2 * tp + fp + fn
    f1 = torch.where(denominator > 0, 2 * tp / denominator.clamp(min=1), torch.zeros_like(tp))
    return f1.mean(1)


def tune_threshold(
    scores: torch.Tensor, targets: torch.Tensor, grid: Sequence[float] = THRESHOLD_GRID
) -> float:
    """The grid threshold with the best macro-F1 on (validation) ``scores``; ties go to the lowest."""
    by_threshold = macro_f1_by_threshold(scores.float(), targets, grid)
    return float(grid[int(torch.argmax(by_threshold))])


class BestMacroF1(Metric):
    """Macro-F1 at the best threshold of a grid: the figure the tuned evaluation will report.

    Used to pick checkpoints and stop early. Macro-F1 at a fixed 0.5 says little early in training (rare
    labels never reach 0.5, so it sits near zero while the model already ranks labels well); this keeps
    per-threshold counts, which sum across DDP ranks like any torchmetrics state.
    """

    full_state_update = False
    thresholds: torch.Tensor  # (grid, 1, 1), a buffer
    tp: torch.Tensor  # (grid, labels) counts, torchmetrics states
    fp: torch.Tensor
    fn: torch.Tensor

    def __init__(self, num_labels: int = NUM_LABELS, grid: Sequence[float] = THRESHOLD_GRID) -> None:
        super().__init__()
        self.register_buffer("thresholds", torch.tensor(grid).view(-1, 1, 1), persistent=False)
        for name in ("tp", "fp", "fn"):
            self.add_state(name, default=torch.zeros(len(grid), num_labels), dist_reduce_fx="sum")

    def update(self, scores: torch.Tensor, targets: torch.Tensor) -> None:
        predicted = scores.float().unsqueeze(0) > self.thresholds
        gold = targets.bool().unsqueeze(0)
        self.tp += (predicted & gold).sum(1)
        self.fp += (predicted & ~gold).sum(1)
        self.fn += (~predicted & gold).sum(1)

    def compute(self) -> torch.Tensor:
        denominator = 2 * self.tp + self.fp + self.fn
        f1 = torch.where(denominator > 0, 2 * self.tp / denominator.clamp(min=1), torch.zeros_like(self.tp))
        return f1.mean(1).max()
