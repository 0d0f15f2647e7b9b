"""One sweep job: skipped when it already finished, recorded when it crashes.

Why: an ablation is dozens of jobs and hours of GPU time; one may crash (a bad cell, out of memory) and a
whole sweep may be interrupted. Rerunning the same command into the same ``hydra.sweep.dir`` must redo only
the jobs that did not finish, and a crash must leave a record the report can show next to the numbers.

A job folder is in exactly one of three states, which :mod:`emoreason.sweeps.collect` reads back:

- ``metrics.json`` present: finished with the config in ``config.yaml``;
- ``failure.json`` present: crashed; error type, message and traceback;
- neither: never started, still running, or killed without a Python exception (e.g. out of host memory).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from emoreason.config import TrainConfig, redact, validate
from emoreason.evaluation.files import METRICS_FILE
from emoreason.evaluation.records import read_metrics
from emoreason.io import write_json_atomic
from emoreason.sweeps.files import CONFIG_FILE, FAILURE_FILE
from emoreason.training.checkpoints import current_targets

log = logging.getLogger(__name__)

RESULT_NEUTRAL_KEYS = frozenset({"logger", "tags"})
"""Top-level keys that change where a run reports, not what it computes: ignored when deciding to skip."""

Task = Callable[[DictConfig], dict[str, Any]]


def comparable_config(run_config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in run_config.items() if k not in RESULT_NEUTRAL_KEYS}


def resolved_config(cfg: DictConfig) -> dict[str, Any]:
    """The config as ``train`` saves it to ``config.yaml``: validated, resolved, secrets redacted."""
    container = OmegaConf.to_container(validate(cfg, TrainConfig), resolve=True)
    assert isinstance(container, dict)
    return redact(container)


def finished_report(output_dir: Path, run_config: dict[str, Any]) -> dict[str, Any] | None:
    """The stored metrics.json payload if ``output_dir`` finished this very config, else None.

    A finished folder whose config differs (the sweep file was edited between runs) is logged and run again.
    """
    metrics, saved = output_dir / METRICS_FILE, output_dir / CONFIG_FILE
    if not (metrics.exists() and saved.exists()):
        return None
    stored = OmegaConf.to_container(OmegaConf.load(saved), resolve=False)
    assert isinstance(stored, dict)
    # In today's form: a run from before a class moved or the optimizer became a target is the same run.
    before: dict[str, Any] = current_targets({str(key): value for key, value in stored.items()})
    if comparable_config(before) != comparable_config(run_config):
        changed = sorted(k for k in run_config.keys() | before.keys() if before.get(k) != run_config.get(k))
        log.warning("%s finished with another config (%s differ): running it again", output_dir, changed)
        return None
    return read_metrics(metrics).to_json()


def record_failure(output_dir: Path, exc: BaseException, overrides: Sequence[str]) -> Path:
    """Write ``failure.json``: what crashed, with which overrides, and the traceback to debug it."""
    return write_json_atomic(
        output_dir / FAILURE_FILE,
        {
            "error": type(exc).__name__,
            "message": str(exc),
            "overrides": list(overrides),
            "failed_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "traceback": "".join(traceback.format_exception(exc)),
        },
    )


def run_job(
    cfg: DictConfig, task: Task, *, output_dir: Path, overrides: Sequence[str], skip_finished: bool
) -> dict[str, Any]:
    """Run ``task(cfg)`` unless ``skip_finished`` and the folder already holds its result.

    A crash is recorded in ``failure.json`` and re-raised, so Hydra still marks the job failed (its
    sweepers decide what follows: the basic one finishes the other jobs, then exits non-zero). Results of a
    previous attempt are removed first, so the folder never shows a stale state.
    """
    try:
        if skip_finished:
            done = finished_report(output_dir, resolved_config(cfg))  # a bad config fails here, recorded
            if done is not None:
                log.info("skipping finished job %s (delete its %s to run it again)", output_dir, METRICS_FILE)
                return done
        for stale in (METRICS_FILE, FAILURE_FILE):
            (output_dir / stale).unlink(missing_ok=True)
        return task(cfg)
    except Exception as exc:
        path = record_failure(output_dir, exc, overrides)
        log.error("job failed (%s: %s); recorded in %s", type(exc).__name__, exc, path)
        raise


def run_hydra_job(cfg: DictConfig, task: Task) -> dict[str, Any]:
    """:func:`run_job` for the job Hydra is running now: finished jobs are skipped in multirun only."""
    hydra_cfg = HydraConfig.get()
    return run_job(
        cfg,
        task,
        output_dir=Path(cfg.paths.output_dir),
        overrides=list(hydra_cfg.overrides.task),
        skip_finished=hydra_cfg.mode == RunMode.MULTIRUN,
    )
