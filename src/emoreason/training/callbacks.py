"""Lightning callbacks of our own (the stock ones are configured in ``conf/callbacks``), and the check of
what the monitoring callbacks monitor.

Why: model selection must survive a resume and must not fail after an epoch of work. Lightning's
``ModelCheckpoint`` forgets the best score when a run resumes into another folder, and a monitor that is
never logged only fails once the first validation is over, before ``last.ckpt`` is written.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.accelerators import CUDAAccelerator
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason
from lightning.pytorch.strategies import DeepSpeedStrategy

from emoreason.config import ConfigError
from emoreason.labels import LABELS
from emoreason.training.memory import Precision, plan_network, visible_gpu_memory
from emoreason.training.module import EmotionModule, metric_key
from emoreason.training.strategies import ZeroSetup, zero_of_deepspeed_config

log = logging.getLogger(__name__)

PLANNED_PRECISION: dict[str, Precision] = {
    "bf16-mixed": "bf16-mixed",
    "16-mixed": "bf16-mixed",
    "32-true": "32-true",
}
"""Trainer precisions the planner models (fp16 mixed holds the same bytes as bf16 mixed)."""


class MemoryPlanPrinter(L.Callback):
    """Log the memory plan of the run about to train (rank 0), warning when it will not fit the GPUs.

    Runs in ``setup``: after Lightning has started every process and before the strategy wraps, shards or
    moves the model, so a plan that does not fit is reported before the first allocation fails. Every
    figure comes from the live objects: the built network (LoRA, heads, gradient checkpointing), the
    strategy's own DeepSpeed config, the Trainer's devices, nodes and precision, and the GPUs visible.
    """

    def __init__(self, micro_batch_size: int, seq_len: int) -> None:
        self.micro_batch_size = micro_batch_size
        self.seq_len = seq_len

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit" or not trainer.is_global_zero:
            return
        precision = PLANNED_PRECISION.get(str(trainer.precision))
        strategy = trainer.strategy
        zero = ZeroSetup()
        if isinstance(strategy, DeepSpeedStrategy):
            assert strategy.config is not None  # DeepSpeedStrategy.__init__ fills in a default config
            zero = zero_of_deepspeed_config(strategy.config)
        if precision is None or (zero.stage and precision != "bf16-mixed"):
            log.info("memory plan: not modelled for precision %s with this strategy", trainer.precision)
            return
        memory_plan = plan_network(
            pl_module,
            zero,
            trainer.num_devices,
            trainer.num_nodes,
            micro_batch_size=self.micro_batch_size,
            seq_len=self.seq_len,
            precision=precision,
            visible_gpus=visible_gpu_memory()
            if isinstance(trainer.accelerator, CUDAAccelerator)
            else (0, None),
        )
        log.log(logging.WARNING if memory_plan.fits is False else logging.INFO, "%s", memory_plan.render())


class BestCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` whose best scores survive a resume into another run folder, or a moved one.

    Lightning 2.6 (``ModelCheckpoint.load_state_dict``) restores only ``best_model_path`` when the checkpoint
    folder changed and forgets every score, so the first epoch after the resume became "best" however low
    its score. Here the earlier best files and their scores are always restored, so a later epoch replaces
    them only by beating them. A file no longer where the earlier run wrote it is looked for beside the
    checkpoint resumed from (the run folder was moved); when it is not there either, a warning names it and
    its score stays the one to beat. Files outside this run's folder are never deleted (Lightning's rule).
    """

    _resumed_from: str | None = None

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: Any) -> None:
        self._resumed_from = str(trainer.ckpt_path) if trainer.ckpt_path else None  # before load_state_dict

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict({**state_dict, "dirpath": self.dirpath})  # all of it, whatever the folder
        moved = {path: self._locate(path) for path in self.best_k_models}
        self.best_k_models = {moved[path]: score for path, score in self.best_k_models.items()}
        self.best_model_path = moved.get(self.best_model_path, self.best_model_path)
        self.kth_best_model_path = moved.get(self.kth_best_model_path, self.kth_best_model_path)

    def _locate(self, path: str) -> str:
        """``path`` if it exists, else the file of that name beside the resumed checkpoint, if that exists."""
        if Path(path).exists():
            return path
        beside = Path(self._resumed_from).parent / Path(path).name if self._resumed_from else None
        score = float(self.best_k_models[path])
        if beside is not None and beside.exists():
            log.warning(
                "best checkpoint %s (%s %.4f) is not there; using %s, found beside the checkpoint resumed "
                "from (was the run folder moved?)",
                path,
                self.monitor,
                score,
                beside,
            )
            return str(beside)
        log.warning(
            "best checkpoint %s (%s %.4f) is gone: a later epoch becomes best only by beating that score; if "
            "none does, the weights at the end of training are tested and metrics.json says so",
            path,
            self.monitor,
            score,
        )
        return path


