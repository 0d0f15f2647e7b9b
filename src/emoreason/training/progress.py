"""What a training run prints: a progress bar in a terminal, one plain line per epoch elsewhere, a summary.

Why: real runs live where stdout is a file (nohup, CI, SLURM). There a Rich or tqdm bar writes nothing
useful (or a carriage-return soup), so a run looked silent from its model summary to its end. With stdout
not a terminal, :class:`PlainProgress` logs one line per epoch through the ``logging`` module, which Hydra's
job logging sends to stdout and to ``<output dir>/train.log``; :func:`render_summary` is the block the run
ends with. In a terminal the Rich bar stays, refreshed a few times a second (its cost is then nil).
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Mapping
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ProgressBar, RichProgressBar

from emoreason.training.callbacks import best_checkpoint_callback

log = logging.getLogger(__name__)


def progress_bar(refresh_rate: int = 10, stream: Any = None) -> ProgressBar:
    """Lightning's progress callback for where stdout goes: Rich in a terminal, plain lines elsewhere.

    ``refresh_rate`` is in batches (Rich redraws at most that often). Being a ``ProgressBar`` subclass either
    way, the plain one also keeps Lightning from adding its default tqdm bar.
    """
    stream = sys.stdout if stream is None else stream
    return RichProgressBar(refresh_rate=refresh_rate) if stream.isatty() else PlainProgress()


def _format(value: float) -> str:
    return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.0f}"


class PlainProgress(ProgressBar):
    """One ``INFO`` line per training epoch: mean train loss, validation metrics, monitored value, time.

    ``epoch 3/10 | train/loss 0.1523 | val/loss 0.1490 val/macro_f1 0.2113 ... | monitor val/macro_f1_tuned
    0.2541 (best 0.2541) | 41.2 s, 388.1 samples/s``. Validation metrics are those logged for the epoch
    (per-label F1 left out: 44 of them would make the line unreadable); the monitored value is the one the
    checkpoint callback selects on. Samples are the rows of the training batches the epoch ran.
    """

    def __init__(self) -> None:
        super().__init__()
        self._enabled = True
        self._started = 0.0
        self._samples = 0
        self._loss_sum = 0.0
        self._batches = 0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started, self._samples, self._loss_sum, self._batches = time.perf_counter(), 0, 0.0, 0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if loss is not None:
            self._loss_sum += float(loss.detach())
            self._batches += 1
        if isinstance(batch, Mapping) and "input_ids" in batch:
            self._samples += int(batch["input_ids"].shape[0])

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not (self._enabled and trainer.is_global_zero):
            return
        seconds = time.perf_counter() - self._started
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        parts = [f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"]
        if self._batches:
            parts.append(f"train/loss {_format(self._loss_sum / self._batches)}")
        val = [
            f"{k} {_format(v)}"
            for k, v in sorted(metrics.items())
            if k.startswith("val/") and "/f1/" not in k
        ]
        if val:
            parts.append(" ".join(val))
        checkpoint = best_checkpoint_callback(trainer)
        if checkpoint is not None and checkpoint.monitor in metrics:
            best = checkpoint.best_model_score
            best_text = f" (best {_format(float(best))})" if best is not None else ""
            parts.append(f"monitor {checkpoint.monitor} {_format(metrics[checkpoint.monitor])}{best_text}")
        rate = self._samples / seconds if seconds > 0 else math.nan
        parts.append(f"{seconds:.1f} s, {rate:.1f} samples/s")
        log.info("%s", " | ".join(parts))


def wandb_location(loggers: list[Any]) -> str | None:
    """The W&B run's URL, or for an offline run its folder and the command that uploads it; None without."""
    from lightning.pytorch.loggers import WandbLogger

    run = next((lg.experiment for lg in loggers if isinstance(lg, WandbLogger)), None)
    if run is None or not hasattr(run, "dir"):
        return None
    if not run.offline and run.url:
        return f"W&B run: {run.url}"
    folder = run.dir.removesuffix("/files")
    return f"W&B offline run: {folder} (upload: wandb sync {folder})"


def render_summary(
    report: Mapping[str, Any], output_dir: str, *, epochs: int, wandb_line: str | None = None
) -> str:
    """The block a run ends with: test F1 at both thresholds, wall time, throughput and where things are.

    ``report`` is the metrics.json payload (:func:`emoreason.train.train`); throughput is training rows ×
    epochs run over the whole wall time (data loading and final scoring included), so it is a lower bound.
    """
    wall = float(report.get("wall_time_s", math.nan))
    lines = ["=" * 60, "Summary"]
    if "test" in report:
        tuned, fixed = report["test"]["tuned"], report["test"]["at_0.5"]
        lines += [
            f"  test macro-F1 {tuned['macro_f1']:.4f}  micro-F1 {tuned['micro_f1']:.4f}"
            f"  (threshold {report['threshold']:.2f}, tuned on val)",
            f"  test macro-F1 {fixed['macro_f1']:.4f}  micro-F1 {fixed['micro_f1']:.4f}  (threshold 0.50)",
        ]
    else:
        lines.append("  no test figures (test=false, or not rank 0)")
    rows = report.get("data_sizes", {}).get("train", 0) * epochs
    rate = f", {rows / wall:.1f} train rows/s" if rows and wall > 0 else ""
    lines.append(f"  wall time {wall:.1f} s{rate}")
    lines.append(f"  outputs: {output_dir}")
    if wandb_line:
        lines.append(f"  {wandb_line}")
    lines.append("=" * 60)
    return "\n".join(lines)


def log_summary(report: Mapping[str, Any], trainer: L.Trainer, output_dir: Any) -> None:
    """Log :func:`render_summary` on rank 0 (stdout and train.log), with the trainer's epochs and W&B run."""
    if trainer.is_global_zero:
        summary = render_summary(
            report, str(output_dir), epochs=trainer.current_epoch, wandb_line=wandb_location(trainer.loggers)
        )
        log.info("\n%s", summary)
