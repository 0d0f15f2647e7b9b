"""Paired bootstrap of the F1 difference between two arms scored on the same test comments and seeds.

Why: the effects at stake (a few macro-F1 points) are of the order of the seed spread, so mean ± std per arm
cannot separate a gain from noise. Pairing removes the variation both arms share (which comments are hard,
which seed drew a lucky split): each replicate resamples the test comments with replacement — the same
resample for both arms — and, with several seeds, the seeds too (the same seeds for both arms), recomputes
each arm's F1 averaged over the drawn seeds, and keeps the difference (Koehn 2004, "Statistical
significance tests for machine translation evaluation"; Efron & Tibshirani 1993, ch. 16).

- Interval: the percentile interval of the replicate differences.
- p-value (two-sided): the shifted-null bootstrap test (Efron & Tibshirani 1993, §16.4; the form used by
  Berg-Kirkpatrick et al. 2012, "An empirical investigation of statistical significance in NLP"): centring
  the replicates on the null, ``p = (1 + #{|δ*_b − δ̂| ≥ |δ̂|}) / (B + 1)``. Identical arms give ``p = 1``.

F1 follows torchmetrics' and scikit-learn's ``zero_division=0``: a label neither predicted nor present
scores 0, so the figures equal metrics.json's on the full set of comments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

PROCEDURE = (
    "paired bootstrap: test comments resampled with replacement (the same resample for both arms) and, with "
    "several seeds, seeds too (the same seeds for both arms); 95% percentile interval; two-sided p-value "
    "from the shifted-null bootstrap, (1 + #{|δ* − δ̂| ≥ |δ̂|}) / (B + 1)"
)
BUCKETS = ("rare", "middle", "frequent")
_CHUNK = 128
"""Replicates per block: bounds memory at ``_CHUNK × n`` weights whatever the number of resamples."""


@dataclass(frozen=True)
class Resamples:
    """Which comments (``(B, n)`` indices) and which seeds (``(B, k)`` indices) each replicate draws."""

    comments: np.ndarray
    seeds: np.ndarray

    @classmethod
    def draw(cls, n: int, k: int, resamples: int, seed: int) -> Resamples:
        """Seeded draws: the same ``(n, k, resamples, seed)`` always gives the same replicates."""
        rng = np.random.default_rng(seed)
        comments = rng.integers(0, n, size=(resamples, n), dtype=np.int32)
        seeds = (
            rng.integers(0, k, size=(resamples, k), dtype=np.int32)
            if k > 1
            else np.zeros((resamples, 1), int)
        )
        return cls(comments, seeds)


@dataclass(frozen=True)
class Difference:
    """One statistic of arm B minus arm A: observed values, the interval, the p-value and the replicates."""

    a: float
    b: float
    diff: float
    low: float
    high: float
    p: float
    replicates: np.ndarray

    def to_json(self) -> dict[str, float]:
        return {"a": self.a, "b": self.b, "diff": self.diff, "low": self.low, "high": self.high, "p": self.p}


def f1_from_counts(tp: np.ndarray, predicted: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """Per-label F1 ``2·tp / (predicted + gold)`` over the last axis; 0 where both counts are 0."""
    tp, denominator = np.asarray(tp, np.float64), np.asarray(predicted, np.float64) + gold
    return np.divide(2 * tp, denominator, out=np.zeros_like(denominator), where=denominator > 0)


def label_buckets(gold: np.ndarray) -> dict[str, list[int]]:
    """Label indices split into thirds by their number of gold comments: rare, middle, frequent.

    ``gold`` is ``(n, L)`` 0/1; labels are sorted by count (ties by index) and cut into three near-equal
    groups (``numpy.array_split``: 44 labels → 15, 15, 14).
    """
    order = sorted(range(gold.shape[1]), key=lambda j: (int(gold[:, j].sum()), j))
    return {
        name: sorted(int(j) for j in part)
        for name, part in zip(BUCKETS, np.array_split(order, 3), strict=True)
    }


def _statistics(tp: np.ndarray, predicted: np.ndarray, gold: np.ndarray, buckets: dict[str, list[int]]):
    """macro-F1, micro-F1, per-label F1 and bucket macro-F1 from counts with labels on the last axis."""
    per_label = f1_from_counts(tp, predicted, gold)
    micro = f1_from_counts(tp.sum(-1), predicted.sum(-1), gold.sum(-1))
    stats = {"macro_f1": per_label.mean(-1), "micro_f1": micro, "per_label_f1": per_label}
    for name, labels in buckets.items():
        stats[f"{name}_macro_f1"] = per_label[..., labels].mean(-1)
    return stats


def _arm_replicates(
    predicted: np.ndarray, gold: np.ndarray, draws: Resamples, buckets
) -> dict[str, np.ndarray]:
    """Each statistic per replicate, averaged over that replicate's drawn seeds: arrays of shape (B, ...)."""
    hits = [(p & gold).astype(np.float32) for p in predicted]
    shown = [p.astype(np.float32) for p in predicted]
    gold_f = gold.astype(np.float32)
    blocks: dict[str, list[np.ndarray]] = {}
    n = gold.shape[0]
    for start in range(0, draws.comments.shape[0], _CHUNK):
        rows = draws.comments[start : start + _CHUNK]
        offsets = (np.arange(rows.shape[0]) * n)[:, None]
        weights = np.bincount((rows + offsets).ravel(), minlength=rows.size).reshape(rows.shape)
        weights = weights.astype(np.float32)
        gold_counts = weights @ gold_f
        per_seed = [
            _statistics(weights @ h, weights @ s, gold_counts, buckets)
            for h, s in zip(hits, shown, strict=True)
        ]
        chosen = draws.seeds[start : start + _CHUNK]
        for name in per_seed[0]:
            stacked = np.stack([stat[name] for stat in per_seed])  # (k, chunk, ...)
            picked = stacked[chosen.T, np.arange(chosen.shape[0])]  # (k, chunk, ...): the drawn seeds
            blocks.setdefault(name, []).append(picked.mean(0))
    return {name: np.concatenate(parts) for name, parts in blocks.items()}


