"""Experiment loggers from the ``logger`` config group (wandb, csv, none), W&B run identity, result tables.

W&B runs of one sweep share a ``group`` (the sweep folder), take their ``job_type`` from the overrides minus
the seed (so W&B can average the seeds of one configuration) and their ``name`` from all the overrides (the
job folder's name); each override is also a tag. Explicit ``logger.wandb.*`` values win over these.
The CSV log (``csv/metrics.csv``, also written beside W&B) continues across a resume in the run's own
folder instead of being deleted (:class:`CSVLogger`, :class:`ResumedLogs`), and so does an online W&B run
(:func:`continued_wandb_run`).
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import logging
import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.fabric.loggers.csv_logs import _ExperimentWriter
from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch import loggers as lightning_loggers
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import Logger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

from emoreason.data.kote import KoteRow
from emoreason.io import atomic_write
from emoreason.labels import LABELS
from emoreason.training.overrides import identity_overrides

log = logging.getLogger(__name__)

WANDB_TAG_MAX = 64
"""W&B rejects longer tags; job_type has the same limit."""
WANDB_NAME_MAX = 128
SAMPLE_PREDICTIONS = 64
"""Test rows shown in the sample-predictions table, spread evenly over the split."""


class ContinuingWriter(ExperimentWriter):
    """Lightning's CSV writer, continuing an earlier ``metrics.csv`` in its folder instead of deleting it.

    Lightning 2.6 (``_ExperimentWriter._check_log_dir_exists``) deletes the file as soon as a writer opens
    its folder, so a run resumed in its own folder (a sweep job after an interruption) lost the log of every
    epoch before the interruption. Here the earlier file stays until this run first saves. A run that
    resumes from a checkpoint (:attr:`resume_step`, its global step, set by :class:`ResumedLogs`) keeps the
    rows logged before that step, drops those logged at or after it (the interrupted run's work after the
    checkpoint, which this run does again) and appends under the union of the columns. Any other run (one
    started over, an evaluation), or an earlier file that cannot be read as a CSV log with a numeric step in
    every row, moves it aside to ``metrics.<n>.csv``: never deleted, never a reason to fail.
    """

    resume_step: int | None = None

    def _check_log_dir_exists(self) -> None:
        """Read the earlier file, if any (``__init__`` calls this where Lightning deleted it)."""
        path = Path(self.metrics_file_path)
        self._earlier: list[tuple[float, dict[str, str]]] | None = None
        self._earlier_keys: list[str] = []
        if not path.exists():
            return
        self._earlier = []
        try:
            with path.open(encoding="utf-8-sig", newline="") as handle:
                reader = csv.DictReader(handle)
                self._earlier = [(float(row["step"]), row) for row in reader]
                self._earlier_keys = list(reader.fieldnames or [])
        except (OSError, UnicodeDecodeError, csv.Error, KeyError, TypeError, ValueError) as exc:
            log.warning("%s is not a readable CSV log (%s); it will be moved aside", path, exc)
            self._earlier = []

    def save(self) -> None:
        if self._earlier is not None and self.metrics:
            self._continue_earlier()
        super().save()

    def _continue_earlier(self) -> None:
        assert self._earlier is not None
        path = Path(self.metrics_file_path)
        step = self.resume_step
        kept = [row for row_step, row in self._earlier if step is not None and row_step < step]
        self._earlier = None
        if not kept:
            aside = next(
                p for n in itertools.count(1) if not (p := path.with_name(f"metrics.{n}.csv")).exists()
            )
            path.rename(aside)
            why = "this run does not resume" if step is None else f"no row before the resumed step {step}"
            log.info("%s moved to %s: %s", path, aside.name, why)
            return
        with atomic_write(path) as handle:  # csv's own line ends, as Lightning's writer leaves them
            writer = csv.DictWriter(handle, fieldnames=self._earlier_keys, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(kept)
        self.metrics_keys = list(self._earlier_keys)


class CSVLogger(lightning_loggers.CSVLogger):
    """``CSVLogger`` with ``metrics.csv`` continued across a resume (:class:`ContinuingWriter`)."""

    @property
    @rank_zero_experiment
    def experiment(self) -> _ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = ContinuingWriter(log_dir=self.log_dir)
        return self._experiment

    @rank_zero_only
    def resumed_at(self, step: int) -> None:
        """This run resumes from a checkpoint of global step ``step``: rows logged before it are kept."""
        experiment = self.experiment
        assert isinstance(experiment, ContinuingWriter)
        experiment.resume_step = step


def in_own_folder(checkpoint: str | Path, save_dir: str | Path) -> bool:
    """Whether a fit resuming from ``checkpoint`` continues the run logged in ``save_dir`` (the checkpoint
    lies inside it, links resolved): the one rule both the CSV log and the W&B run follow."""
    return Path(checkpoint).resolve().is_relative_to(Path(save_dir).resolve())


class ResumedLogs(Callback):
    """Tells every :class:`CSVLogger` of a fit that resumes from a checkpoint in the logger's own folder
    (the run's: a sweep job's, or ``paths.output_dir`` given again) the checkpoint's global step; a
    checkpoint from elsewhere does not continue this folder's log.

    ``on_load_checkpoint`` is the one hook that sees the checkpoint before anything is logged (Lightning
    restores the step count only after ``on_fit_start``), and it runs only when a fit resumes.
    """

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, CSVLogger) and in_own_folder(str(trainer.ckpt_path), logger.save_dir):
                logger.resumed_at(int(checkpoint["global_step"]))


def truncate_distinct(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters; a cut one ends in a hash of the whole, so cuts stay distinct."""
    if len(text) <= limit:
        return text
    return f"{text[: limit - 9]}~{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def wandb_run_identity(
    overrides: Sequence[str], exclude_keys: Sequence[str], sweep_dir: str | None
) -> dict[str, Any]:
    """group / job_type / name / tags of the W&B run of a job with these Hydra task overrides.

    ``sweep_dir`` is the multirun folder (None for a single run, which gets no group): its last two parts,
    ``<date>/<time>`` by default, name the group, so every job of one sweep, reruns included, shares it and
    no two sweeps do.
    """
    job = identity_overrides(overrides, exclude_keys)
    cell = identity_overrides(overrides, exclude_keys, drop_seed=True)
    return {
        "group": "/".join(Path(sweep_dir).parts[-2:]) if sweep_dir else None,
        "job_type": truncate_distinct(",".join(cell), WANDB_TAG_MAX) or "train",
        "name": truncate_distinct(",".join(job), WANDB_NAME_MAX) or None,
        "tags": [truncate_distinct(line, WANDB_TAG_MAX) for line in job],
    }


