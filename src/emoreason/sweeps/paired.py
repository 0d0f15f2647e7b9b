"""Paired comparisons between a sweep's cells, from every finished job's ``test_predictions.jsonl``.

Two cells (arms) are compared when they share test comments and seeds: seed ``s`` of one arm is paired with
seed ``s`` of the other (same split, same training rows), on the comments both scored. The statistics are
:func:`emoreason.sweeps.stats.paired_bootstrap`'s; this module only reads, aligns and names.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emoreason.evaluation.files import PREDICTIONS_FILE
from emoreason.evaluation.records import iter_predictions
from emoreason.labels import LABEL_TO_ID, LABELS, NUM_LABELS
from emoreason.sweeps.aggregate import CHOICE_KEYS, Cell
from emoreason.sweeps.stats import PROCEDURE, ArmStatistics, Resamples, compare_arms, label_buckets

log = logging.getLogger(__name__)


class PredictionsError(ValueError):
    """A predictions file that cannot be read or paired; the message names the file and line."""


@dataclass(frozen=True)
class RunPredictions:
    """One job's test comments: ids in file order, ``(n, 44)`` 0/1 gold and predicted labels."""

    ids: tuple[str, ...]
    gold: np.ndarray
    predicted: np.ndarray


def _multi_hot(names: object, where: str) -> np.ndarray:
    if not isinstance(names, list) or any(name not in LABEL_TO_ID for name in names):
        raise PredictionsError(f"{where}: expected a list of KOTE label names, got {names!r}")
    row = np.zeros(NUM_LABELS, dtype=bool)
    row[[LABEL_TO_ID[name] for name in names]] = True
    return row


def read_predictions(path: Path) -> RunPredictions:
    """A ``test_predictions.jsonl`` (:class:`emoreason.evaluation.records.PredictionRecord` per line)."""
    ids, gold, predicted = [], [], []
    for lineno, record in iter_predictions(path, error=PredictionsError):
        where = f"{path}:{lineno}"
        ids.append(str(record["id"]))
        gold.append(_multi_hot(record["gold"], where))
        predicted.append(_multi_hot(record["predicted"], where))
    if not ids:
        raise PredictionsError(f"{path}: no predictions")
    return RunPredictions(tuple(ids), np.array(gold), np.array(predicted))


def arm_names(cells: list[dict[str, Any]], columns: list[str]) -> list[str]:
    """Each cell's name in verdicts: its varying override values (e.g. the experiment), with the config
    choices that vary between cells added where those alone leave a name empty or shared."""
    base = [", ".join(str(c["columns"][k]) for k in columns if c["columns"][k]) for c in cells]
    if all(base) and len(set(base)) == len(base):
        return base
    varying = [k for k in CHOICE_KEYS if len({c["choices"][k] for c in cells}) > 1] or list(CHOICE_KEYS)
    choices = ["/".join(str(c["choices"][k]) for k in varying) for c in cells]
    return [", ".join(part for part in pair if part) for pair in zip(choices, base, strict=True)]


def cell_predictions(cell: Cell) -> dict[Any, RunPredictions]:
    """The cell's finished runs by seed; a run without a predictions file is left out (logged)."""
    runs = {}
    for job in cell.finished:
        path = job.path / PREDICTIONS_FILE
        if job.metrics is None:
            continue
        if not path.exists():
            log.warning("%s has no %s: left out of the paired comparisons", job.path, PREDICTIONS_FILE)
            continue
        runs[job.metrics.get("seed")] = read_predictions(path)
    return runs


def _align(a: dict[Any, RunPredictions], b: dict[Any, RunPredictions]):
    """Shared seeds, shared comment ids (in A's order), gold and both arms' ``(k, n, 44)`` predictions."""
    seeds = sorted(set(a) & set(b), key=str)
    if not seeds:
        return None
    shared = set.intersection(*(set(runs[s].ids) for runs in (a, b) for s in seeds))
    ids = [i for i in a[seeds[0]].ids if i in shared]
    if not ids:
        return None
    stacked, gold = {}, None
    for arm, runs in (("a", a), ("b", b)):
        per_seed = []
        for s in seeds:
            run = runs[s]
            index = {rid: i for i, rid in enumerate(run.ids)}
            rows = [index[i] for i in ids]
            if gold is None:
                gold = run.gold[rows]
            elif not np.array_equal(gold, run.gold[rows]):
                raise PredictionsError(
                    "two runs disagree on the gold labels of the same test comments: their test sets are "
                    "different versions of KOTE; compare runs made on the same data"
                )
            per_seed.append(run.predicted[rows])
        stacked[arm] = np.stack(per_seed)
    return seeds, ids, gold, stacked["a"], stacked["b"]


def compare_cells(cells: list[Cell], names: list[str], *, resamples: int, seed: int) -> list[dict[str, Any]]:
    """Every pair of cells (earlier A, later B, in sweep order) that shares seeds and test comments: B − A.

    Replicates depend only on the comments, the number of seeds and the bootstrap seed, so an arm's are
    computed once per set of shared comments and seeds and reused in every pair that has the same set.
    """
    predictions = [cell_predictions(cell) for cell in cells]
    comparisons = []
    memo: dict[tuple[Any, ...], ArmStatistics] = {}

    def statistics(arm: int, seeds: list[Any], ids: list[str], gold: np.ndarray, predicted: np.ndarray):
        key = (arm, tuple(map(str, seeds)), tuple(ids))
        if key not in memo:
            draws = Resamples.draw(len(ids), len(seeds), resamples, seed)
            memo[key] = ArmStatistics.compute(gold, predicted, draws)
        return memo[key]

    for (i, a), (j, b) in itertools.combinations(enumerate(predictions), 2):
        aligned = _align(a, b)
        if aligned is None:
            continue
        seeds, ids, gold, predicted_a, predicted_b = aligned
        result = compare_arms(
            statistics(i, seeds, ids, gold, predicted_a), statistics(j, seeds, ids, gold, predicted_b)
        )
        buckets = label_buckets(gold)
        counts = gold.sum(0)
        comparisons.append(
            {
                "a": names[i],
                "b": names[j],
                "seeds": seeds,
                "comments": len(ids),
                "resamples": resamples,
                "bootstrap_seed": seed,
                "macro_f1": result["macro_f1"].to_json(),
                "micro_f1": result["micro_f1"].to_json(),
                "buckets": {
                    name: {
                        **result[f"{name}_macro_f1"].to_json(),
                        "labels": [LABELS[k] for k in labels],
                        "gold_comments": [int(counts[labels].min()), int(counts[labels].max())],
                    }
                    for name, labels in buckets.items()
                },
                "per_label_f1": {
                    LABELS[k]: {**d.to_json(), "gold_comments": int(counts[k])}
                    for k, d in enumerate(result["per_label_f1"])
                },
            }
        )
    return comparisons


def paired_section(cells: list[Cell], names: list[str], *, resamples: int, seed: int) -> dict[str, Any]:
    """report.json's ``paired`` block: the procedure, its settings and every comparison."""
    return {
        "procedure": PROCEDURE,
        "resamples": resamples,
        "bootstrap_seed": seed,
        "confidence": 0.95,
        "comparisons": compare_cells(cells, names, resamples=resamples, seed=seed) if resamples else [],
    }
