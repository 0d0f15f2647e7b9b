"""``train(cfg)``: fit, pick the best checkpoint, tune the threshold on val, test once, write metrics.json."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.strategies import DeepSpeedStrategy
from omegaconf import DictConfig, OmegaConf

from emoreason.components import RunParts, build_parts
from emoreason.config import TrainConfig, redact, validate
from emoreason.data.kote import KoteRow
from emoreason.evaluation.floors import write_run_floors
from emoreason.evaluation.outputs import write_test_outputs
from emoreason.evaluation.records import Results, RunMetrics, write_metrics
from emoreason.evaluation.scoring import ScoredSplit, predict_scores, threshold_and_reports
from emoreason.training.callbacks import best_checkpoint_callback, check_monitors, without_monitoring
from emoreason.training.checkpoints import consolidate_zero_checkpoint, load_checkpoint, resume_weights_only
from emoreason.training.loggers import (
    ResumedLogs,
    build_loggers,
    finishing_wandb,
    log_final_metrics,
    log_result_tables,
)
from emoreason.training.module import metric_key
from emoreason.training.progress import log_summary
from emoreason.training.strategies import build_strategy

log = logging.getLogger(__name__)


def _end_of_training(reason: str) -> dict[str, Any]:
    log.warning("testing the weights at the end of training, not a best checkpoint: %s", reason)
    return {"weights": "end of training", "checkpoint": None, "reason": reason}


def _best_weights(trainer: L.Trainer, parts: RunParts) -> tuple[RunParts, dict[str, Any]]:
    """The run's parts holding the weights to test, and metrics.json's ``tested_weights`` record of them.

    The best checkpoint's weights (by its monitor: val macro-F1 at the tuned threshold by default); where
    there is none (validation off, fast_dev_run, the file gone) the weights at the end of training, with a
    warning and the reason recorded: never a silent test of other weights than the best.

    Under DeepSpeed the trained module's parameters are partitioned or wrapped in place (ZeRO-3 leaves them
    empty on each rank), so the best weights go into a freshly built, whole module on the same device — on
    rank 0 only, the one that tests: the others would also consolidate the same ZeRO folder at once.
    """
    callback = best_checkpoint_callback(trainer)
    if callback is None:
        return parts, _end_of_training("no callback selects a best checkpoint (validation off, or removed)")
    best, best_score = callback.best_model_path, callback.best_model_score
    score = None if best_score is None else round(float(best_score), 6)
    if not best:
        return parts, _end_of_training(f"no epoch was scored by {callback.monitor} (fast_dev_run?)")
    if not Path(best).exists():
        return parts, _end_of_training(f"the best checkpoint {best} ({callback.monitor} {score}) is gone")
    tested = {"weights": "best", "checkpoint": best, "monitor": callback.monitor, "score": score}
    if isinstance(trainer.strategy, DeepSpeedStrategy):
        if not trainer.is_global_zero:
            return parts, tested
        fresh = build_parts(
            parts.cfg, tokenizer_state=parts.module.extra_state["tokenizer"], splits=parts.splits
        ).module
        parts = replace(parts, module=fresh.to(trainer.strategy.root_device))
    own = consolidate_zero_checkpoint(best) if Path(best).is_dir() else best  # this run wrote it: trusted
    parts.module.load_state_dict(load_checkpoint(own)["state_dict"])
    return parts, tested


def limited_rows(rows: list[KoteRow], limit: float, batch_size: int, split: str) -> list[KoteRow]:
    """The first rows of ``split`` that final scoring reads under ``trainer.limit_<split>_batches``.

    Lightning's meaning (``Trainer`` docs): an int is a number of batches, a float a fraction of them; here
    batches hold ``batch_size`` rows in file order, so a smoke run is small end to end, not only in fit.
    """
    batches = math.ceil(len(rows) / batch_size)
    kept = min(batches, limit) if isinstance(limit, int) else int(batches * limit)
    if kept >= batches:
        return rows
    log.info(
        "final scoring reads %d of %d %s rows (trainer.limit_%s_batches=%s)",
        kept * batch_size,
        len(rows),
        split,
        split,
        limit,
    )
    return rows[: kept * batch_size]


def _score(parts: RunParts, split: str, rows: list[KoteRow]) -> ScoredSplit | None:
    """``rows`` of ``split`` scored on this process alone; None when there are none to score."""
    dm = parts.datamodule
    if not rows:
        return None
    dataset = dm.datasets[split] if len(rows) == len(getattr(parts.splits, split)) else dm.encode_rows(rows)
    return predict_scores(parts.module, dm.dataloader(dataset, train=False, shard=False), f"{split} scoring")


def flat_metrics(results: Results) -> dict[str, float]:
    """``stage/metric`` scalars for loggers: tuned figures plain, fixed-0.5 ones with an ``@0.5`` suffix."""
    flat: dict[str, float] = {"test/threshold": results.threshold}
    for stage in ("val", "test"):
        if (split := getattr(results, stage)) is None:
            continue
        for figures, suffix in ((split.tuned, ""), (split.at_05, "@0.5")):
            for name in ("macro_f1", "micro_f1", "weighted_f1"):
                key = metric_key(f"{stage}_final" if stage == "val" else stage, name) + suffix
                flat[key] = getattr(figures, name)
        if stage == "test":
            for label, value in split.tuned.per_label_f1.items():
                flat[metric_key("test", "f1", label)] = value
    return flat


def train(cfg: DictConfig) -> dict[str, Any]:
    """Run one training job as configured; return the metrics.json payload."""
    started = time.perf_counter()
    cfg = validate(cfg, TrainConfig)
    L.seed_everything(cfg.seed, workers=True)
    parts = build_parts(cfg)
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    run_config = redact(OmegaConf.to_container(cfg, resolve=True))
    OmegaConf.save(OmegaConf.create(run_config), output_dir / "config.yaml")
    log.info("data: %s rows (%s split)", parts.splits.sizes(), parts.splits.scheme)

    named_callbacks = {name: instantiate(c) for name, c in cfg.callbacks.items() if c is not None}
    if OmegaConf.select(cfg, "trainer.limit_val_batches", default=None) == 0:
        named_callbacks = without_monitoring(named_callbacks)
    check_monitors(named_callbacks, parts.module)  # before any work: Lightning fails after an epoch
    with finishing_wandb():
        loggers = build_loggers(cfg.logger, run_config)
        callbacks = [*named_callbacks.values(), ResumedLogs()]
        if not loggers:  # an LR monitor needs somewhere to write (logger=none, debug runs)
            callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
        strategy = build_strategy(cfg.strategy)
        if isinstance(strategy, DeepSpeedStrategy) and cfg.lora is not None:
            strategy.exclude_frozen_parameters = True  # LoRA checkpoints: adapters and heads, not 5.8B frozen
        trainer: L.Trainer = instantiate(
            cfg.trainer, callbacks=callbacks, logger=loggers or False, strategy=strategy
        )
        if cfg.train:
            weights_only = resume_weights_only(cfg.ckpt_path, trust=cfg.trust_checkpoint)
            trainer.fit(
                parts.module, datamodule=parts.datamodule, ckpt_path=cfg.ckpt_path, weights_only=weights_only
            )
        elif cfg.ckpt_path:
            parts.module.load_state_dict(
                load_checkpoint(cfg.ckpt_path, trust=cfg.trust_checkpoint)["state_dict"]
            )
        if cfg.train:
            parts, tested = _best_weights(trainer, parts)
        else:
            tested = {"weights": "ckpt_path" if cfg.ckpt_path else "initial", "checkpoint": cfg.ckpt_path}
        metrics = RunMetrics(
            model=parts.backbone.name,
            method=parts.method.name,
            seed=cfg.seed,
            split_scheme=parts.splits.scheme,
        )
        metrics.run = {
            "data_sizes": parts.splits.sizes(),
            "data_sources": parts.splits.sources,
            "best_checkpoint": tested["checkpoint"],
            "tested_weights": tested,
            "global_step": trainer.global_step,
            "tags": list(cfg.tags),
        }
        if cfg.test and trainer.is_global_zero and trainer.limit_test_batches == 0:
            log.info("no final scoring: trainer.limit_test_batches=0")
        elif cfg.test and trainer.is_global_zero:
            parts.datamodule.setup("test")
            batch_size = parts.datamodule.loader.eval_batch_size
            val_rows = limited_rows(parts.splits.val, trainer.limit_val_batches, batch_size, "val")
            test_rows = limited_rows(parts.splits.test, trainer.limit_test_batches, batch_size, "test")
            val, test = _score(parts, "val", val_rows), _score(parts, "test", test_rows)
            assert test is not None  # limit_test_batches > 0 reads at least one batch
            results = threshold_and_reports(val, test, None if val is not None else 0.5)
            if val is None:
                off = "fixed 0.5: validation is off (trainer.limit_val_batches=0)"
                results = replace(results, threshold_source=off)
            metrics.results = results
            log_final_metrics(trainer.loggers, flat_metrics(results), trainer.global_step)
            records = write_test_outputs(output_dir, results, test_rows, test)
            log_result_tables(
                trainer.loggers,
                metrics.to_json(),
                [r.to_json() for r in records],
                test_rows,
                trainer.global_step,
            )
        metrics.run["wall_time_s"] = round(time.perf_counter() - started, 2)
        if trainer.is_global_zero:  # floors first (untimed): metrics.json marks the job finished for a rerun
            write_run_floors(parts.splits, metrics, output_dir, cfg.paths.cache_dir)
            write_metrics(output_dir, metrics)
        report = metrics.to_json()
        log_summary(report, trainer, output_dir)
    return report
