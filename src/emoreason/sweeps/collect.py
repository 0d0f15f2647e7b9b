"""Read a sweep folder back: one :class:`JobResult` per job folder, whatever state the job ended in.

Why: the report must be rebuildable from files alone, after the fact, on another machine, from any launcher
(local, SLURM), and must show crashed and unfinished jobs next to the finished ones rather than hide them.
A job folder is any folder with Hydra's ``.hydra/hydra.yaml``; its overrides come from there, its result
from ``metrics.json`` / ``failure.json`` (see :mod:`emoreason.sweeps.jobs`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from omegaconf import OmegaConf

from emoreason.evaluation.files import METRICS_FILE
from emoreason.evaluation.records import read_metrics
from emoreason.sweeps.files import FAILURE_FILE
from emoreason.training.overrides import identity_overrides

Status = Literal["finished", "failed", "incomplete"]


@dataclass(frozen=True)
class JobResult:
    path: Path
    num: int
    """Hydra's job number within its ``train.py -m`` invocation: the grid order (``group_cells``)."""
    overrides: tuple[str, ...]
    """Identity overrides, seed included (the folder name)."""
    cell: tuple[str, ...]
    """Identity overrides without the seed: jobs that differ only in seed share a cell."""
    choices: dict[str, str | None]
    """Hydra's resolved config-group choices (data, model, method, ...), wherever they were set."""
    status: Status
    metrics: dict[str, Any] | None = None
    error: str | None = None


class NotASweepError(FileNotFoundError):
    """The folder given is not a sweep (``train.py -m``) folder: missing, empty, or a single run."""


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def read_job(job_dir: Path) -> JobResult:
    hydra = OmegaConf.load(job_dir / ".hydra" / "hydra.yaml").hydra
    if hydra.get("mode") == "RUN":
        raise NotASweepError(
            f"{job_dir} is a single run (train.py without -m), not a sweep job: pass a folder of train.py -m"
        )
    overrides = list(hydra.overrides.task)
    exclude = list(hydra.job.config.override_dirname.exclude_keys)
    metrics_file, failure = job_dir / METRICS_FILE, _read_json(job_dir / FAILURE_FILE)
    metrics = read_metrics(metrics_file).to_json() if metrics_file.exists() else None
    status: Status = "finished" if metrics is not None else "failed" if failure is not None else "incomplete"
    return JobResult(
        path=job_dir,
        num=int(hydra.job.num),
        overrides=tuple(identity_overrides(overrides, exclude)),
        cell=tuple(identity_overrides(overrides, exclude, drop_seed=True)),
        choices={k: v for k, v in hydra.runtime.choices.items() if not k.startswith("hydra/")},
        status=status,
        metrics=metrics,
        error=f"{failure['error']}: {failure['message']}" if failure is not None else None,
    )


def collect_jobs(sweep_dir: str | Path) -> list[JobResult]:
    """Every job under ``sweep_dir`` in grid order, nested too (a ``/`` in an override nests a folder)."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise NotASweepError(f"{sweep_dir} is not a folder: pass a sweep folder, e.g. multirun/<date>/<time>")
    jobs = [read_job(p.parent.parent) for p in sweep_dir.rglob(".hydra/hydra.yaml")]
    if not jobs:
        raise NotASweepError(f"no Hydra job folders (*/.hydra/hydra.yaml) under {sweep_dir}")
    return sorted(jobs, key=lambda j: (j.num, str(j.path)))