def _wandb_init_args(entry: DictConfig) -> dict[str, Any]:
    """W&B identity for the current Hydra job, filling only what ``entry`` leaves null (tags are added)."""
    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    derived = wandb_run_identity(
        list(hydra_cfg.overrides.task),
        list(hydra_cfg.job.config.override_dirname.exclude_keys),
        hydra_cfg.sweep.dir if multirun else None,
    )
    args = {key: derived[key] for key in ("group", "job_type", "name") if entry.get(key) is None}
    args["tags"] = list(dict.fromkeys([*(entry.get("tags") or []), *derived["tags"]]))
    return args


WANDB_RUN_FOLDER = re.compile(r"(?P<offline>offline-)?run-(?P<started>\d{8}_\d{6})-(?P<id>.+)")
"""A run's folder under ``<save_dir>/wandb``, as wandb 0.31 names it: ``[offline-]run-<date>_<time>-<id>``."""


def continued_wandb_run(save_dir: str | Path, ckpt_path: str | None, *, offline: bool) -> str | None:
    """The id of the W&B run this fit continues, or None for a new run.

    A fit resuming from a checkpoint inside ``save_dir`` (an interrupted sweep job, or a run resumed in its
    own folder) continues the run of the attempt that wrote that checkpoint — the latest one started
    before the checkpoint's last change, so a later run into the same folder (an evaluation, a retrain
    that died before saving) is never joined — and W&B holds one run per job, not a crashed part plus a
    repeat that a group average counts twice (Lightning's ``WandbLogger`` already passes
    ``resume="allow"``; W&B's "Resume a run" guide). Online only, both attempts: ``wandb sync`` of a
    second offline folder with the same id replaces the first one's history instead of appending to it
    (wandb/wandb#3841, #5865), so offline attempts stay separate runs, the interrupted one marked failed.
    """
    if offline or ckpt_path is None or not Path(ckpt_path).exists() or not in_own_folder(ckpt_path, save_dir):
        return None
    # the checkpoint's last change, in the local time and format of W&B's folder names
    written = datetime.fromtimestamp(Path(ckpt_path).stat().st_mtime).strftime("%Y%m%d_%H%M%S")
    attempts = [
        m
        for p in (Path(save_dir) / "wandb").glob("*run-*")
        if p.is_dir() and (m := WANDB_RUN_FOLDER.fullmatch(p.name)) and m["started"] <= written
    ]
    writer = max(attempts, key=lambda m: m["started"], default=None)
    return None if writer is None or writer["offline"] else writer["id"]


def _is_wandb(entry: DictConfig) -> bool:
    return str(entry._target_).rsplit(".", 1)[-1] == WandbLogger.__name__


WANDB_OFFLINE_MODES = frozenset({"offline", "dryrun", "disabled"})


