"""Group a sweep's jobs into cells (same overrides but the seed) and summarise each metric over seeds.

Why: a single seed of a fine-tune can move macro-F1 by a few points; a bar is only worth showing with its
spread and its number of runs. The std is the sample std (n - 1), undefined for a single run.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from emoreason.sweeps.collect import JobResult
from emoreason.training.overrides import SEED_KEY, split_override

METRICS: dict[str, tuple[str, ...]] = {
    "test_macro_f1": ("test", "tuned", "macro_f1"),
    "test_micro_f1": ("test", "tuned", "micro_f1"),
    "test_weighted_f1": ("test", "tuned", "weighted_f1"),
    "test_macro_f1@0.5": ("test", "at_0.5", "macro_f1"),
    "test_macro_f1@0.3": ("test", "at_0.3", "macro_f1"),
    "test_micro_f1@0.3": ("test", "at_0.3", "micro_f1"),
    "test_macro_auroc": ("test", "macro_auroc"),
    "val_macro_f1": ("val", "tuned", "macro_f1"),
}
"""Reported figures and where they live in metrics.json ("tuned": at the threshold tuned on validation;
"at_0.3" and macro-AUROC: the KOTE paper's protocol). Runs from before a figure existed just lack it."""
PRIMARY_METRIC = "test_macro_f1"
"""The paper's Fig. 3 figure: test macro-F1."""
CHOICE_KEYS = ("data", "model", "method")
"""Config groups every cell is described by, however they were chosen (directly or via an experiment)."""


@dataclass(frozen=True)
class Stat:
    values: tuple[float, ...]

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if len(self.values) > 1 else None


def figure(payload: dict[str, Any], metric: str) -> float | None:
    """``metric`` (a :data:`METRICS` key) from a metrics.json-shaped payload; None where it is absent."""
    value: Any = payload
    for key in METRICS[metric]:
        if not isinstance(value, dict) or value.get(key) is None:
            return None
        value = value[key]
    return float(value)


def figure_stat(payloads: list[dict[str, Any]], metric: str) -> Stat:
    """``metric`` over the payloads that have it."""
    return Stat(tuple(v for v in (figure(p, metric) for p in payloads) if v is not None))


@dataclass
class Cell:
    overrides: tuple[str, ...]
    choices: dict[str, str | None]
    jobs: list[JobResult] = field(default_factory=list)

    @property
    def finished(self) -> list[JobResult]:
        return [j for j in self.jobs if j.status == "finished"]

    @property
    def seeds(self) -> list[Any]:
        return [j.metrics.get("seed") for j in self.finished if j.metrics is not None]

    @property
    def backbone(self) -> str | None:
        """The network name in metrics.json (e.g. ``beomi/KcELECTRA-base-v2022``); None before a run ends."""
        return next((j.metrics.get("model") for j in self.finished if j.metrics is not None), None)

    def stat(self, metric: str) -> Stat:
        return figure_stat([j.metrics for j in self.finished if j.metrics is not None], metric)

    def count(self, status: str) -> int:
        return sum(j.status == status for j in self.jobs)

    def columns(self, keys: list[str]) -> dict[str, str]:
        values = dict(split_override(line) for line in self.overrides)
        return {key: values.get(key, "") for key in keys}


def _seed_order(job: JobResult) -> tuple[int, int, str]:
    """Numeric seeds in order, then other values, then jobs without a ``seed=`` override."""
    value = dict(split_override(line) for line in job.overrides).get(SEED_KEY)
    if value is None:
        return (2, 0, "")
    return (0, int(value), "") if value.lstrip("-").isdigit() else (1, 0, value)


def group_cells(jobs: list[JobResult]) -> list[Cell]:
    """Cells in the grid order of their lowest seed, each cell's jobs by seed.

    Hydra numbers the jobs of each ``train.py -m`` invocation from 0, and a sweep folder may gather several
    (one per seed, two processes side by side, a rerun of a few arms): ordered by job number alone, the
    arms, and with them the direction of each paired comparison, changed as jobs finished.
    """
    cells: dict[tuple[str, ...], Cell] = {}
    for job in sorted(jobs, key=lambda j: (_seed_order(j), j.num, str(j.path))):
        cells.setdefault(job.cell, Cell(job.cell, job.choices)).jobs.append(job)
    return list(cells.values())


def varying_keys(cells: list[Cell]) -> list[str]:
    """Override keys, other than the :data:`CHOICE_KEYS` groups, whose value differs between cells."""
    per_cell = [dict(split_override(line) for line in c.overrides) for c in cells]
    keys = sorted({k for values in per_cell for k in values} - set(CHOICE_KEYS))
    return [k for k in keys if len({values.get(k) for values in per_cell}) > 1]
