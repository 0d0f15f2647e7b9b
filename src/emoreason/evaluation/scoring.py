"""Score a split with a trained module and turn validation/test scores into the reported figures."""

from __future__ import annotations

import logging
from collections import defaultdict
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
from torch.utils.data import DataLoader
from torchmetrics.functional.classification import multilabel_auroc

from emoreason.console import RateLog
from emoreason.evaluation.records import Figures, Results, SplitReport
from emoreason.labels import LABELS
from emoreason.training.metrics import label_support, score_metrics, tune_threshold
from emoreason.training.module import EmotionModule

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoredSplit:
    """A split's ``(rows, 44)`` scores in [0, 1] and 0/1 targets, in dataset row order, and what else the
    method said about it.

    ``diagnostics`` are split means of per-row figures some methods report besides label scores (generative
    methods: ``unparseable_rate``, ``generated_tokens``); they land in the split's section of metrics.json.
    ``generated`` is the text a generative method wrote for each row (None for a classifier).
    """

    scores: torch.Tensor
    targets: torch.Tensor
    diagnostics: dict[str, float] = field(default_factory=dict)
    generated: list[str] | None = None


@torch.inference_mode()
def predict_scores(module: EmotionModule, dataloader: DataLoader, what: str = "scoring") -> ScoredSplit:
    """(scores, targets) in dataset row order, whatever order the batches came in, with diagnostics.

    A log line every few seconds names ``what`` with rows done, rate and ETA when stdout is not a terminal
    (:class:`~emoreason.console.RateLog`): final scoring of thousands of rows is where a piped run waits.
    """
    module.eval()
    device = next(module.parameters()).device
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    scores, targets, indices = [], [], []
    per_row: dict[str, list[torch.Tensor]] = defaultdict(list)
    generated: list[str] = []
    progress = RateLog(what, len(dataloader.dataset))  # type: ignore[arg-type]
    with autocast:
        for batch in dataloader:
            on_device = {k: v.to(device) for k, v in batch.items()}
            scored = module.method.detailed_scores(module.model, on_device)
            scores.append(scored.scores.float().cpu())
            targets.append(batch["targets"])
            indices.append(batch["index"])
            for name, values in scored.diagnostics.items():
                per_row[name].append(values.float().cpu())
            generated.extend(scored.generated or [])
            progress.advance(len(batch["index"]))
    progress.finish()
    order = torch.argsort(torch.cat(indices))
    means = {name: float(torch.cat(values).mean()) for name, values in per_row.items()}
    texts = [generated[i] for i in order.tolist()] if generated else None
    return ScoredSplit(torch.cat(scores)[order], torch.cat(targets)[order], means, texts)


KOTE_THRESHOLD = 0.3
"""The fixed decision threshold of the KOTE paper's evaluation (Jeon et al. 2022), reported as ``at_0.3``."""


def macro_auroc(scores: torch.Tensor, targets: torch.Tensor) -> float | None:
    """Mean per-label AUROC (torchmetrics) over the labels with both positive and negative rows.

    torchmetrics scores a label without positives as 0 rather than leaving it out, which would drag the
    mean down for a reason that has nothing to do with the model; None when no label is defined.
    """
    positives = targets.int().sum(0)
    defined = (positives > 0) & (positives < targets.shape[0])
    if not defined.any():
        return None
    per_label = multilabel_auroc(scores.float(), targets.int(), scores.shape[1], average="none")
    return float(per_label[defined].mean())


def split_report(split: ScoredSplit, threshold: float, name: str = "test") -> SplitReport:
    """Figures at the tuned ``threshold``, at 0.5 and at KOTE's 0.3, macro-AUROC, rows and diagnostics.

    :func:`macro_auroc` averages the labels that have both positive and negative rows. ``support``
    (gold rows per label) and ``labels_without_support`` say which labels the split cannot test; when there
    are any, a warning names them and both macro-F1 figures (all labels, and supported labels only).
    """
    scores, targets = split.scores, split.targets
    support = dict(zip(LABELS, label_support(targets).tolist(), strict=True))
    unsupported = [label for label, count in support.items() if count == 0]
    tuned = Figures.from_json(score_metrics(scores, targets, threshold))
    if unsupported:
        log.warning(
            "%s: %d of %d labels have no gold row among its %d rows (%s); macro-F1 %.4f counts them as 0, "
            "%.4f over the %d labels with support",
            name,
            len(unsupported),
            len(support),
            scores.shape[0],
            ", ".join(unsupported),
            tuned.macro_f1,
            tuned.macro_f1_supported or 0.0,
            len(support) - len(unsupported),
        )
    return SplitReport(
        rows=int(scores.shape[0]),
        support=support,
        labels_without_support=unsupported,
        tuned=tuned,
        at_05=Figures.from_json(score_metrics(scores, targets, 0.5)),
        at_03=Figures.from_json(score_metrics(scores, targets, KOTE_THRESHOLD)),
        macro_auroc=macro_auroc(scores, targets),
        diagnostics=dict(split.diagnostics),
    )


def threshold_and_reports(
    val: ScoredSplit | None, test: ScoredSplit | None, threshold: float | None = None
) -> Results:
    """Tune the threshold on validation (unless given), then apply it once to test."""
    if threshold is None:
        if val is None:
            raise ValueError("tuning the threshold needs validation scores")
        threshold = tune_threshold(val.scores, val.targets)
        source = "tuned on val"
    else:
        source = "given"
    return Results(
        threshold=threshold,
        threshold_source=source,
        val=split_report(val, threshold, "val") if val is not None else None,
        test=split_report(test, threshold, "test") if test is not None else None,
    )