def _runs_offline(entry: DictConfig) -> bool:
    """Whether the run will be offline: asked for (``offline``, or ``mode`` passed on to ``wandb.init``),
    or W&B's own ``WANDB_MODE`` says so."""
    modes = {entry.get("mode"), os.environ.get("WANDB_MODE")}
    return bool(entry.get("offline")) or not modes.isdisjoint(WANDB_OFFLINE_MODES)


RUN_CHOSEN_BY_USER = ("id", "version", "fork_from", "resume_from")
"""``logger.wandb.*`` keys that say which W&B run to write to (``WandbLogger`` and ``wandb.init``)."""


def _wandb_args(entry: DictConfig, resumed_from: str | None) -> dict[str, Any]:
    """Identity from the Hydra job plus the id of the run a resumed fit continues; the user's choice of run
    (:data:`RUN_CHOSEN_BY_USER`, or W&B's ``WANDB_RUN_ID``) wins."""
    args = _wandb_init_args(entry) if HydraConfig.initialized() else {}
    save_dir = entry.get("save_dir") or entry.get("dir")
    chosen = any(entry.get(key) is not None for key in RUN_CHOSEN_BY_USER) or os.environ.get("WANDB_RUN_ID")
    if save_dir is not None and not chosen:
        run_id = continued_wandb_run(save_dir, resumed_from, offline=_runs_offline(entry))
        if run_id is not None:
            log.info("W&B: continuing run %s of the attempt this fit resumes", run_id)
            args["id"] = run_id
    return args


def build_loggers(logger_cfg: DictConfig, run_config: dict[str, Any]) -> list[Logger]:
    """Instantiate every configured logger and record the (already redacted) resolved config in each."""
    loggers: list[Logger] = []
    fit_resumes_from = run_config.get("ckpt_path") if run_config.get("train", True) else None
    for entry in logger_cfg.values():
        if entry is None:
            continue
        identity = _wandb_args(entry, fit_resumes_from) if _is_wandb(entry) else {}
        loggers.append(instantiate(entry, **identity))
    for logger in loggers:
        logger.log_hyperparams(run_config)
    return loggers


@rank_zero_only
def log_final_metrics(loggers: list[Logger], metrics: dict[str, float], step: int) -> None:
    for logger in loggers:
        logger.log_metrics(metrics, step=step)
        logger.save()


def per_label_table(report: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Test F1 of each of the 44 labels, at the tuned threshold and at 0.5."""
    tuned, fixed = report["test"]["tuned"]["per_label_f1"], report["test"]["at_0.5"]["per_label_f1"]
    return ["label", "f1", "f1@0.5"], [[label, tuned[label], fixed[label]] for label in LABELS]


def sample_predictions_table(
    records: Sequence[dict[str, Any]], rows: Sequence[KoteRow], limit: int = SAMPLE_PREDICTIONS
) -> tuple[list[str], list[list[Any]]]:
    """Up to ``limit`` test rows, evenly spread: text, gold and predicted labels, reasoning, generated text.

    ``records`` are the ``test_predictions.jsonl`` lines of ``rows`` (plain dicts: this layer sits below
    evaluation). ``reasoning`` is the row's own (a reasoning dataset joined in), empty when it has none;
    ``generated`` is what a generative method wrote for it (reasoning and label line), empty for a classifier.
    """
    picked = range(0, len(records), max(1, len(records) // limit))[:limit]
    data = []
    for i in picked:
        r = records[i]
        gold, predicted = ", ".join(r["gold"]), ", ".join(r["predicted"])
        data.append([r["id"], r["text"], gold, predicted, rows[i].reasoning or "", r.get("generated", "")])
    return ["id", "text", "gold", "predicted", "reasoning", "generated"], data


def log_result_tables(
    loggers: list[Logger],
    report: dict[str, Any],
    records: Sequence[dict[str, Any]],
    rows: Sequence[KoteRow],
    step: int,
) -> None:
    """W&B tables of per-label F1 and of sample test predictions (other loggers have no tables)."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.log_table("test/per_label_f1", *per_label_table(report), step=step)
            logger.log_table("test/sample_predictions", *sample_predictions_table(records, rows), step=step)


@contextmanager
def finishing_wandb() -> Iterator[None]:
    """Always close the W&B run, even on a crash, so runs of a multirun never merge into one.

    A crash ends the run with exit code 1 (``wandb.finish(exit_code=1)``), so W&B shows it failed, as
    ``failure.json`` does, instead of finished. ``teardown`` waits for W&B's background service to write out
    the run: without it the offline run file can still be missing the last metrics when ``train()``
    returns (seen with wandb 0.31), and a ``wandb sync`` started right then would upload an incomplete run.
    """
    exit_code = 1
    try:
        yield
        exit_code = 0
    finally:
        wandb = sys.modules.get("wandb")  # not imported means no run was started; never re-raise from here
        if wandb is not None and wandb.run is not None:
            wandb.finish(exit_code=exit_code)
            wandb.teardown()