class LastCheckpoint(ModelCheckpoint):
    """``last.ckpt`` at the end of every epoch, and also when a failure comes once the epoch's training and
    validation are both done.

    Lightning saves checkpoints after every other callback's ``on_train_epoch_end``, so a monitoring
    callback that raises there would lose the whole epoch: saving on such a failure keeps it resumable.
    Any earlier failure leaves the previous epoch's ``last.ckpt`` alone, because Lightning resumes a
    checkpoint written after an epoch's last batch as one whose validation is over and skips it: saved
    before its last batch's step, the resume would start from half an epoch; during validation (its
    metrics are not in the checkpoint), from half a validation; before it, with none. It selects nothing,
    so it restores no state on a resume.
    """

    _validated_at: int | None = None
    """Global step of the last validation that started (not the sanity check)."""

    def __init__(self, dirpath: str, filename: str = "last") -> None:
        super().__init__(
            dirpath=dirpath,
            filename=filename,
            monitor=None,
            save_top_k=1,
            enable_version_counter=False,
            save_on_exception=True,
        )

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._validated_at = trainer.global_step

    def _should_save_on_exception(self, trainer: L.Trainer) -> bool:
        loop = trainer.fit_loop.epoch_loop
        progress = loop.batch_progress.current
        # the last batch fetched ("ready") and done with; fetched alone, its step may not have been taken
        trained = loop._num_ready_batches_reached() and progress.completed == progress.ready
        validated = not trainer.validating and (
            self._validated_at == trainer.global_step or not loop._should_check_val_epoch()
        )
        return trained and validated and super()._should_save_on_exception(trainer)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Nothing to restore (and no warning when the run folder changed)."""


REPLACED_CALLBACKS = {
    "lightning.pytorch.callbacks.EarlyStopping": "emoreason.training.callbacks.ResumableEarlyStopping"
}
"""Stock callback → the subclass here that replaced it in ``conf/callbacks``. They differ only on a resume, so
a finished run whose config names the stock one computed what the subclass computes: a sweep rerun compares
stored configs through this table (:func:`emoreason.sweeps.jobs.config_differences`) and does not run
such a job again."""


class ResumableEarlyStopping(EarlyStopping):
    """``EarlyStopping`` whose decision to stop survives a resume, with the configured patience.

    Lightning 2.6 (``EarlyStopping.load_state_dict``) restores the counters and the reason it stopped but
    not the stop itself: a run killed after it had stopped early (during its final test, say) trained at
    least one more epoch when resumed from ``last.ckpt``, and could then test weights the uninterrupted run
    never had. Here a resumed run that had stopped stops again, as Lightning's uninterrupted run does (its
    ``should_stop`` is never cleared: it ends at the first epoch ``trainer.min_epochs`` allows). The state is
    stored under the stock callback's key, so checkpoints written with either class resume alike.

    Lightning also restored the stored ``patience`` over the configured one; here the configured one holds,
    as ``max_epochs`` does: resumed with a larger patience than the one that ran out, a run trains on while
    its validations without improvement stay below it; resumed with a smaller one it stops once they reach
    it. A stop on ``check_finite``, ``stopping_threshold`` or ``divergence_threshold`` always holds.
    """

    _stored_patience: int | None = None

    @property
    def state_key(self) -> str:
        return f"{EarlyStopping.__qualname__}{dict(monitor=self.monitor, mode=self.mode)!r}"

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        configured = self.patience
        super().load_state_dict(state_dict)
        self._stored_patience, self.patience = self.patience, configured

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._stored_patience is None:  # not resumed
            return
        stopped = self.stopping_reason is not EarlyStoppingReason.NOT_STOPPED
        if (
            self.stopping_reason is EarlyStoppingReason.PATIENCE_EXHAUSTED
            and self.patience > self._stored_patience
            and self.wait_count < self.patience
        ):
            log.info(
                "the run resumed had run out of patience %d; with patience %d (%d validations without "
                "improvement so far) it trains on",
                self._stored_patience,
                self.patience,
                self.wait_count,
            )
            self.stopping_reason, self.stopping_reason_message = EarlyStoppingReason.NOT_STOPPED, None
        elif stopped or self.wait_count >= self.patience:
            log.info(
                "the run resumed had stopped early (%s): it trains no further than it would uninterrupted",
                self.stopping_reason_message
                or f"{self.wait_count} validations without improvement reach patience {self.patience}",
            )
            trainer.should_stop = True


def validation_keys(module: EmotionModule) -> list[str]:
    """The ``val/...`` keys ``module`` logs at each validation: what a monitoring callback may monitor.

    ``val/loss`` only where the method computes a loss on evaluation batches (not the generative methods),
    ``val/<name>`` for each of the method's declared ``diagnostic_names``.
    """
    method = module.method
    names = ["macro_f1_tuned", "macro_f1", "micro_f1", "weighted_f1"]
    if method.eval_loss:
        names.append("loss")
    names += method.diagnostic_names
    return [metric_key("val", name) for name in names] + [metric_key("val", "f1", label) for label in LABELS]


def check_monitors(callbacks: Mapping[str, Callback], module: EmotionModule) -> None:
    """Fail before training when a callback monitors a key the run never logs (a typo, or ``val/loss`` of
    a generative method); Lightning itself only notices after the first validation.

    Raises:
        ConfigError: naming ``callbacks.<name>.monitor``, the method and the valid monitors.
    """
    valid = validation_keys(module)
    for name, callback in callbacks.items():
        monitor = getattr(callback, "monitor", None)
        if monitor and monitor not in valid:
            raise ConfigError(
                f"callbacks.{name}.monitor={monitor} is never logged by method {module.method.name}; "
                f"valid monitors: {', '.join(valid[: -len(LABELS)])}, val/f1/<label>"
            )


def best_checkpoint_callback(trainer: L.Trainer) -> ModelCheckpoint | None:
    """The first checkpoint callback with a monitor: the one whose best checkpoint the run tests."""
    return next(
        (c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint) and c.monitor), None
    )


def without_monitoring(callbacks: dict[str, Callback]) -> dict[str, Callback]:
    """``callbacks`` minus those monitoring a validation score, logging which: for runs without validation."""
    off = {name: monitor for name, cb in callbacks.items() if (monitor := getattr(cb, "monitor", None))}
    if off:
        log.info(
            "validation is off (trainer.limit_val_batches=0): callbacks %s are off; the weights at the end "
            "of training are tested at threshold 0.5",
            ", ".join(f"{name} ({monitor})" for name, monitor in off.items()),
        )
    return {name: cb for name, cb in callbacks.items() if name not in off}
