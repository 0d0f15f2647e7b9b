"""One sweep job: skipped when it already finished, recorded when it crashes.

Why: an ablation is dozens of jobs and hours of GPU time; one may crash (a bad cell, out of memory) and a
whole sweep may be interrupted. Rerunning the same command into the same ``hydra.sweep.dir`` must redo only
the jobs that did not finish, and a crash must leave a record the report can show next to the numbers.

A job folder is in exactly one of three states, which :mod:`emoreason.sweeps.collect` reads back:

- ``metrics.json`` present: finished with the config in ``config.yaml``;
- ``failure.json`` present: crashed; error type, message and traceback;
- neither: never started, still running, or killed without a Python exception (e.g. out of host memory).

A job killed after an epoch (``kill``, a preempted node, a closed laptop) resumes on the rerun from its own
``checkpoints/last.ckpt`` when the config is unchanged, as ``ckpt_path=`` would: a 10-epoch job killed in its
ninth epoch loses that epoch, not the eight before it.
"""

from __future__ import annotations

import logging
import shutil
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from emoreason.config import TrainConfig, redact, validate
from emoreason.evaluation.files import FLOORS_FILE, METRICS_FILE, PREDICTIONS_FILE
from emoreason.evaluation.records import read_metrics
from emoreason.io import write_json_atomic
from emoreason.sweeps.files import CONFIG_FILE, FAILURE_FILE
from emoreason.training.callbacks import REPLACED_CALLBACKS
from emoreason.training.checkpoints import (
    CheckpointError,
    current_targets,
    renamed_targets,
    resume_weights_only,
)

log = logging.getLogger(__name__)

RESULT_NEUTRAL_KEYS = frozenset({"logger", "tags", "trust_checkpoint"})
"""Top-level keys that change where a run reports or what it may unpickle, not what it computes: ignored
when deciding to skip or resume a job (``trust_checkpoint=true`` is what a refused resume asks for)."""

Task = Callable[[DictConfig], dict[str, Any]]


def comparable_config(run_config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in run_config.items() if k not in RESULT_NEUTRAL_KEYS}


def resolved_config(cfg: DictConfig) -> dict[str, Any]:
    """The config as ``train`` saves it to ``config.yaml``: validated, resolved, secrets redacted."""
    container = OmegaConf.to_container(validate(cfg, TrainConfig), resolve=True)
    assert isinstance(container, dict)
    return redact(container)


def last_checkpoint(run_config: dict[str, Any]) -> Path | None:
    """Where the job's ``LastCheckpoint`` callback writes ``last.ckpt``; None when the config drops it."""
    callback = run_config.get("callbacks", {}).get("last_checkpoint")
    if not callback:
        return None
    return Path(callback["dirpath"]) / f"{callback.get('filename', 'last')}.ckpt"


def config_differences(output_dir: Path, run_config: dict[str, Any]) -> list[str] | None:
    """Top-level keys in which ``output_dir``'s ``config.yaml`` differs from ``run_config``; None without one.

    A job that resumed from its own ``last.ckpt`` saved that path as ``ckpt_path``; it compares as the
    ``ckpt_path: null`` it was started with. Stock callbacks compare as the subclasses that replaced them
    (:data:`~emoreason.training.callbacks.REPLACED_CALLBACKS`).
    """
    saved = output_dir / CONFIG_FILE
    if not saved.exists():
        return None
    stored = OmegaConf.to_container(OmegaConf.load(saved), resolve=False)
    assert isinstance(stored, dict)
    # In today's form: a run from before a class moved or the optimizer became a target is the same run.
    before: dict[str, Any] = current_targets({str(key): value for key, value in stored.items()})
    if before.get("ckpt_path") is not None and Path(before["ckpt_path"]) == last_checkpoint(before):
        before["ckpt_path"] = None
    before, now = (renamed_targets(comparable_config(c), REPLACED_CALLBACKS) for c in (before, run_config))
    return sorted(k for k in now.keys() | before.keys() if before.get(k) != now.get(k))