def _observed(predicted: np.ndarray, gold: np.ndarray, buckets) -> dict[str, np.ndarray]:
    per_seed = [_statistics((p & gold).sum(0), p.sum(0), gold.sum(0), buckets) for p in predicted]
    return {name: np.mean([stat[name] for stat in per_seed], axis=0) for name in per_seed[0]}


def _difference(a: np.ndarray, b: np.ndarray, replicates: np.ndarray, confidence: float) -> Difference:
    """B − A of two observed statistics (numpy values) with its interval and p-value from the replicates."""
    diff = b - a
    tail = (1 - confidence) / 2
    low, high = np.quantile(replicates, [tail, 1 - tail])
    extreme = int(np.sum(np.abs(replicates - diff) >= abs(diff) - 1e-12))
    p = (1 + extreme) / (1 + replicates.shape[0])
    return Difference(float(a), float(b), float(diff), float(low), float(high), min(1.0, p), replicates)


@dataclass(frozen=True)
class ArmStatistics:
    """One arm's statistics on all comments (seed mean) and per replicate: name → value / ``(B, ...)``."""

    observed: dict[str, np.ndarray]
    replicates: dict[str, np.ndarray]

    @classmethod
    def compute(cls, gold: np.ndarray, predicted: np.ndarray, draws: Resamples) -> ArmStatistics:
        """``gold`` ``(n, L)`` and ``predicted`` ``(k, n, L)`` 0/1; buckets from :func:`label_buckets`."""
        gold, predicted = np.asarray(gold, dtype=bool), np.asarray(predicted, dtype=bool)
        buckets = label_buckets(gold)
        return cls(_observed(predicted, gold, buckets), _arm_replicates(predicted, gold, draws, buckets))


def compare_arms(a: ArmStatistics, b: ArmStatistics, confidence: float = 0.95) -> dict[str, Any]:
    """B − A per statistic (computed on the same draws): macro-F1, micro-F1, ``<bucket>_macro_f1`` each a
    :class:`Difference`, and ``per_label_f1`` a list of them in label order."""
    result: dict[str, Any] = {}
    for name, values in a.replicates.items():
        deltas = b.replicates[name] - values
        before, after = a.observed[name], b.observed[name]
        if name == "per_label_f1":
            result[name] = [
                _difference(before[j], after[j], deltas[:, j], confidence) for j in range(deltas.shape[1])
            ]
        else:
            result[name] = _difference(before, after, deltas, confidence)
    return result


def paired_bootstrap(
    gold: np.ndarray,
    predicted_a: np.ndarray,
    predicted_b: np.ndarray,
    *,
    resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """B − A for macro-F1, micro-F1, each bucket's macro-F1 and (as a list, label order) per-label F1.

    ``gold`` is ``(n, L)`` 0/1 over the shared test comments; ``predicted_a`` / ``predicted_b`` are
    ``(k, n, L)`` 0/1, seed ``i`` of A paired with seed ``i`` of B. Observed values average the seeds on all
    comments. Buckets come from :func:`label_buckets` on ``gold``. Raises ValueError on mismatched shapes.
    """
    shapes = np.shape(gold), np.shape(predicted_a), np.shape(predicted_b)
    if shapes[1] != shapes[2] or shapes[1][1:] != shapes[0] or resamples < 1:
        raise ValueError(
            f"paired bootstrap needs gold (n, L) and two (k, n, L) predictions and resamples ≥ 1; got "
            f"{shapes[0]}, {shapes[1]}, {shapes[2]}, resamples={resamples}"
        )
    draws = Resamples.draw(shapes[1][1], shapes[1][0], resamples, seed)
    a, b = (ArmStatistics.compute(gold, p, draws) for p in (predicted_a, predicted_b))
    return compare_arms(a, b, confidence)