def finished_report(output_dir: Path, changed: list[str] | None) -> dict[str, Any] | None:
    """The stored metrics.json payload if ``output_dir`` finished this very config, else None.

    ``changed``: :func:`config_differences` of the folder and the job's config now. A finished folder whose
    config differs (the sweep file was edited between runs) is logged and run again.
    """
    metrics = output_dir / METRICS_FILE
    if not metrics.exists() or changed is None:
        return None
    if changed:
        log.warning("%s finished with another config (%s differ): running it again", output_dir, changed)
        return None
    return read_metrics(metrics).to_json()


def resumable_checkpoint(
    output_dir: Path, run_config: dict[str, Any], changed: list[str] | None
) -> Path | None:
    """The ``last.ckpt`` an interrupted earlier attempt of this very config left, if it can be resumed from.

    None when there is none, when the job never trained (``train=false``), or when ``ckpt_path`` is set by
    hand (the job resumes from that). When another config wrote ``last.ckpt`` (the config changed, or no
    ``config.yaml`` says which run wrote it), its folder of checkpoints is moved to ``checkpoints.stale``
    (replacing an earlier one), with the reason logged, and the job starts over: left in place, a later
    rerun would resume from it and report another run's model as this config's. One
    this config wrote that cannot be read safely (half-written by the kill; a file or ZeRO folder only
    ``trust_checkpoint=true`` may unpickle) is left for the new attempt to overwrite, and the job starts
    over.
    """
    path = last_checkpoint(run_config)
    if path is None or not path.exists() or not run_config.get("train"):
        return None
    if run_config.get("ckpt_path") is not None:
        log.info("%s: resuming from ckpt_path as set, not from the job's own %s", output_dir, path.name)
        return None
    if changed == []:
        try:
            resume_weights_only(path, trust=bool(run_config.get("trust_checkpoint")))
        except CheckpointError as exc:  # half-written by the kill, or only resumable with trust_checkpoint
            log.warning("not resuming the interrupted job in %s: %s; starting it over", output_dir, exc)
            return None
        return path
    reason = f"{', '.join(changed)} differ" if changed else f"no {CONFIG_FILE} says which run wrote it"
    aside = path.parent.with_name(f"{path.parent.name}.stale")
    log.warning(
        "not resuming the interrupted job in %s from %s: another config wrote it (%s); moving %s to %s and "
        "starting over",
        output_dir,
        path,
        reason,
        path.parent,
        aside,
    )
    shutil.rmtree(aside, ignore_errors=True)  # an earlier config's, set aside before
    path.parent.rename(aside)
    return None


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
    """Run ``task(cfg)`` unless ``skip_finished`` and the folder already holds its result; with
    ``skip_finished`` (a multirun), an interrupted earlier attempt resumes from its ``last.ckpt``.

    A crash is recorded in ``failure.json`` and re-raised, so Hydra still marks the job failed (its
    sweepers decide what follows: the basic one finishes the other jobs, then exits non-zero). Results of a
    previous attempt are removed first, so the folder never shows a stale state.
    """
    try:
        if skip_finished:
            run_config = resolved_config(cfg)  # a bad config fails here, recorded
            changed = config_differences(output_dir, run_config)  # config.yaml read once
            done = finished_report(output_dir, changed)
            if done is not None:
                log.info("skipping finished job %s (delete the folder to run it again)", output_dir)
                return done
            resume = resumable_checkpoint(output_dir, run_config, changed)
            if resume is not None:
                log.info("resuming the interrupted job in %s from %s", output_dir, resume)
                cfg = cfg.copy()
                cfg.ckpt_path = str(resume)
        for stale in (METRICS_FILE, FAILURE_FILE, PREDICTIONS_FILE, FLOORS_FILE):  # the report reads them
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
